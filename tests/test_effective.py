"""%@effective on rules: a rule applies to the dates of service in its range; versions of one id."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.rules import RuleTag, TagError, check_effective, parse_effective

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed_session.yaml"

VERSIONED = textwrap.dedent("""
    % a payer rule that changed on 2026-01-01: two versions of one rule id
    %@rule mypayer.log_needed
    %@text "{A:adm} ran more than two hours; until 2025 this payer wants the paper infusion log."
    %@ref "my payer's manual, 2024 edition"
    %@effective ..2025-12-31
    finding(E,"LOG_NEEDED",warning,A) :- dur(E,A,M), M > 120.
    %@rule mypayer.log_needed
    %@text "{A:adm} ran more than two hours; from 2026 this payer wants the electronic pump log."
    %@ref "my payer's manual, 2026 edition"
    %@effective 2026-01-01
    finding(E,"PUMP_LOG_NEEDED",warning,A) :- dur(E,A,M), M > 120.
""")


def _seed_on(tmp_path: Path, day: str) -> Path:
    doc = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    doc["date_of_service"] = day
    out = tmp_path / f"seed-{day}.yaml"
    out.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return out


def _solve(*args: str) -> dict:
    res = CliRunner().invoke(main, ["solve", *map(str, args), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_parse_effective_forms() -> None:
    assert parse_effective("2023-07-01", "f:1") == (20230701, None)
    assert parse_effective("2023-07-01..2024-12-31", "f:1") == (20230701, 20241231)
    assert parse_effective("..2024-12-31", "f:1") == (None, 20241231)
    for bad in ("2023-13-01", "2023-7-1", "2024-12-31..2024-01-01", ".."):
        with pytest.raises(TagError):
            parse_effective(bad, "f:1")


def test_check_effective_overlap_and_variants() -> None:
    a = RuleTag("x.y", "t", "", "f", 1, 20230101, 20231231)
    b = RuleTag("x.y", "t", "", "f", 5, 20240101, None)
    check_effective([a, b, RuleTag("x.y", "t", "", "f", 9, 20240101, None)])  # a variant of b: same range
    with pytest.raises(TagError, match="overlaps"):
        check_effective([a, RuleTag("x.y", "t", "", "f", 7, 20231201, None)])
    with pytest.raises(TagError, match="overlaps"):  # an undated version covers every date
        check_effective([a, RuleTag("x.y", "t", "", "f", 8)])


def test_two_versions_of_one_rule_pick_by_date_of_service(tmp_path: Path) -> None:
    lp = tmp_path / "mine.lp"
    lp.write_text(VERSIONED, encoding="utf-8")
    old = _solve(_seed_on(tmp_path, "2025-06-04"), "--rules", lp)
    new = _solve(_seed_on(tmp_path, "2026-03-04"), "--rules", lp)
    codes_old = {f["code"] for f in old["findings"]}
    codes_new = {f["code"] for f in new["findings"]}
    assert "LOG_NEEDED" in codes_old and "PUMP_LOG_NEEDED" not in codes_old
    assert "PUMP_LOG_NEEDED" in codes_new and "LOG_NEEDED" not in codes_new
    (f,) = [f for f in new["findings"] if f["code"] == "PUMP_LOG_NEEDED"]
    assert f["why"]["rule"] == "mypayer.log_needed" and "electronic pump log" in f["why"]["text"]


def test_overlapping_versions_and_bad_dates_are_exit_2_with_file_and_line(tmp_path: Path) -> None:
    lp = tmp_path / "overlap.lp"
    lp.write_text(VERSIONED.replace("%@effective 2026-01-01", "%@effective 2025-06-01"), encoding="utf-8")
    res = CliRunner().invoke(main, ["solve", str(SEED), "--rules", str(lp)])
    assert res.exit_code == 2
    assert "overlap.lp:" in res.output and "mypayer.log_needed" in res.output and "overlaps" in res.output
    bad = tmp_path / "baddate.lp"
    bad.write_text(VERSIONED.replace("..2025-12-31", "2025-02-30"), encoding="utf-8")
    res = CliRunner().invoke(main, ["solve", str(SEED), "--rules", str(bad)])
    assert res.exit_code == 2 and "baddate.lp:" in res.output and "not a calendar date" in res.output


def test_effective_needs_the_encounter_first_in_the_head(tmp_path: Path) -> None:
    lp = tmp_path / "nohead.lp"
    lp.write_text('%@rule mine.odd\n%@text "odd"\n%@effective 2024-01-01\nmy_odd(1,E) :- encounter(E).\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["solve", str(SEED), "--rules", str(lp)])
    assert res.exit_code == 2 and "first argument" in res.output


def test_jz_rules_carry_their_start_date_and_rules_lists_it() -> None:
    res = CliRunner().invoke(main, ["rules", "--family", "waste", "--json"])
    assert res.exit_code == 0, res.output
    jz = {r["id"]: r["effective"] for r in json.loads(res.output) if r["id"].startswith("waste.jz")}
    assert jz and all(v == ["2023-07-01.."] for v in jz.values()), jz
    res = CliRunner().invoke(main, ["rules", "--family", "waste"])
    assert "effective (dates of service): 2023-07-01.." in res.output
