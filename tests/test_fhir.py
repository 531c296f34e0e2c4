"""FHIR R4 Bundle input: a bundle and the native encounter it mirrors give identical claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.formats.fhir import bundle_to_document, encounter_to_bundle, load_bundle
from oncologic.load import InputError, load_file, validate
from oncologic.model import absolute_time
from oncologic.render import claim_json
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [
    (ROOT / "examples/fhir/seed_session.bundle.json", ROOT / "examples/seed_session.yaml"),
    (ROOT / "examples/fhir/office_trial.bundle.json", ROOT / "examples/fhir/office_trial.yaml"),
]


@pytest.mark.parametrize("bundle,native", PAIRS, ids=lambda p: p.name)
def test_bundle_gives_the_native_claim(bundle: Path, native: Path) -> None:
    from_fhir = load_bundle(str(bundle))
    from_native = load_file(str(native))
    assert from_fhir.encounter == from_native.encounter
    a, b = code_encounters([from_fhir, from_native])
    assert claim_json(a) == claim_json(b)
    assert a.lines, "the example should produce claim lines"


def test_cli_from_fhir_is_byte_identical() -> None:
    runner = CliRunner()
    for bundle, native in PAIRS:
        r1 = runner.invoke(main, ["solve", "--from", "fhir", str(bundle), "--json"])
        r2 = runner.invoke(main, ["solve", str(native), "--json"])
        assert r1.exit_code == 0 and r2.exit_code == 0, r1.output
        assert r1.stdout == r2.stdout


def _examples() -> list[Path]:
    return sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_round_trip_native_bundle_native(path: Path) -> None:
    loaded = load_file(str(path))
    doc, warnings = bundle_to_document(json.loads(json.dumps(encounter_to_bundle(loaded.encounter))))
    assert warnings == []
    again = validate(doc)

    def same_clock(enc):  # "11:10" and "2026-03-04T11:10" are the same moment
        data = enc.model_dump()
        for adm in data["administrations"]:
            for key in ("start", "stop"):
                if adm[key] is not None:
                    adm[key] = absolute_time(enc.date_of_service, adm[key])
        return data

    assert same_clock(again.encounter) == same_clock(loaded.encounter)
    a, b = code_encounters([loaded, again])
    assert claim_json(a) == claim_json(b)


def test_unmapped_content_is_reported_not_dropped() -> None:
    loaded = load_bundle(str(PAIRS[0][0]))
    assert any("AllergyIntolerance is not mapped" in w for w in loaded.warnings)
    bundle = json.loads(PAIRS[0][0].read_text())
    ma = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationAdministration")
    ma["dosage"]["rateQuantity"] = {"value": 100, "unit": "mL/h"}
    ma["dosage"]["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": "999999999"}]}
    doc, warnings = bundle_to_document(bundle)
    assert any("rateQuantity" in w for w in warnings)
    assert any("dosage.route" in w for w in warnings)


def test_snomed_iv_without_period_is_a_push() -> None:
    bundle = json.loads(PAIRS[0][0].read_text())
    ma = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationAdministration")
    start = ma.pop("effectivePeriod")["start"]
    ma["effectiveDateTime"] = start
    doc, _ = bundle_to_document(bundle)
    adm = next(a for a in doc["administrations"] if a["id"] == ma["id"])
    assert adm["route"] == "iv_push" and "stop" not in adm


def test_infusion_without_end_keeps_the_stop_missing() -> None:
    bundle = json.loads(PAIRS[0][0].read_text())
    ma = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationAdministration")
    del ma["effectivePeriod"]["end"]
    loaded = validate(bundle_to_document(bundle)[0])
    claim = code_encounters([loaded])[0]
    assert any(f.subject == ma["id"] and f.severity == "error" for f in claim.findings)


def test_bad_bundles_are_rejected_with_a_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        bundle_to_document({"resourceType": "Patient"})
    assert "resourceType" in exc.value.render()
    bundle = json.loads(PAIRS[0][0].read_text())
    enc = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    enc["type"] = []
    enc.pop("class", None)
    with pytest.raises(InputError) as exc:
        bundle_to_document(bundle)
    assert ".type" in exc.value.render()
    # a contract violation inside the bundle names the FHIR element (issue 11), and the mapping
    # warnings are printed with the rejection
    bundle = json.loads(PAIRS[0][0].read_text())
    ma = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationAdministration")
    ma["effectivePeriod"]["end"] = "2026-03-04T01:00:00-05:00"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["solve", "--from", "fhir", str(path)])
    assert result.exit_code == 2
    assert "resource.effectivePeriod.end: stop" in result.output and "Bundle.entry[" in result.output
    assert "administrations[" not in result.output
    assert "warning: fhir: Bundle.entry[11].resource: AllergyIntolerance is not mapped" in result.output
    assert "Traceback" not in result.output


def test_fhir_claim_output_is_a_claim_resource() -> None:
    result = CliRunner().invoke(main, ["solve", str(PAIRS[1][1]), "--format", "fhir-claim"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    claim = code_encounters([load_file(str(PAIRS[1][1]))])[0]
    assert res["resourceType"] == "Claim" and res["type"]["coding"][0]["code"] == "professional"
    for key in ("status", "type", "use", "patient", "created", "provider", "priority", "insurance"):
        assert key in res
    assert [i["productOrService"]["coding"][0]["code"] for i in res["item"]] == [ln.code for ln in claim.lines]
    assert [i["quantity"]["value"] for i in res["item"]] == [ln.units for ln in claim.lines]
    for item, ln in zip(res["item"], claim.lines):
        why = next(e for e in item["extension"] if e["url"].endswith("/why"))
        assert {"url": "rule", "valueString": ln.why.rule} in why["extension"]
        if ln.ndc:
            assert item["detail"][0]["productOrService"]["coding"][0]["code"] == ln.ndc
