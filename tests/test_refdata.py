"""refdata.select_facts: which reference rows a batch gets (real rows of facts/, no invented ones)."""

from __future__ import annotations

import pytest

from oncologic import engine, refdata, solver



@pytest.fixture(scope="module")
def rule_codes() -> frozenset[str]:
    prog = engine.load_program(solver.rule_paths("medicare"))
    return refdata.encoding_codes(prog.files)


def _rows(text: str, pred: str) -> set[str]:
    return {line for line in text.splitlines() if line.startswith(pred + "(")}


def _codes(line: str) -> list[str]:
    return refdata._line_codes(line)


def _find(pred: str, test) -> str:
    lines, _index, _always = refdata.fact_index()
    for i in range(len(lines)):
        line = lines[i]
        if line.startswith(pred + "(") and test(_codes(line)):
            return line
    pytest.skip(f"no {pred} row of that shape in the reference data")


def test_pair_row_needs_both_codes(rule_codes):
    # an NCCI pair of an administration code the rules emit and a code they never name
    row = _find("ncci", lambda cs: len(cs) == 2 and cs[0] in rule_codes and cs[1] not in rule_codes)
    other = _codes(row)[1]
    assert row not in _rows(refdata.select_facts(set(), rule_codes), "ncci")
    assert row in _rows(refdata.select_facts({other}, rule_codes), "ncci")


def test_pairs_among_rule_codes_always_selected(rule_codes):
    row = _find("ncci", lambda cs: len(cs) == 2 and all(c in rule_codes for c in cs))
    assert row in _rows(refdata.select_facts(set(), rule_codes), "ncci")


def test_code_named_by_rules_gets_its_ndc_rows_only_in_a_batch_that_has_it(rule_codes):
    # J9060 (cisplatin) is named by the rules; its NDC rows name NDCs the rules never name
    row = _find("ndc", lambda cs: "J9060" in cs)
    assert "J9060" in rule_codes
    assert row not in _rows(refdata.select_facts(set(), rule_codes), "ndc")
    picked = refdata.select_facts({"J9060"}, rule_codes)
    assert row in _rows(picked, "ndc")


def test_ndc_of_the_batch_brings_its_hcpcs_rows(rule_codes):
    row = _find("ndc", lambda cs: len(cs) == 2 and cs[1] == "J9263")
    ndc = _codes(row)[0]
    picked = refdata.select_facts({ndc}, rule_codes)
    assert row in _rows(picked, "ndc")
    assert any('"J9263"' in line for line in _rows(picked, "hcpcs_unit"))
    assert not any('"J9263"' in line for line in _rows(refdata.select_facts(set(), rule_codes), "hcpcs_unit"))


def test_every_selected_row_is_a_reference_row(rule_codes):
    lines, _index, always = refdata.fact_index()
    every = {lines[i] for i in range(len(lines))} | set(always)
    picked = refdata.select_facts({"J9263", "C18.7", "96413"}, rule_codes)
    assert set(picked.splitlines()) <= every


def test_ndc_filed_under_a_rule_code_brings_that_codes_other_ndcs(rule_codes):
    # an encounter may give an NDC whose code it does not name (a mismatch the rules report); the
    # code's other package sizes must still be there for the units and least-waste rules
    lines, index, _always = refdata.fact_index()
    j9060 = [lines[i] for i in index.get("J9060", ()) if lines[i].startswith("ndc(")]
    if len(j9060) < 2:
        pytest.skip("J9060 has fewer than two NDCs in the crosswalk")
    ndc = next(c for c in _codes(j9060[0]) if c != "J9060")
    picked = _rows(refdata.select_facts({ndc}, rule_codes), "ndc")
    assert set(j9060) <= picked
