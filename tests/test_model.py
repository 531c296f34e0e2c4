"""The contract's value formats: NDC, ICD-10-CM, times, amounts, the claim's JSON names."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from oncologic.model import Administration, Amount, Claim, Encounter, Why, absolute_time, normalize_icd10, normalize_ndc


@pytest.mark.parametrize(
    "given, eleven",
    [
        ("0006-3026-02", "00006302602"),  # 4-4-2: pad segment 1
        ("50242-060-01", "50242006001"),  # 5-3-2: pad segment 2
        ("12345-6789-1", "12345678901"),  # 5-4-1: pad segment 3
        ("12345-6789-01", "12345678901"),  # 5-4-2: as is
        ("00006302602", "00006302602"),  # 11 digits
        (" 0006-3026-02 ", "00006302602"),
    ],
)
def test_ndc_normalised_to_11_digits(given, eleven):
    assert normalize_ndc(given) == eleven


@pytest.mark.parametrize("bad", ["0006-3026", "000630260212", "0006-3026-0A", "6-3026-02", "abc", "0006302602"])
def test_malformed_ndc_rejected(bad):
    with pytest.raises(ValueError):
        normalize_ndc(bad)


@pytest.mark.parametrize(
    "given, code",
    [("C34.11", "C34.11"), ("c3411", "C34.11"), ("Z5111", "Z51.11"), ("C61", "C61"), (" c50.911 ", "C50.911"), ("T45.1X5A", "T45.1X5A")],
)
def test_icd10_normalised(given, code):
    assert normalize_icd10(given) == code


@pytest.mark.parametrize("bad", ["1234", "C3", "U07.1", "C34.11111", "C34-11", ""])
def test_malformed_icd10_rejected(bad):
    with pytest.raises(ValueError):
        normalize_icd10(bad)


def test_times_hhmm_and_iso():
    day = dt.date(2026, 3, 4)
    assert absolute_time(day, "09:05") == dt.datetime(2026, 3, 4, 9, 5)
    assert absolute_time(day, "2026-03-05T01:10") == dt.datetime(2026, 3, 5, 1, 10)
    # an offset is dropped: times are wall-clock times of the encounter
    assert absolute_time(day, "2026-03-04T09:05:00+02:00") == dt.datetime(2026, 3, 4, 9, 5)


def test_a_number_is_never_read_as_a_clock_time():
    # 900 was read as 15:00 (minutes) and the error then blamed stop; a number names its own field
    with pytest.raises(ValueError, match="900 is a number, not a time"):
        Administration.model_validate({"id": "a", "route": "iv_push", "start": 900})


def test_yaml_unquoted_clock_time_is_text():
    # YAML 1.1 reads an unquoted 09:00 as the sexagesimal integer 540; the project's reader keeps it as text
    from oncologic.load import parse_yaml

    doc = parse_yaml("start: 09:00\nstop: 10:30\nn: 900\nx: 1.5\n")
    assert doc == {"start": "09:00", "stop": "10:30", "n": 900, "x": 1.5}


def test_float_amounts_are_exact_decimals():
    assert Amount.model_validate({"value": 0.1, "unit": "mg"}).value == Decimal("0.1")
    assert Amount.model_validate({"value": 22.5, "unit": "mg"}).value == Decimal("22.5")


def test_encounter_defaults_and_unknown_fields_kept_aside():
    enc = Encounter.model_validate(
        {"id": 42, "setting": "office", "date_of_service": "2026-03-04", "diagnoses": ["c3411"], "extra": 1,
         "administrations": [{"id": "a1", "route": "iv_push", "start": "09:00"}]}
    )
    assert enc.id == "42"
    assert enc.diagnoses == ["C34.11"]
    adm = enc.administrations[0]
    assert (adm.access, adm.primary_reason, adm.drugs, adm.stop) == ("main", False, [], None)
    assert enc.model_extra == {"extra": 1}


def test_every_contract_field_is_accepted():
    """Every field of the contract's example (docs/encounter-format.md) is accepted under its name."""
    doc = {
        "id": "ENC-2026-0042", "setting": "office", "date_of_service": "2026-03-04",
        "payer": {"name": "Medicare Part B", "type": "medicare", "member_id": "1EG4TE5MK72",
                  "coverage_start": "2026-01-01", "coverage_end": None},
        "diagnoses": ["C34.11", "Z51.11"],
        "administrations": [{
            "id": "a1", "route": "iv_infusion", "access": "port", "start": "09:00", "stop": "11:30",
            "drugs": [{"hcpcs": "J9271", "ndc": "0006-3026-02", "name": "pembrolizumab", "manufacturer": None,
                       "dose": {"value": 200, "unit": "mg"},
                       "container": {"type": "single_dose", "size": {"value": 100, "unit": "mg"}, "count": 2},
                       "discarded": {"value": 0, "unit": "mg"}, "supplied_by": "practice", "kind": None}],
            "purpose": None, "primary_reason": False, "separate_access_reason": None, "discontinued": None,
            "pump": None, "research": None}],
        "services": [{"code": "99214", "separately_identifiable": True}],
        "clinical_trial": {"nct": "NCT01234567", "qualifying": True,
                           "billing_grid": [{"item": "J9999", "payer": "sponsor"}, {"item": "96413", "payer": "insurance"}]},
        "treatment_plan": {"id": "TP-7", "regimen": "carboplatin + pemetrexed + pembrolizumab", "drugs": ["J9045", "J9305", "J9271"],
                           "cycle": 2, "planned_cycles": 4, "diagnoses": ["C34.11"],
                           "modifications": [{"date": "2026-02-10", "reason": "disease progression", "change": "pemetrexed stopped"}]},
        "evidence": [{"kind": "biomarker", "name": "PD-L1 TPS", "value": "60%"}, {"kind": "stage", "value": "IV"}],
        "authorizations": [{"number": "PA-55102", "codes": ["J9271"], "start": "2026-01-15", "end": "2026-07-15", "units": 800}],
    }
    enc = Encounter.model_validate(doc)
    assert enc.model_extra == {}
    assert enc.administrations[0].drugs[0].ndc == "00006302602"


def test_claim_why_serialises_from_under_its_contract_name():
    why = Why(rule="admin.initial", text="t", **{"from": ["a1"]})
    claim = Claim(encounter="E", setting="office", lines=[], clean=True)
    assert why.model_dump(by_alias=True)["from"] == ["a1"]
    assert claim.model_dump(mode="json")["clean"] is True
