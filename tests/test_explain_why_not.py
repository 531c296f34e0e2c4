"""explain: "why not" queries, the aggregated drug line's members, every level in words."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from oncologic.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEED = str(ROOT / "examples" / "seed_session.yaml")
FOLFOX = str(ROOT / "examples" / "folfox_facility.yaml")


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_why_not_a_rejected_candidate_explains_its_rule() -> None:
    res = run("explain", SEED, "--why-not", "96415", "--for", "oxali", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["answer"] == "not_billed"
    (item,) = doc["items"]
    assert item["rule"] == "admin.hour_not_reached"
    assert "150 minutes" in item["tree"][0]["derivations"][0]["text"]


def test_why_not_a_code_no_rule_considered_says_so_and_what_the_item_became() -> None:
    res = run("explain", SEED, "--why-not", "96417", "--for", "oxali")
    assert res.exit_code == 0, res.output
    assert "no rule considered 96417 for oxali" in res.output
    assert "instead: line 1: 96413 x1 [admin.initial]" in res.output


def test_why_not_a_billed_code_points_at_its_line() -> None:
    res = run("explain", SEED, "--why-not", "96413", "--json")
    doc = json.loads(res.output)
    assert doc["answer"] == "billed" and doc["items"][0]["title"].startswith("line 1: 96413")
    res = run("explain", SEED, "--for", "oxali")
    assert res.exit_code == 2 and "--for needs --why-not" in res.output


def test_the_aggregated_j9190_line_lists_every_administration_it_adds_up() -> None:
    claim = json.loads(run("solve", FOLFOX, "--json").output)
    (n,) = [i for i, line in enumerate(claim["lines"], start=1) if line["code"] == "J9190" and not line["modifiers"]]
    res = run("explain", FOLFOX, "--line", str(n))
    assert res.exit_code == 0, res.output
    assert "rule drug.units_aggregated" in res.output
    # the second administration of the line has its own node with its own amount
    assert re.search(r"fluorouracil \(J9190\) in fu-pump adds [0-9,]+ mg to the J9190 line", res.output), res.output
    assert "rule drug.units_member" in res.output


def test_no_raw_internal_atoms_in_the_text_tree() -> None:
    res = run("explain", FOLFOX)
    assert res.exit_code == 0, res.output
    raw = [ln for ln in res.output.splitlines() if re.search(r"[├└]─ [a-z_]+\(\d", ln)]
    assert raw == [], raw[:5]
