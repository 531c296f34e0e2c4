"""FHIR as hospitals send it (issue 11): bundles shaped like Epic, Oracle Health (Cerner), mCODE
and Synthea output (tests/fhir/, written from the published R4 examples, US Core and mCODE
shapes, never from oncologic's output), read with the example site file (examples/site/)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.formats.fhir import bundle_to_document, bundle_to_documents, load_bundle, validate_mapped
from oncologic.formats.fhir_parts import sopt_payer_type
from oncologic.formats.site import load_site
from oncologic.load import InputError
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parents[1]
FHIR = ROOT / "tests" / "fhir"
SITE_PATH = ROOT / "examples" / "site" / "site.toml"


@pytest.fixture(scope="module")
def site():
    return load_site(SITE_PATH)


def _bundle(name: str) -> dict:
    return json.loads((FHIR / name).read_text())


def _res(bundle: dict, rid: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == rid)


def _code(bundle: dict, site) -> list:
    mapped = bundle_to_documents(bundle, site)
    return code_encounters([validate_mapped(m, site=site) for m in mapped])


def _lines(claim) -> dict[str, tuple[int, list[str]]]:
    return {ln.code: (ln.units, ln.modifiers) for ln in claim.lines}


# --------------------------------------------------------------------------------------------
# payer typology: checked against the typology's own definitions
# (PHDSC Source of Payment Typology, code system https://nahdo.org/sopt, as listed in the
# US Core / CARIN coverage-type value set comparison, build.fhir.org/ig/HL7/carin-bb/
# us-core-comparisons/vs-2.16.840.1.114222.4.11.3591-coverage-type.html)

PUBLISHED = [
    ("11", "Medicare Managed Care (Includes Medicare Advantage Plans)"),
    ("111", "Medicare HMO"),
    ("112", "Medicare PPO"),
    ("113", "Medicare POS"),
    ("119", "Medicare Managed Care Other"),
    ("12", "Medicare (Non-managed Care)"),
    ("121", "Medicare FFS"),
    ("123", "Medicare Medical Savings Account (MSA)"),
    ("129", "Medicare Non-managed Care Other"),
    ("21", "Medicaid (Managed Care)"),
    ("22", "Medicaid (Non-managed Care Plan)"),
]


@pytest.mark.parametrize("code,display", PUBLISHED)
def test_sopt_follows_the_published_definitions(code: str, display: str) -> None:
    _known, ptype = sopt_payer_type(code)
    words = display.lower()
    if words.startswith("medicaid"):
        assert ptype == "medicaid"
    elif "non-managed" in words or "ffs" in words or "savings" in words:
        assert ptype == "medicare"  # fee-for-service Medicare
    else:
        assert ptype == "medicare_advantage"  # managed care: Medicare Advantage


def test_sopt_codes_that_do_not_say_which_medicare_are_unknown() -> None:
    for code in ("1", "122", "13", "19", "3", "9"):
        assert sopt_payer_type(code)[1] is None


def test_medicare_advantage_coverage_codes_as_medicare_advantage(site) -> None:
    b = _bundle("pump_46h.json")
    _res(b, "cov")["type"]["coding"][0].update(code="111", display="Medicare HMO")
    doc, _w = bundle_to_document(b, site)
    assert doc["payer"]["type"] == "medicare_advantage"


# --------------------------------------------------------------------------------------------
# Epic shape: RxNorm + Epic ERX codes, UTC times, location only


def test_epic_bundle_codes_through_the_formulary(site) -> None:
    (claim,) = _code(_bundle("epic_pembrolizumab.json"), site)
    lines = _lines(claim)
    assert claim.setting == "facility"
    assert lines["96413"] == (1, []) and lines["96375"][0] == 1
    assert lines["J9271"] == (200, ["JZ"]) and lines["J2405"][0] == 8
    pembro = next(ln for ln in claim.lines if ln.code == "J9271")
    assert any("site formulary row 2" in r for r in pembro.why.from_)
    assert claim.lines[0].date.isoformat() == "2026-03-04"
    assert not [f for f in claim.findings if f.severity == "error"]


def test_epic_times_are_read_in_the_clinic_zone(site) -> None:
    doc, _w = bundle_to_document(_bundle("epic_pembrolizumab.json"), site)
    pembro = next(a for a in doc["administrations"] if a["id"] == "eMAR.pembro")
    assert (pembro["start"], pembro["stop"]) == ("09:20", "09:52")  # 14:20Z-14:52Z in New York (EST)


def test_diagnoses_encounter_first_resolved_problems_left_out(site) -> None:
    doc, warnings = bundle_to_document(_bundle("epic_pembrolizumab.json"), site)
    assert doc["diagnoses"] == ["C34.11", "Z51.12"]
    assert any("D63.0 left off the claim" in w for w in warnings)
    b = _bundle("epic_pembrolizumab.json")
    _res(b, "eAnemia")["category"] = _res(b, "eZ5112")["category"]  # an encounter diagnosis, but resolved
    doc, warnings = bundle_to_document(b, site)
    assert "D63.0" not in doc["diagnoses"] and any("D63.0 left off the claim: clinical status resolved" in w for w in warnings)


def test_rxnorm_only_without_formulary_is_an_error_finding_not_a_rejection() -> None:
    b = _bundle("epic_pembrolizumab.json")
    enc = _res(b, "eGmO0h.1.UQQgr8a8yRRAbQ3")
    enc["type"] = [{"coding": [{"system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set", "code": "22"}]}]
    _res(b, "eCov1")["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": "121"}]}
    (claim,) = _code(b, None)
    unmapped = [f for f in claim.findings if f.code == "DRUG_CODE_UNMAPPED"]
    assert {f.subject for f in unmapped} == {"eMAR.pembro.drugs[0]", "eMAR.ond.drugs[0]"}
    assert all("no site formulary" in f.message and f.severity == "error" for f in unmapped)
    assert any("1547545" in f.message for f in unmapped) and not claim.clean


def test_amb_alone_does_not_decide_the_setting() -> None:
    b = _bundle("epic_pembrolizumab.json")
    _res(b, "eGmO0h.1.UQQgr8a8yRRAbQ3")["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    with pytest.raises(InputError) as info:
        bundle_to_document(b, None)
    text = info.value.render()
    assert "Bundle.entry[2].resource.type" in text and "[locations]" in text and "AMB alone" in text.replace("class AMB alone", "AMB alone")


def test_coverage_without_typology_maps_through_site_payers_or_is_a_finding(site) -> None:
    doc, _w = bundle_to_document(_bundle("epic_pembrolizumab.json"), site)
    assert doc["payer"]["type"] == "medicare"
    b = _bundle("epic_pembrolizumab.json")
    _res(b, "eCov1")["payor"] = [{"display": "SOME LOCAL PLAN"}]
    _res(b, "eCov1")["class"] = []
    (claim,) = _code(b, site)
    assert any(f.code == "PAYER_TYPE_UNKNOWN" and f.severity == "error" for f in claim.findings)


# --------------------------------------------------------------------------------------------
# Oracle Health shape: class O, infuse-over extension, dose as volume with strength


def test_cerner_infuse_over_and_strength_times_volume(site) -> None:
    (claim,) = _code(_bundle("cerner_paclitaxel.json"), site)
    lines = _lines(claim)
    assert claim.setting == "facility" and lines["96413"] == (1, []) and lines["J9267"][0] == 140
    assert not any(c.startswith("9640") for c in lines)  # not a push
    basis = next(f for f in claim.findings if f.code == "DOSE_FROM_STRENGTH")
    assert "140 mg per 250 mL x 250 mL infused = 140 mg" in basis.message


def test_duration_from_the_rate_when_no_extension(site) -> None:
    b = _bundle("cerner_paclitaxel.json")
    del _res(b, "ma-pac")["extension"]
    doc, warnings = bundle_to_document(b, site)
    pac = next(a for a in doc["administrations"] if a["id"] == "ma-pac")
    assert (pac["start"], pac["stop"], pac["route"]) == ("10:00", "11:00", "iv_infusion")
    assert any("250 mL at 250 mL/h" in w for w in warnings)


def test_partial_bag_is_prorated(site) -> None:
    b = _bundle("cerner_paclitaxel.json")
    _res(b, "ma-pac")["dosage"]["dose"]["value"] = 200
    (claim,) = _code(b, site)
    assert _lines(claim)["J9267"][0] == 112
    assert any("x 200 mL infused = 112 mg" in f.message for f in claim.findings if f.code == "DOSE_FROM_STRENGTH")


def test_status_entered_in_error_and_not_done_are_not_billed(site) -> None:
    (claim,) = _code(_bundle("cerner_paclitaxel.json"), site)
    reasons = {nb.subject: nb.why for nb in claim.not_billed}
    assert reasons["ma-pac-void"].rule == "records.entered_in_error"
    assert reasons["ma-dex-notdone"].rule == "records.not_done_reason" and "Patient refused" in reasons["ma-dex-notdone"].text
    assert "J1100" not in _lines(claim) and _lines(claim)["J9267"][0] == 140  # the void bag is not counted


def test_mixed_offsets_without_site_zone_are_converted_not_dropped() -> None:
    b = _bundle("pump_46h.json")
    ma = _res(b, "fu-pump")
    ma["effectivePeriod"] = {"start": "2026-03-04T10:00:00-05:00", "end": "2026-03-04T16:00:00Z"}  # 10:00 to 11:00 local
    doc, warnings = bundle_to_document(b, None)
    adm = doc["administrations"][0]
    assert (adm["start"], adm["stop"]) == ("10:00", "11:00")
    assert any("another UTC offset" in w for w in warnings)


# --------------------------------------------------------------------------------------------
# the 46-hour pump


def test_46_hour_pump_from_the_device(site) -> None:
    (claim,) = _code(_bundle("pump_46h.json"), site)
    assert "96416" in _lines(claim) and "96415" not in _lines(claim)


def test_46_hour_infusion_without_pump_is_never_clean(site) -> None:
    b = _bundle("pump_46h.json")
    del _res(b, "fu-pump")["device"]
    (claim,) = _code(b, site)
    assert not claim.clean and any(f.code == "LONG_INFUSION_NO_PUMP" for f in claim.findings)


# --------------------------------------------------------------------------------------------
# several encounters, several days


def test_one_encounter_holding_two_days_is_two_claims(site) -> None:
    b = _bundle("cerner_paclitaxel.json")
    day8 = copy.deepcopy(_res(b, "ma-pac"))
    day8["id"] = "ma-pac-d8"
    day8["effectiveDateTime"] = "2026-03-11T15:00:00.000Z"
    b["entry"].append({"resource": day8})
    mapped = bundle_to_documents(b, site)
    assert [m.document["date_of_service"] for m in mapped] == ["2026-03-04", "2026-03-11"]
    claims = code_encounters([validate_mapped(m, site=site) for m in mapped])
    for claim in claims:
        assert _lines(claim)["96413"] == (1, []) and "96415" not in _lines(claim) and _lines(claim)["J9267"][0] == 140
    with pytest.raises(InputError, match="batch --from fhir"):
        bundle_to_document(b, site)


def test_bundle_with_several_encounters_codes_each(site, tmp_path: Path) -> None:
    a, c = _bundle("epic_pembrolizumab.json"), _bundle("cerner_paclitaxel.json")
    wellness = {"resourceType": "Encounter", "id": "wellness-1", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "period": {"start": "2026-02-01T09:00:00-05:00"}}
    both = {"resourceType": "Bundle", "type": "searchset", "entry": a["entry"] + c["entry"] + [{"resource": wellness}]}
    mapped = bundle_to_documents(both, site)
    assert sorted(m.document["id"] for m in mapped) == ["97953477", "eGmO0h.1.UQQgr8a8yRRAbQ3"]
    assert any("wellness-1 has no medication record" in w for w in mapped[0].warnings)
    # batch --from fhir over a folder of bundles and an NDJSON file
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(both))
    (folder / "b.ndjson").write_text(json.dumps(_bundle("pump_46h.json")) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["batch", "--from", "fhir", str(folder), "-o", str(out), "--workers", "0",
                                       "--site", str(SITE_PATH), "--no-progress"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["record"] for r in records] == [1, 2, 3]
    assert sorted(r["encounter"] for r in records) == ["97953477", "eGmO0h.1.UQQgr8a8yRRAbQ3", "enc-folfox-c3"]
    assert all("claim" in r for r in records)


def test_bulk_export_ndjson_resources_are_one_bundle(site, tmp_path: Path) -> None:
    lines = [json.dumps(e["resource"]) for e in _bundle("cerner_paclitaxel.json")["entry"]]
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["batch", "--from", "fhir", str(path), "-o", str(out), "--workers", "0",
                                       "--site", str(SITE_PATH), "--no-progress"])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["encounter"] == "97953477" and any(ln["code"] == "J9267" for ln in record["claim"]["lines"])


# --------------------------------------------------------------------------------------------
# mCODE shape: statement + chemotherapy procedure, no administration


def test_statement_and_procedure_without_administrations_is_never_clean(site) -> None:
    (claim,) = _code(_bundle("mcode_statement_only.json"), site)
    assert not claim.clean
    missing = [f for f in claim.findings if f.code == "ADMINISTRATIONS_MISSING"]
    assert missing and missing[0].subject == "cancer-related-medication-statement-pembro-jenny-m"


def test_mcode_date_only_administration_names_the_element(site) -> None:
    b = _bundle("mcode_statement_only.json")
    b["entry"].append({"resource": {
        "resourceType": "MedicationAdministration", "id": "cancer-related-medication-admin-paclitaxel-jenny-m", "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "56946", "display": "PACLitaxel"}]},
        "subject": {"reference": "Patient/cancer-patient-jenny-m"}, "context": {"reference": "Encounter/jenny-m-infusion-visit"},
        "effectiveDateTime": "2026-03-04",
        "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}, "dose": {"value": 272.01, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}}})
    m = bundle_to_documents(b, site)[0]
    with pytest.raises(InputError) as info:
        validate_mapped(m, site=site)
    assert "Bundle.entry[6].resource.effectiveDateTime" in info.value.render()


# --------------------------------------------------------------------------------------------
# errors and warnings


def test_rejection_prints_the_mapping_warnings_and_fhir_paths(tmp_path: Path) -> None:
    b = _bundle("cerner_paclitaxel.json")
    _res(b, "ma-pac")["dosage"]["route"] = {"text": "IV"}
    _res(b, "ma-pac")["effectiveDateTime"] = "2026-03-04T15:00:00.000Z"
    _res(b, "ma-pac")["dosage"]["dose"] = {"value": 250, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    _res(b, "ma-pac")["contained"][0]["ingredient"][0]["strength"]["numerator"]["code"] = "mg/dL"
    _res(b, "ma-pac")["contained"][0]["ingredient"][0]["strength"]["numerator"]["unit"] = "mg/dL"
    _res(b, "97953477")["class"] = {"code": "AMB"}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(b))
    result = CliRunner().invoke(main, ["solve", "--from", "fhir", str(path)])
    assert result.exit_code == 2
    assert "warning: fhir:" in result.output and "Bundle.entry[1].resource.type" in result.output
    assert "Traceback" not in result.output


def test_cli_solve_with_site_from_fhir() -> None:
    result = CliRunner().invoke(main, ["solve", "--from", "fhir", str(FHIR / "cerner_paclitaxel.json"), "--site", str(SITE_PATH), "--json"])
    assert result.exit_code == 0, result.output
    claim = json.loads(result.stdout)
    assert {ln["code"] for ln in claim["lines"]} == {"96413", "J9267"}


def test_load_bundle_api_takes_the_site() -> None:
    loaded = load_bundle(str(FHIR / "cerner_paclitaxel.json"), site=load_site(SITE_PATH))
    assert loaded.encounter.payer.type == "medicare" and loaded.encounter.payer.name == "Medicare Part B"


# --------------------------------------------------------------------------------------------
# robustness: an element of the wrong JSON type is an error naming it, never a traceback

WRONG = [None, 1, -5, 1.5, "", "x", "2026-13-45T99:99", [], {}, [1], {"a": 1}, True, {"reference": 5},
         {"coding": "x"}, {"coding": [None, 1, {"system": None, "code": []}]}, {"value": "abc", "unit": "mg"}]


def _paths(obj, pre=()):
    yield pre
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, pre + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, pre + (i,))


def test_mutated_bundles_never_raise_anything_but_input_errors(site) -> None:
    import random

    rnd = random.Random(11)
    bundles = [_bundle(p.name) for p in sorted(FHIR.glob("*.json"))]
    for n in range(300):
        b = copy.deepcopy(rnd.choice(bundles))
        for _ in range(rnd.randint(1, 3)):
            p = rnd.choice([p for p in _paths(b) if p])
            holder = b
            for k in p[:-1]:
                holder = holder[k]
            holder[p[-1]] = copy.deepcopy(rnd.choice(WRONG))
        try:
            for m in bundle_to_documents(b, site if n % 2 else None):
                try:
                    validate_mapped(m, site=site)
                except InputError:
                    pass
        except InputError as exc:
            assert exc.problems and all(isinstance(p, str) and p for p, _m in exc.problems)


def test_wrong_json_type_names_the_element() -> None:
    b = _bundle("cerner_paclitaxel.json")
    _res(b, "ma-pac")["dosage"]["route"] = "IV"
    with pytest.raises(InputError) as info:
        bundle_to_documents(b)
    assert "Bundle.entry[4].resource.dosage.route: a JSON object is expected" in info.value.render()


# --------------------------------------------------------------------------------------------
# each bug once more, on the element alone (each of these fails when its fix is undone)


def test_infuse_over_extension_alone_gives_the_duration(site) -> None:
    b = _bundle("cerner_paclitaxel.json")
    del _res(b, "ma-pac")["dosage"]["rateQuantity"]
    _res(b, "ma-pac")["extension"][0]["valueQuantity"]["value"] = 180  # a 3-hour paclitaxel
    doc, warnings = bundle_to_document(b, site)
    pac = next(a for a in doc["administrations"] if a["id"] == "ma-pac")
    assert (pac["start"], pac["stop"]) == ("10:00", "13:00")
    assert any("+ 180 minutes (the infuse-over extension)" in w for w in warnings)
    (claim,) = _code(b, site)
    assert _lines(claim)["96413"] == (1, []) and _lines(claim)["96415"] == (2, [])


def test_active_problem_list_condition_is_left_off(site) -> None:
    b = _bundle("epic_pembrolizumab.json")
    anemia = _res(b, "eAnemia")
    anemia["clinicalStatus"]["coding"][0]["code"] = "active"
    del anemia["abatementDateTime"]
    doc, warnings = bundle_to_document(b, site)
    assert "D63.0" not in doc["diagnoses"]
    assert any("D63.0 left off the claim: not an encounter diagnosis (category problem-list-item)" in w for w in warnings)
    anemia["category"] = _res(b, "eZ5112")["category"]  # the same Condition as an encounter diagnosis is kept
    doc, _w = bundle_to_document(b, site)
    assert "D63.0" in doc["diagnoses"]


def test_stopped_administration_is_coded_by_the_minutes_given(site) -> None:
    b = _bundle("cerner_paclitaxel.json")
    pac = _res(b, "ma-pac")
    pac["status"] = "stopped"
    pac["statusReason"] = [{"text": "Infusion reaction"}]
    del pac["extension"], pac["effectiveDateTime"], pac["dosage"]["rateQuantity"]
    pac["dosage"]["dose"]["value"] = 125  # half the bag given
    pac["effectivePeriod"] = {"start": "2026-03-04T15:00:00.000Z", "end": "2026-03-04T16:10:00.000Z"}  # 70 minutes
    doc, _w = bundle_to_document(b, site)
    adm = next(a for a in doc["administrations"] if a["id"] == "ma-pac")
    assert adm["discontinued"] == "Infusion reaction"
    (claim,) = _code(b, site)
    assert _lines(claim)["96413"] == (1, []) and "96415" not in _lines(claim)
    assert _lines(claim)["J9267"][0] == 70  # 140 mg per 250 mL x 125 mL


def test_class_o_alone_is_a_hospital_outpatient_encounter() -> None:
    doc, warnings = bundle_to_document(_bundle("cerner_paclitaxel.json"), None)
    assert doc["setting"] == "facility"
    assert any("outpatient (v2-0004 O) read as a hospital outpatient" in w for w in warnings)


def test_inpatient_class_is_refused_naming_the_element() -> None:
    b = _bundle("cerner_paclitaxel.json")
    _res(b, "97953477")["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"}
    with pytest.raises(InputError) as info:
        bundle_to_document(b, None)
    assert "Bundle.entry[1].resource.class" in info.value.render() and "inpatient" in info.value.render()


def test_amb_with_a_hospital_outpatient_type_is_facility() -> None:
    b = _bundle("epic_pembrolizumab.json")
    enc = _res(b, "eGmO0h.1.UQQgr8a8yRRAbQ3")
    enc["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    enc["type"] = [{"text": "Hospital Outpatient Infusion"}]
    doc, _w = bundle_to_document(b, None)
    assert doc["setting"] == "facility"


def test_hospital_location_type_is_facility() -> None:
    # US Core Location: type from the v3 ServiceDeliveryLocationRoleType value set
    b = _bundle("epic_pembrolizumab.json")
    _res(b, "e4W4rmGe9QzuGm2Dy4NBqVc0P0IKKr5nFo0Vy6HLBX6U3")["type"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "HOSP", "display": "Hospital"}]}]
    doc, _w = bundle_to_document(b, None)
    assert doc["setting"] == "facility"


def test_site_locations_decide_office_through_the_service_provider(site) -> None:
    b = _bundle("cerner_paclitaxel.json")
    enc = _res(b, "97953477")
    enc["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    enc["serviceProvider"] = {"reference": "Organization/55", "display": "Main Street Oncology Associates"}
    doc, _w = bundle_to_document(b, site)
    assert doc["setting"] == "office"
    (claim,) = _code(b, site)
    assert claim.setting == "office" and "96413" in _lines(claim)


def test_medication_request_without_administrations_is_never_clean(site) -> None:
    b = _bundle("epic_pembrolizumab.json")
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "MedicationAdministration"]
    b["entry"].append({"resource": {"resourceType": "Procedure", "id": "eProc1", "status": "completed",
                                    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "96413"}]},
                                    "subject": {"reference": "Patient/eTplvxCnWxDMbEv0Q7xFzPQ3"},
                                    "encounter": {"reference": "Encounter/eGmO0h.1.UQQgr8a8yRRAbQ3"},
                                    "performedDateTime": "2026-03-04T14:20:00Z"}})
    (claim,) = _code(b, site)
    assert not claim.clean
    missing = [f for f in claim.findings if f.code == "ADMINISTRATIONS_MISSING"]
    assert missing and missing[0].severity == "error" and missing[0].subject == "eRxPembro"
    assert not any(ln.code.startswith("J") for ln in claim.lines)


def test_the_date_of_service_is_the_clinics_local_date(site) -> None:
    # 00:20Z on March 5 is 19:20 on March 4 in New York: the date of service stays March 4
    b = _bundle("epic_pembrolizumab.json")
    _res(b, "eGmO0h.1.UQQgr8a8yRRAbQ3")["period"] = {"start": "2026-03-05T00:00:00Z", "end": "2026-03-05T01:30:00Z"}
    _res(b, "eMAR.ond")["effectiveDateTime"] = "2026-03-05T00:10:00Z"
    _res(b, "eMAR.pembro")["effectivePeriod"] = {"start": "2026-03-05T00:20:00Z", "end": "2026-03-05T00:52:00Z"}
    mapped = bundle_to_documents(b, site)
    assert [m.document["date_of_service"] for m in mapped] == ["2026-03-04"]
    (claim,) = code_encounters([validate_mapped(m, site=site) for m in mapped])
    assert {ln.date.isoformat() for ln in claim.lines} == {"2026-03-04"}


def test_pump_named_only_in_the_device_type_coding(site) -> None:
    b = _bundle("pump_46h.json")
    _res(b, "cadd-1")["type"] = {"coding": [{"system": "http://snomed.info/sct", "code": "0", "display": "Ambulatory infusion pump"}]}
    (claim,) = _code(b, site)
    assert "96416" in _lines(claim) and "96415" not in _lines(claim)
    # a device whose type says nothing about a pump decides nothing: the long infusion is an error
    _res(b, "cadd-1")["type"] = {"coding": [{"system": "http://snomed.info/sct", "code": "0"}]}
    (claim,) = _code(b, site)
    assert not claim.clean and any(f.code == "LONG_INFUSION_NO_PUMP" for f in claim.findings)


# --------------------------------------------------------------------------------------------
# the formulary: every system it lists, containers for JW/JZ


def test_formulary_maps_a_local_code_system_uri(site) -> None:
    # the Epic ERX code alone (no RxNorm coding): row 7 of examples/site/formulary.csv
    b = _bundle("epic_pembrolizumab.json")
    med = _res(b, "eMedPembro")
    med["code"]["coding"] = [c for c in med["code"]["coding"] if c["system"].startswith("urn:oid")]
    (claim,) = _code(b, site)
    pembro = next(ln for ln in claim.lines if ln.code == "J9271")
    assert pembro.units == 200 and "JZ" in pembro.modifiers
    assert any("site formulary row 7" in r for r in pembro.why.from_)


def test_multi_dose_formulary_row_gives_neither_jw_nor_jz(site) -> None:
    (claim,) = _code(_bundle("epic_pembrolizumab.json"), site)
    ond = next(ln for ln in claim.lines if ln.code == "J2405")
    assert not {"JW", "JZ"} & set(ond.modifiers)
    assert not any(f.code == "CONTAINER_MISSING" and f.subject.startswith("eMAR.ond") for f in claim.findings)


# --------------------------------------------------------------------------------------------
# --site on every command that reads an encounter


def test_cli_explain_report_and_batch_read_the_site(tmp_path: Path) -> None:
    bundle = str(FHIR / "epic_pembrolizumab.json")
    runner = CliRunner()
    without = runner.invoke(main, ["explain", "--from", "fhir", bundle])
    assert without.exit_code == 2 and "setting" in without.output  # no site: the location means nothing
    out = runner.invoke(main, ["explain", "--from", "fhir", bundle, "--site", str(SITE_PATH), "--json"])
    assert out.exit_code == 0, out.output
    trees = json.loads(out.stdout)
    text = json.dumps(trees)
    assert "J9271" in text and 'drug_formulary(1,2,1,2,\\"rxnorm 1547545\\")' in text  # formulary row 2 in the tree
    html = tmp_path / "r.html"
    out = runner.invoke(main, ["report", "--from", "fhir", bundle, "-o", str(html), "--site", str(SITE_PATH)])
    assert out.exit_code == 0, out.output
    page = html.read_text()
    assert "J9271" in page and "09:20" in page  # 14:20Z in the site's zone
    # batch over native encounters: the site's formulary gives the container (JZ) of an RxNorm-coded drug
    native = yaml.safe_load((ROOT / "examples" / "office_pembrolizumab_q3w.yaml").read_text())
    native["administrations"][0]["drugs"] = [{"code": {"system": "rxnorm", "code": "1547545"}, "dose": {"value": 200, "unit": "mg"}}]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(native, default=str) + "\n")
    res = tmp_path / "out.jsonl"
    out = runner.invoke(main, ["batch", str(src), "-o", str(res), "--workers", "0", "--site", str(SITE_PATH), "--no-progress"])
    assert out.exit_code == 0, out.output
    (record,) = [json.loads(line) for line in res.read_text().splitlines()]
    line = next(ln for ln in record["claim"]["lines"] if ln["code"] == "J9271")
    assert line["units"] == 200 and "JZ" in line["modifiers"]
    out = runner.invoke(main, ["batch", str(src), "-o", str(tmp_path / "plain.jsonl"), "--workers", "0", "--no-progress"])
    (plain,) = [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert any(f["code"] == "DRUG_CODE_UNMAPPED" for f in plain["claim"]["findings"]) and not plain["claim"]["clean"]


# --------------------------------------------------------------------------------------------
# Synthea shape: a transaction bundle with urn:uuid references, SNOMED-only conditions, an
# administration with only effectiveDateTime, the payer only in the ExplanationOfBenefit's
# contained Coverage


def test_synthea_bundle_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["solve", "--from", "fhir", str(FHIR / "synthea_carboplatin.json"), "--site", str(SITE_PATH)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Bundle.entry[2].resource: Condition has no ICD-10-CM coding" in result.output  # the warning, printed
    assert "Bundle.entry[1].resource.diagnosis" in result.output  # no claim diagnosis
    assert "Bundle.entry[3].resource.dosage.route: required field is missing" in result.output


def test_synthea_bundle_with_what_it_lacks_codes_through_the_site(tmp_path: Path) -> None:
    b = _bundle("synthea_carboplatin.json")
    _res(b, "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")["code"]["coding"].append({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C34.90"})
    ma = _res(b, "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f")
    del ma["effectiveDateTime"]
    ma["effectivePeriod"] = {"start": "2026-03-04T09:30:00-05:00", "end": "2026-03-04T10:30:00-05:00"}
    ma["dosage"] = {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}]},
                    "dose": {"value": 525, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
    (tmp_path / "f.csv").write_text("system,code,hcpcs,ndc,name,container_type,container_size,container_unit,charge_per_unit\n"
                                    "rxnorm,597195,J9045,,carboplatin 10 MG/ML (45 mL vial),multi_dose,450,mg,\n")
    (tmp_path / "site.toml").write_text('time_zone = "America/New_York"\nformulary = "f.csv"\n'
                                        '[payers]\n"Medicare" = "medicare"\n[locations]\n"Main Street Oncology Associates" = "office"\n')
    site = load_site(tmp_path / "site.toml")
    (claim,) = _code(b, site)
    assert claim.setting == "office"
    assert _lines(claim)["96413"] == (1, []) and _lines(claim)["J9045"] == (11, [])
    assert not any(f.code in ("PAYER_TYPE_UNKNOWN", "PAYER_MISSING", "DRUG_CODE_UNMAPPED") for f in claim.findings)
    doc, _w = bundle_to_document(b, site)
    assert doc["payer"] == {"type": "medicare", "name": "Medicare"}
    # without [payers] the contained Coverage still names the payer, and its unknown type is an error
    (tmp_path / "site.toml").write_text('formulary = "f.csv"\n[locations]\n"Main Street Oncology Associates" = "office"\n')
    (claim,) = _code(b, load_site(tmp_path / "site.toml"))
    assert not claim.clean and any(f.code == "PAYER_TYPE_UNKNOWN" for f in claim.findings)


def test_coverage_shaped_like_the_hl7_example_is_coded_with_an_unknown_payer_type(site, tmp_path: Path) -> None:
    # the shape of the FHIR R4 Coverage example: an ActCode type (EHCPOL, "extended healthcare"),
    # the payor an Organization reference, group and plan classes; no payment typology
    b = _bundle("cerner_paclitaxel.json")
    cov = _res(b, "4-7dCM4e-ScfYDMS0fZ2ix")
    cov["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EHCPOL", "display": "extended healthcare"}]}
    cov["payor"] = [{"reference": "Organization/2"}]
    cov["class"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]},
                     "value": "CB135", "name": "Corporate Baker's Inc. Local #35"},
                    {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}]},
                     "value": "B37FC", "name": "Full Coverage: Medical, Dental, Pharmacy, Vision, EHC"}]
    (claim,) = _code(b, site)  # coded, not rejected
    assert "96413" in _lines(claim) and not claim.clean
    assert any(f.code == "PAYER_TYPE_UNKNOWN" and f.severity == "error" for f in claim.findings)
    (tmp_path / "site.toml").write_text('[payers]\n"B37FC" = { type = "commercial", plan = "Baker\'s full coverage" }\n'
                                        '[locations]\n"Baseline West Medical Center" = "facility"\n')
    doc, _w = bundle_to_document(b, load_site(tmp_path / "site.toml"))
    assert doc["payer"]["type"] == "commercial" and doc["payer"]["name"] == "Baker's full coverage"
