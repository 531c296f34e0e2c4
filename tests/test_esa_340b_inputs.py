"""Issue #13 inputs: laboratory evidence (ESA lines), drugs[].acquired_340b, the site's 340B keys,
read from native YAML, FHIR (as an EHR writes an Observation) and the site file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oncologic.formats.fhir import bundle_to_document, encounter_to_bundle
from oncologic.formats.site import load_site
from oncologic.load import InputError, validate
from oncologic.render import claim_json
from oncologic.solver import code_encounters

ESA = {
    "id": "ESA-FHIR",
    "setting": "office",
    "date_of_service": "2026-03-04",
    "payer": {"type": "medicare", "member_id": "1EG4TE5MK72"},
    "diagnoses": ["C34.90", "D64.81"],
    "administrations": [
        {"id": "inj", "route": "subcutaneous", "start": "10:00",
         "drugs": [{"hcpcs": "J0881", "acquired_340b": True, "dose": {"value": 200, "unit": "mcg"},
                    "container": {"type": "single_dose", "size": {"value": 200, "unit": "mcg"}, "count": 1}}]},
    ],
    "evidence": [{"kind": "lab", "name": "hemoglobin", "value": "9.4", "unit": "g/dL", "date": "2026-03-04", "time": "08:15"}],
}


def _line(claim, code):
    return next(line for line in claim.lines if line.code == code)


def test_native_esa_line_reports_the_result_and_340b_modifier() -> None:
    claim = code_encounters([validate(ESA)])[0]
    line = _line(claim, "J0881")
    assert line.modifiers == ["JZ", "TB", "EA"]
    assert line.test_result is not None
    assert (line.test_result.code, line.test_result.value, line.test_result.evidence) == ("R1", "9.4", "evidence[0]")


def test_round_trip_keeps_lab_fields_and_the_340b_flag() -> None:
    loaded = validate(ESA)
    doc, warnings = bundle_to_document(json.loads(json.dumps(encounter_to_bundle(loaded.encounter))))
    assert warnings == []
    again = validate(doc)
    ev = again.encounter.evidence[0]
    assert (ev.value, ev.unit, str(ev.date), ev.time) == ("9.4", "g/dL", "2026-03-04", "08:15")
    assert again.encounter.administrations[0].drugs[0].acquired_340b is True
    a, b = code_encounters([loaded, again])
    assert claim_json(a) == claim_json(b)


def test_ehr_style_loinc_observation_is_read_as_a_dated_hemoglobin() -> None:
    """An Observation as EHRs send it: LOINC 718-7, UCUM quantity, an instant with an offset."""
    native = dict(ESA, evidence=[])
    bundle = encounter_to_bundle(validate(native).encounter)
    bundle["entry"].append({"resource": {
        "resourceType": "Observation", "id": "hgb1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-03-03T07:45:00-05:00",
        "valueQuantity": {"value": 9.8, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }})
    doc, _warnings = bundle_to_document(json.loads(json.dumps(bundle)))
    ev = doc["evidence"][0]
    assert (ev["kind"], ev["name"], ev["value"], ev["unit"], ev["date"]) == ("lab", "hemoglobin", "9.8", "g/dL", "2026-03-03")
    claim = code_encounters([validate(doc)])[0]
    assert _line(claim, "J0881").test_result.value == "9.8"


@pytest.mark.parametrize("value,unit,expect", [("9.45", "g/dL", "9.4"), ("94", "g/L", "9.4"), ("26.25", None, None)])
def test_values_are_cut_to_one_decimal_and_units_converted_exactly(value, unit, expect) -> None:
    ev = {"kind": "hemoglobin", "value": value, "date": "2026-03-01"}
    if unit:
        ev["unit"] = unit
    claim = code_encounters([validate(dict(ESA, evidence=[ev]))])[0]
    result = _line(claim, "J0881").test_result
    if expect is None:  # no unit: never guessed
        assert result is None
        assert {f.code for f in claim.findings} >= {"LAB_UNREADABLE", "ESA_LAB_MISSING"}
    else:
        assert result is not None and result.value == expect


def test_bad_lab_time_is_rejected_with_its_path() -> None:
    bad = dict(ESA, evidence=[{"kind": "hemoglobin", "value": "9", "unit": "g/dL", "date": "2026-03-01", "time": "8am"}])
    with pytest.raises(InputError) as exc:
        validate(bad)
    assert "evidence[0].time" in exc.value.render()


def test_site_340b_keys(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('acquired_340b = true\nprovider_type = "childrens"\n', encoding="utf-8")
    site = load_site(path)
    assert site.acquired_340b is True and site.provider_type == "childrens"
    path.write_text('provider_type = "dsh"\n', encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_site(path)
    assert "provider_type" in exc.value.render()


def test_site_wide_340b_marks_the_drug_of_a_record_that_does_not_say(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("acquired_340b = true\n", encoding="utf-8")
    doc = json.loads(json.dumps(ESA))
    del doc["administrations"][0]["drugs"][0]["acquired_340b"]
    without = code_encounters([validate(doc)])[0]
    with_site = code_encounters([validate(doc, site=load_site(path))])[0]
    assert "TB" not in _line(without, "J0881").modifiers
    assert "TB" in _line(with_site, "J0881").modifiers


def test_schema_names_the_new_fields() -> None:
    from click.testing import CliRunner

    from oncologic.cli import main

    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    defs = schema["$defs"]["Encounter"]["$defs"]
    assert "acquired_340b" in defs["Drug"]["properties"]
    assert {"unit", "date", "time"} <= set(defs["Evidence"]["properties"])
    assert "test_result" in json.dumps(schema)
