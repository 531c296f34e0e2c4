"""oncologic diff: one corpus coded under two rule sets, the claims that changed, the rule ids."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed_session.yaml"


def _diff(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oncologic.cli", "diff", *args, "--workers", "0"],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    shutil.copy(ROOT / "examples" / "rchop_office.yaml", corpus / "rchop_office.yaml")
    return corpus


def test_a_rule_file_that_adds_a_finding_is_shown_with_its_rule_id(tmp_path: Path) -> None:
    rule = tmp_path / "local.lp"
    rule.write_text('% a local review flag on office claims\n'
                    '%@rule local.office_review\n%@text "office claims go to the local review queue"\n'
                    '%@ref "local policy (test)"\n'
                    'finding(E,"LOCAL_REVIEW",info,enc) :- setting(E,office).\n', encoding="utf-8")
    proc = _diff(str(_corpus(tmp_path)), "--rules", str(rule), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["claims_compared"] == 2
    assert doc["summary"]["claims_changed"] == 1  # the office R-CHOP claim only; the seed is facility
    (change,) = doc["changes"]
    assert change["encounter"] == "ENC-OFF-RCHOP-C1"
    assert change["findings_added"] == [["info", "LOCAL_REVIEW", "local.office_review", "enc"]]
    assert doc["summary"]["rules_responsible"] == {"local.office_review": 1}


def test_an_encodings_folder_with_a_changed_hour_rule_changes_units_line_by_line(tmp_path: Path) -> None:
    enc = tmp_path / "encodings"
    shutil.copytree(ROOT / "encodings", enc)
    timing = enc / "admin" / "timing.lp"
    text = timing.read_text(encoding="utf-8")
    changed = text.replace("hours(M,U) :- mins(M), M >= 91, U = (M - 31) / 60.", "hours(M,U) :- mins(M), M >= 61, U = (M - 1) / 60.")
    changed = changed.replace("hours(M,0) :- mins(M), M < 91.", "hours(M,0) :- mins(M), M < 61.")
    assert changed != text
    timing.write_text(changed, encoding="utf-8")
    proc = _diff(str(_corpus(tmp_path)), "--rules", str(enc))
    assert proc.returncode == 0, proc.stderr
    # oxaliplatin ran 150 minutes: one 96415 unit under the CMS rule, two when every started hour counts
    assert "~ 96415 x1 -> x2 2026-03-04  [admin.additional_hour]" in proc.stdout, proc.stdout
    assert "claims changed" in proc.stdout
    assert "admin.additional_hour" in proc.stdout.split("rules responsible")[1]


def test_exit_code_flag_and_the_same_rules_on_both_sides(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    same = _diff(str(corpus), "--base-rules", str(ROOT / "encodings"), "--rules", str(ROOT / "encodings"), "--exit-code")
    assert same.returncode == 0, same.stderr
    assert "0 of 2 claims changed" in same.stdout


def test_a_git_revision_side(tmp_path: Path) -> None:
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                                                      capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "encodings"], capture_output=True, text=True)
    if dirty.stdout.strip():
        pytest.skip("encodings/ has uncommitted changes: HEAD and the work tree differ on purpose")
    proc = _diff(str(_corpus(tmp_path)), "--base-rules", "git:HEAD", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["claims_changed"] == 0


def test_an_unknown_side_is_exit_2(tmp_path: Path) -> None:
    proc = _diff(str(_corpus(tmp_path)), "--base-rules", "no-such-revision-xyz")
    assert proc.returncode == 2
    assert "no-such-revision-xyz" in proc.stderr and "Traceback" not in proc.stderr


def test_a_policy_package_side_with_payer_lists_in_a_subfolder(tmp_path: Path) -> None:
    pkg = tmp_path / "acme"
    (pkg / "payers").mkdir(parents=True)
    (pkg / "acme.lp").write_text('% Acme (invented for the test): a review flag on every facility claim\n'
                                 '%@rule acme.review\n%@text "Acme reviews facility claims"\n'
                                 'finding(E,"ACME_REVIEW",info,enc) :- setting(E,facility), acme_reviews(facility).\n',
                                 encoding="utf-8")
    (pkg / "payers" / "lists.lp").write_text("% Acme's review list\nacme_reviews(facility).\n", encoding="utf-8")
    proc = _diff(str(_corpus(tmp_path)), "--rules", str(pkg), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (change,) = doc["changes"]
    assert change["encounter"] == "ENC-SEED-001"  # the facility claim; the payer list sits in payers/
    assert change["findings_added"] == [["info", "ACME_REVIEW", "acme.review", "enc"]]
