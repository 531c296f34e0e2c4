"""Properties of the denial-prevention and clinical-trial encodings (encodings/edits, encodings/trial).

* ``clean`` is true exactly when no finding has severity ``error``, and every finding carries a
  tagged reason with a known severity.
* Adding an authorization that covers every billed line (its codes, the date of service and
  ample units) never adds a finding (it may only remove prior-authorization findings).
* Claim data of trial encounters: the NCT number, condition code 30 (facility only), bill_to
  for a Medicare Advantage member.

Random encounters mix payers (none, each type, coverage windows around the date of service),
valid, header, invalid and unchecked diagnoses, chemotherapy / supportive / hydration
administrations, trial blocks with research marks and grids, plans, evidence and
authorizations. Example counts are small (2-core CI); each example is one batch solve.
"""

from __future__ import annotations

import copy
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncologic import engine
from oncologic.load import validate
from oncologic.solver import code_encounters

DOS = dt.date(2026, 3, 4)

DRUGS = [
    {"hcpcs": "J9271", "name": "pembrolizumab", "dose": {"value": 200, "unit": "mg"}},
    {"hcpcs": "J9263", "name": "oxaliplatin", "dose": {"value": 150, "unit": "mg"}},
    {"hcpcs": "J9045", "name": "carboplatin", "dose": {"value": 450, "unit": "mg"}},
    {"hcpcs": "J2405", "name": "ondansetron", "dose": {"value": 8, "unit": "mg"}},
    {"hcpcs": "J1100", "name": "dexamethasone", "dose": {"value": 12, "unit": "mg"}},
    {"hcpcs": "J0640", "name": "leucovorin", "dose": {"value": 400, "unit": "mg"}},
]
DIAGNOSES = ["C34.11", "C18.7", "C50.411", "Z51.11", "Z51.12", "Z00.6", "R11.2", "C18", "C34.99", "E11.9"]
SERVICES = [[], [{"code": "96372"}], [{"code": "99214", "separately_identifiable": True}], [{"code": "96523"}]]


@st.composite
def administrations(draw):
    n = draw(st.integers(1, 3))
    out = []
    minute = 8 * 60
    for i in range(n):
        kind = draw(st.sampled_from(["infusion", "push", "hydration"]))
        length = draw(st.sampled_from([10, 30, 45, 70, 100]))
        start = f"{minute // 60:02d}:{minute % 60:02d}"
        stop_min = minute + length
        stop = f"{stop_min // 60:02d}:{stop_min % 60:02d}"
        adm: dict = {"id": f"a{i + 1}", "start": start}
        if kind == "hydration":
            adm.update(route="iv_infusion", stop=stop, purpose="hydration")
        else:
            drug = copy.deepcopy(draw(st.sampled_from(DRUGS)))
            if draw(st.booleans()):
                drug["supplied_by"] = draw(st.sampled_from(["practice", "sponsor"]))
            adm.update(route="iv_infusion" if kind == "infusion" else "iv_push", drugs=[drug])
            if kind == "infusion":
                adm["stop"] = stop
        research = draw(st.sampled_from([None, None, "investigational", "routine"]))
        if research:
            adm["research"] = research
        out.append(adm)
        minute = stop_min + 5
    return out


@st.composite
def encounters(draw):
    adms = draw(administrations())
    doc: dict = {
        "id": "P-1",
        "setting": draw(st.sampled_from(["office", "facility"])),
        "date_of_service": DOS.isoformat(),
        "diagnoses": draw(st.lists(st.sampled_from(DIAGNOSES), min_size=1, max_size=3, unique=True)),
        "administrations": adms,
        "services": draw(st.sampled_from(SERVICES)),
    }
    if draw(st.integers(0, 4)):
        payer: dict = {"type": draw(st.sampled_from(["medicare", "medicare_advantage", "medicaid", "commercial"]))}
        if draw(st.booleans()):
            payer["member_id"] = "M1"
        if draw(st.booleans()):
            payer["coverage_start"] = (DOS + dt.timedelta(days=draw(st.integers(-60, 3)))).isoformat()
        doc["payer"] = payer
    if draw(st.booleans()):
        ids = [a["id"] for a in adms]
        codes = sorted({d["hcpcs"] for a in adms for d in a.get("drugs", [])})
        grid = [{"item": x, "payer": draw(st.sampled_from(["sponsor", "insurance"]))}
                for x in draw(st.lists(st.sampled_from(ids + codes + ["96413"]), max_size=3, unique=True))]
        trial: dict = {"qualifying": draw(st.booleans()), "billing_grid": grid}
        if draw(st.integers(0, 3)):
            trial["nct"] = "NCT01234567"
        doc["clinical_trial"] = trial
    if draw(st.booleans()):
        doc["treatment_plan"] = {
            "id": "TP-1",
            "drugs": draw(st.lists(st.sampled_from([d["hcpcs"] for d in DRUGS]), max_size=3, unique=True)),
            "cycle": draw(st.integers(1, 6)),
            "planned_cycles": 4,
            "diagnoses": draw(st.lists(st.sampled_from(["C34.11", "C18.7"]), max_size=1)),
        }
    doc["evidence"] = draw(st.lists(st.sampled_from([
        {"kind": "biomarker", "name": "PD-L1 TPS", "value": "60%"},
        {"kind": "stage", "value": "IV"},
        {"kind": "prior_therapy", "name": "carboplatin + pemetrexed", "value": "progression"},
        {"kind": "non_cancer_indication", "name": "rheumatoid arthritis"},
    ]), max_size=2, unique_by=lambda e: e["kind"]))
    if draw(st.booleans()):
        start = draw(st.integers(-90, 5))  # an authorization never ends before it starts (rejected input)
        doc["authorizations"] = [{
            "number": "PA-OLD",
            "codes": draw(st.lists(st.sampled_from(["J9271", "J9263", "J2405", "J0640", "96413"]), min_size=1, max_size=2, unique=True)),
            "start": (DOS + dt.timedelta(days=start)).isoformat(),
            "end": (DOS + dt.timedelta(days=draw(st.integers(max(start, -5), 90)))).isoformat(),
            "units": draw(st.integers(0, 400)),
            "units_used": draw(st.integers(0, 300)),
        }]
    return doc


def _findings(claim) -> set[tuple[str, str, str]]:
    return {(f.code, f.severity, f.subject) for f in claim.findings}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(encounters(), min_size=1, max_size=3))
def test_clean_exactly_when_no_error(docs):
    known = {r.tag.id for r in engine.load_program().rules}
    claims = code_encounters([validate(d, "prop") for d in docs])
    for claim in claims:
        assert claim.clean == (not any(f.severity == "error" for f in claim.findings))
        for f in claim.findings:
            assert f.severity in ("error", "warning", "info")
            assert f.why.rule in known, f
            assert "{" not in f.message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encounters())
def test_covering_authorization_never_adds_a_finding(doc):
    before = code_encounters([validate(doc, "prop")])[0]
    codes = sorted({line.code for line in before.lines})
    if not codes:
        return
    units = sum(line.units for line in before.lines) + 1000
    covered = copy.deepcopy(doc)
    covered.setdefault("authorizations", []).append(
        {"number": "PA-ALL", "codes": codes, "start": DOS.isoformat(), "end": DOS.isoformat(), "units": units}
    )
    after = code_encounters([validate(covered, "prop")])[0]
    added = _findings(after) - _findings(before)
    assert not added, added
    assert not any(f.code in ("PA_MISSING", "PA_DATE", "PA_UNITS") for f in after.findings)
    assert [(l.code, l.units, l.modifiers) for l in after.lines] == [(l.code, l.units, l.modifiers) for l in before.lines]


BASE_TRIAL = {
    "id": "T-1",
    "setting": "facility",
    "date_of_service": DOS.isoformat(),
    "payer": {"type": "medicare_advantage", "member_id": "MA1"},
    "diagnoses": ["Z51.12", "C34.11"],
    "administrations": [
        {"id": "study", "route": "iv_infusion", "start": "09:00", "stop": "09:40", "research": "investigational",
         "drugs": [{"hcpcs": "J9271", "name": "pembrolizumab", "dose": {"value": 200, "unit": "mg"}}]},
    ],
    "clinical_trial": {"nct": "NCT01234567", "qualifying": True, "billing_grid": [{"item": "study", "payer": "insurance"}]},
}


def test_trial_claim_data():
    office = copy.deepcopy(BASE_TRIAL)
    office["setting"] = "office"
    office["payer"] = {"type": "medicare", "member_id": "1EG"}
    facility, prof = code_encounters([validate(BASE_TRIAL, "t"), validate(office, "t")])
    assert facility.claim_data["clinical_trial_number"] == ["01234567"]
    assert facility.claim_data["condition_code"] == ["30"]
    assert facility.claim_data["bill_to"] == ["original_medicare"]
    assert prof.claim_data["clinical_trial_number"] == ["01234567"]
    assert "condition_code" not in prof.claim_data
    assert "bill_to" not in prof.claim_data
    for line in facility.lines:
        assert line.diagnoses == ["Z51.12", "C34.11", "Z00.6"]


def test_no_trial_no_trial_data():
    doc = copy.deepcopy(BASE_TRIAL)
    del doc["clinical_trial"]
    del doc["administrations"][0]["research"]
    claim = code_encounters([validate(doc, "t")])[0]
    assert not {"clinical_trial_number", "condition_code", "bill_to"} & set(claim.claim_data)
    assert all("Q0" not in l.modifiers and "Q1" not in l.modifiers for l in claim.lines)
    assert all("Z00.6" not in l.diagnoses for l in claim.lines)
