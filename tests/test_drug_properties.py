"""Properties of drug lines from single-dose containers (issue #3, domain-rules 7.1, 7.7-7.13).

For random doses, container sizes, counts and discarded amounts of real codes, every
single-dose drug line must satisfy, with the billing unit read from the generated reference
facts (never hard-coded here):

* administered units = ceil(dose / unit), so units x unit covers the dose;
* a JW line has at least 1 unit and never more than the discarded amount rounded down;
* administered + JW units never exceed what was opened (size x count), when the dose fits;
* never JW and JZ on one line; JZ on the administered line whenever there is no JW line;
* dose + discarded above the amount opened is always an error finding.

Examples are batched (several encounters per solve) and capped at 100, so the file runs in a
few seconds.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncologic import refdata
from oncologic.load import validate
from oncologic.solver import code_encounters

# real codes with a billing unit in mg; J1745 has no oncology category, so it gets a kind
CODES = ["J9045", "J9060", "J9271", "J9035", "J1745", "J2506", "J9201"]
KIND = {"J1745": "therapeutic"}
SIZES_MG = [Decimal(x) for x in ("0.5", "6", "10", "50", "100", "150", "200", "400", "450", "600", "1000")]


@lru_cache(maxsize=1)
def units_mcg() -> dict[str, int]:
    """Billing unit in mcg of each code, read from facts/hcpcs_*.lp."""
    out: dict[str, int] = {}
    pattern = re.compile(r'^hcpcs_unit\("[^"]+","([A-Z0-9]+)",(\d+),mcg\)\.', re.M)
    for path in refdata.fact_files():
        for code, amount in pattern.findall(path.read_text()):
            out[code] = int(amount)
    return out


def mcg(value: Decimal) -> int:
    return int(value * 1000)


drug_case = st.fixed_dictionaries(
    {
        "code": st.sampled_from(CODES),
        "dose_mcg": st.integers(min_value=1, max_value=1_500_000).map(lambda v: v - v % 100 or 100),
        "size": st.sampled_from(SIZES_MG),
        "count": st.integers(min_value=1, max_value=6),
        "discarded_mcg": st.one_of(st.just(0), st.integers(min_value=0, max_value=600_000).map(lambda v: v - v % 100)),
        "fits": st.booleans(),
    }
)


def encounter(i: int, case: dict) -> dict:
    size_mcg = mcg(case["size"])
    count = case["count"]
    dose = case["dose_mcg"]
    if case["fits"]:  # make the containers hold the dose and, where possible, the waste
        need = dose + case["discarded_mcg"]
        count = max(count, -(-need // size_mcg))
        count = min(count, 400)
    drug = {
        "hcpcs": case["code"],
        "dose": {"value": str(Decimal(dose) / 1000), "unit": "mg"},
        "container": {"type": "single_dose", "size": {"value": str(case["size"]), "unit": "mg"}, "count": count},
        "discarded": {"value": str(Decimal(case["discarded_mcg"]) / 1000), "unit": "mg"},
    }
    if case["code"] in KIND:
        drug["kind"] = KIND[case["code"]]
    return {
        "id": f"P{i}",
        "setting": "office",
        "date_of_service": "2025-11-04",
        "diagnoses": ["C34.11"],
        "administrations": [{"id": "a1", "route": "iv_infusion", "start": "09:00", "stop": "10:00", "drugs": [drug]}],
    }, size_mcg * count


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(drug_case, min_size=1, max_size=5))
def test_single_dose_lines_cover_the_dose_and_stay_within_the_opened_amount(cases):
    docs = [encounter(i, c) for i, c in enumerate(cases)]
    claims = code_encounters([validate(doc) for doc, _ in docs])
    for case, (doc, opened), claim in zip(cases, docs, claims):
        code = case["code"]
        unit = units_mcg()[code]
        dose = case["dose_mcg"]
        wasted = case["discarded_mcg"]
        lines = [ln for ln in claim.lines if ln.code == code]
        admin = [ln for ln in lines if "JW" not in ln.modifiers]
        jw = [ln for ln in lines if "JW" in ln.modifiers]
        assert len(admin) == 1, (doc, [(ln.code, ln.modifiers, ln.units) for ln in lines])
        assert len(jw) <= 1
        ua = admin[0].units
        assert ua * unit >= dose and ua == max(1, -(-dose // unit)), (doc, ua)
        for ln in lines:
            assert not ("JW" in ln.modifiers and "JZ" in ln.modifiers)
        if jw:
            uw = jw[0].units
            assert uw >= 1
            assert uw * unit <= wasted
            if dose <= opened:
                assert (ua + uw) * unit <= opened, (doc, ua, uw, opened)
            assert "JZ" not in admin[0].modifiers
        else:
            assert "JZ" in admin[0].modifiers, (doc, admin[0].modifiers)
        if wasted < unit:
            assert not jw
        codes = {f.code for f in claim.findings if f.severity == "error"}
        if dose > opened:
            assert "DOSE_EXCEEDS_OPENED" in codes
        elif dose + wasted > opened:
            assert "DISCARD_EXCEEDS_OPENED" in codes
        else:
            assert not {"DOSE_EXCEEDS_OPENED", "DISCARD_EXCEEDS_OPENED"} & codes


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=400_000).map(lambda v: v - v % 100 or 100), min_size=1, max_size=4),
       st.sampled_from(CODES))
def test_doses_of_one_code_on_one_date_are_added_before_rounding(doses, code):
    drugs = []
    for i, dose in enumerate(doses):
        drug = {"hcpcs": code, "dose": {"value": str(Decimal(dose) / 1000), "unit": "mg"}}
        if code in KIND:
            drug["kind"] = KIND[code]
        drugs.append({"id": f"a{i}", "route": "iv_infusion", "start": f"{8 + i:02d}:00", "stop": f"{8 + i:02d}:45", "drugs": [drug]})
    doc = {"id": "AGG", "setting": "facility", "date_of_service": "2025-11-04", "diagnoses": ["C34.11"], "administrations": drugs}
    claim = code_encounters([validate(doc)])[0]
    lines = [ln for ln in claim.lines if ln.code == code]
    unit = units_mcg()[code]
    assert len(lines) == 1
    assert lines[0].units == -(-sum(doses) // unit)
    assert sorted(lines[0].why.from_) == sorted(f"a{i}.drugs[0]" for i in range(len(doses)))
