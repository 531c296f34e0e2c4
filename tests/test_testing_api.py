"""oncologic.testing for rule authors: regimen strategies with parameters, code_document with rules
and policy, pasteable cases that carry their rule files."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings

from oncologic import testing as ot
from oncologic.cases import load_cases, run_cases

RULE = textwrap.dedent("""
    % a payer that wants every FOLFOX pump documented
    %@rule mypayer.pump_log
    %@text "{A:adm} ran on a pump; this payer wants the pump log."
    finding(E,"PUMP_LOG",info,A) :- pump(E,A,_).
""")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ot.regimen_encounters(regimen="folfox", setting="facility", payer_type="commercial", payer_name="Aetna",
                             date_of_service=dt.date(2026, 3, 4)))
def test_regimen_strategy_takes_its_parameters(doc) -> None:
    assert doc["setting"] == "facility" and doc["date_of_service"] == "2026-03-04"
    assert doc["payer"] == {"type": "commercial", "member_id": doc["payer"]["member_id"], "name": "Aetna"}
    codes = {d["hcpcs"] for a in doc["administrations"] for d in a["drugs"]}
    assert {"J9263", "J0640", "J9190"} <= codes  # oxaliplatin, leucovorin, fluorouracil
    claim = ot.code_document(doc)
    ot.assert_invariants([doc], [claim])


@settings(max_examples=5, deadline=None)
@given(ot.regimen_encounters(regimen="pembrolizumab", diagnoses=["C43.9"], max_admins=3))
def test_regimen_diagnoses_and_admin_bounds(doc) -> None:
    assert "C43.9" in doc["diagnoses"] and len(doc["administrations"]) <= 3
    assert any(d["hcpcs"] == "J9271" for a in doc["administrations"] for d in a["drugs"])


def test_unknown_regimen_is_an_error() -> None:
    import random

    from oncologic.regimens import encounter

    try:
        encounter(random.Random(1), 1, regimen="nosuch")
    except ValueError as exc:
        assert "folfox" in str(exc)
    else:
        raise AssertionError("an unknown regimen was accepted")


def test_code_document_with_rules_and_the_pasteable_case_carries_them(tmp_path: Path) -> None:
    import random

    from oncologic.regimens import encounter

    rng = random.Random(3)
    doc = next(d for d in (encounter(rng, i, regimen="folfox") for i in range(40))
               if any(a.get("pump") for a in d["administrations"]))
    rule = tmp_path / "mypayer.lp"
    rule.write_text(RULE, encoding="utf-8")
    claim = ot.code_document(doc, rules=[str(rule)])
    assert any(f.code == "PUMP_LOG" for f in claim.findings)
    assert not any(f.code == "PUMP_LOG" for f in ot.code_document(doc).findings)
    text = ot.case_yaml(doc, claim, name="pump log", rules=[str(rule)], switches=())
    assert f"# rules file {rule.resolve()} as it was:" in text and '#   finding(E,"PUMP_LOG",info,A)' in text
    case_file = tmp_path / "cases" / "pump.yaml"
    case_file.parent.mkdir()
    doc_cases = yaml.safe_load(text)
    doc_cases[0]["expect"] = {"findings": [{"code": "PUMP_LOG"}]}
    case_file.write_text(yaml.safe_dump({"cases": doc_cases}, sort_keys=False), encoding="utf-8")
    (outcome,) = run_cases(load_cases(case_file))
    assert outcome.ok, outcome.failures
