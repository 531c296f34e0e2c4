"""Invariants of the engine over generated encounters (oncologic.testing strategies).

Each example is a batch of encounters coded in one solve (and its transformed twin in a
second solve), so the suite stays fast. A failure prints the offending encounter as a case file.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from oncologic import testing as ot
from oncologic.load import InputError


def _solve_pair(docs, transformed):
    """Originals and their transformed twins in one solve (batch == one by one is a property
    of its own below), split back into two lists."""
    claims = ot.solve_docs(list(docs) + list(transformed))
    return claims[: len(docs)], claims[len(docs):]


def _explain_mismatch(doc, claim_a, claim_b, what: str) -> str:
    note(ot.case_yaml(doc, claim_a, name=f"property: {what}"))
    return f"{doc['id']}: {what}\n  before: {ot.claim_signature(claim_a)}\n  after:  {ot.claim_signature(claim_b)}"


# ---------------------------------------------------------------------- single-claim invariants


def _bags(*spans: tuple[str, str]) -> dict:
    """One encounter: back-to-back bags of the same chemotherapy drug through one port."""
    return {"id": "ENC-BAGS", "setting": "facility", "date_of_service": "2025-10-01", "diagnoses": ["C00.0"],
            "administrations": [{"id": f"bag{i}", "route": "iv_infusion", "access": "port", "start": a, "stop": b,
                                 "drugs": [{"hcpcs": "J9000", "dose": {"value": 10, "unit": "mg"}}]}
                                for i, (a, b) in enumerate(spans, start=1)]}


@given(ot.batches())
# found by a long run: every bag of the infusate is on the 96415 line, 91 minutes in all
@example([_bags(("06:00", "06:16"), ("06:16", "06:59"), ("06:59", "07:15"), ("07:15", "07:31"))])
def test_claim_invariants(docs):
    """one initial per access group; every add-on has its primary; additional-hour units match
    the minutes; clean iff no error finding; drug units x unit size cover the dose."""
    claims = ot.solve_docs(docs)
    ot.assert_invariants(docs, claims)


@pytest.fixture(scope="module")
def drug_lines_exist():
    doc = {"id": "D", "setting": "office", "date_of_service": "2026-03-04", "diagnoses": ["C34.11"],
           "administrations": [{"id": "a", "route": "iv_infusion", "start": "09:00", "stop": "10:00",
                                "drugs": [{"hcpcs": "J9271", "dose": {"value": 200, "unit": "mg"}}]}]}
    claim = ot.solve_docs([doc])[0]
    return any(ln.code == "J9271" for ln in claim.lines)


@settings(max_examples=max(3, settings.default.max_examples // 2))
@given(ot.batches(max_size=6))
def test_drug_units_cover_the_dose(drug_lines_exist, docs):
    if not drug_lines_exist:
        pytest.skip("the engine writes no drug lines yet")
    claims = ot.solve_docs(docs)
    bad = []
    for doc, claim in zip(docs, claims):
        problems = ot.check_drug_units_cover_dose(doc, claim)
        if problems:
            note(ot.case_yaml(doc, claim, name="drug units cover the dose", problems=problems))
            bad += problems
    assert not bad, bad


# ---------------------------------------------------------------------- metamorphic properties


def _start_days(doc) -> list[int]:
    """The calendar day (0 = the date of service) each administration starts on."""
    import datetime as dt

    from oncologic.model import absolute_time

    dos = dt.date.fromisoformat(str(doc["date_of_service"]))
    return [(absolute_time(dos, str(a["start"])).date() - dos).days for a in doc.get("administrations", [])]


@given(ot.batches(max_size=6), st.integers(-180, 600))
def test_shifting_every_time_changes_no_code(docs, minutes):
    """Moving every start and stop by the same amount (also across midnight) changes no code,
    as long as every administration still starts on the same calendar day: units, MUEs and line
    dates are per date of service, so moving one start past midnight may rightly change them
    (a long dev run found J9098 at 23:50 + 10 min leaving the MUE count of the first day)."""
    shifted = [ot.shift_times(d, minutes) for d in docs]
    before, after = _solve_pair(docs, shifted)
    bad = [_explain_mismatch(d, a, b, f"shift by {minutes} min")
           for d, s, a, b in zip(docs, shifted, before, after)
           if _start_days(d) == _start_days(s) and ot.claim_signature(a) != ot.claim_signature(b)]
    assert not bad, "\n".join(bad)


@given(ot.batches(max_size=6), st.randoms(use_true_random=False))
def test_reordering_administrations_changes_nothing(docs, rnd: random.Random):
    orders = []
    for d in docs:
        order = list(range(len(d["administrations"])))
        rnd.shuffle(order)
        orders.append(order)
    shuffled = [ot.reorder(d, o) for d, o in zip(docs, orders)]
    before, after = _solve_pair(docs, shuffled)
    bad = [_explain_mismatch(d, a, b, f"administrations reordered {o}")
           for d, o, a, b in zip(docs, orders, before, after) if ot.claim_dump(a) != ot.claim_dump(b)]
    assert not bad, "\n".join(bad)


@given(ot.batches(max_size=6))
def test_renaming_ids_changes_nothing_but_the_ids(docs):
    renamed, backs = zip(*(ot.rename_ids(d) for d in docs))
    before, after = _solve_pair(docs, list(renamed))
    bad = [_explain_mismatch(d, a, b, "ids renamed")
           for d, back, a, b in zip(docs, backs, before, after)
           if ot.unrename(ot.claim_dump(b), back) != ot.claim_dump(a)]
    assert not bad, "\n".join(bad)


@given(ot.batches(max_size=6), st.integers(-30, 300), st.integers(16, 480), st.booleans())
def test_adding_a_kvo_fluid_changes_no_administration_code(docs, offset, minutes, with_bag):
    more = [ot.add_kvo(d, offset, minutes, with_bag) for d in docs]
    before, after = _solve_pair(docs, more)
    bad = [_explain_mismatch(d, a, b, f"KVO added at +{offset} min for {minutes} min")
           for d, a, b in zip(docs, before, after) if ot.admin_signature(a) != ot.admin_signature(b)]
    assert not bad, "\n".join(bad)


@settings(max_examples=max(3, settings.default.max_examples // 3))
@given(ot.batches(min_size=2, max_size=4))
def test_batch_equals_one_by_one(docs):
    together = ot.solve_docs(docs)
    for doc, claim in zip(docs, together):
        alone = ot.solve_docs([doc])[0]
        if ot.claim_dump(alone) != ot.claim_dump(claim):
            note(ot.case_yaml(doc, alone, name="batch == one by one"))
        assert ot.claim_dump(alone) == ot.claim_dump(claim), doc["id"]


# ---------------------------------------------------------------------- invalid input


@given(ot.invalid_documents())
def test_invalid_input_is_an_input_error_never_a_traceback(doc):
    try:
        ot.code_document(doc)
    except InputError as exc:
        text = exc.render()
        assert text and ":" in text  # names a field path and the rule broken
    # accepted is fine too (some mutations stay valid, e.g. a duplicate made unique by chance);
    # anything else propagates and fails the test with hypothesis' minimal example
