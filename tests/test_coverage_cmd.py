"""oncologic test --coverage: which rule ids the cases exercise, and which none does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from oncologic.cli import main

ROOT = Path(__file__).resolve().parents[1]

CASE = textwrap.dedent("""
    cases:
      - name: seed session
        encounter: {include: SEED}
        rules_files: [mine.lp]
        expect:
          rules: [admin.initial, mine.long]
""")

RULES = textwrap.dedent("""
    % two rules of my own: one a case exercises, one no case does
    %@rule mine.long
    %@text "{A:adm} ran more than two hours."
    finding(E,"MINE_LONG",info,A) :- dur(E,A,M), M > 120.
    %@rule mine.never
    %@text "{A:adm} ran more than a day."
    finding(E,"MINE_NEVER",info,A) :- dur(E,A,M), M > 1440.
""")


def test_coverage_lists_exercised_and_unexercised_rule_ids(tmp_path: Path) -> None:
    seed = (ROOT / "examples" / "seed_session.yaml").read_text(encoding="utf-8")
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "mine.lp").write_text(RULES, encoding="utf-8")
    import yaml

    doc = yaml.safe_load(CASE)
    doc["cases"][0]["encounter"] = yaml.safe_load(seed)
    (cases / "seed.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    out = tmp_path / "cov.json"
    res = CliRunner().invoke(main, ["test", str(cases), "--coverage", "--coverage-json", str(out)])
    assert res.exit_code == 0, res.output
    assert "rule coverage:" in res.output
    listed = res.output.split("rule ids no case exercises:")[1]
    assert "mine.never" in listed and "mine.long " not in listed and "admin.initial " not in listed
    cov = json.loads(out.read_text(encoding="utf-8"))
    assert cov["rules"]["mine.long"]["cases"] == ["seed.yaml::seed session"]
    assert cov["rules"]["mine.never"]["cases"] == []
    assert cov["rules"]["mine.never"]["places"][0].endswith("mine.lp:8")
    assert cov["rules"]["admin.initial"]["cases"] == ["seed.yaml::seed session"]
    # every standard rule id is listed, exercised or not (the seed exercises only a few)
    assert cov["rule_ids"] > 200 and 0 < cov["exercised"] < cov["rule_ids"]
