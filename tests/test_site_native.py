"""Native encounters read with a site file, and the contract additions the FHIR mapping uses:
time zones (issue 17: offsets are converted or rejected, never dropped), drugs known by their
own code (RxNorm) mapped through the site formulary, records that are not administrations, a
payer of unknown type."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from oncologic.formats.site import load_site
from oncologic.load import InputError, validate
from oncologic.solver import code_one

ROOT = Path(__file__).resolve().parents[1]
HEADER = "system,code,hcpcs,ndc,name,container_type,container_size,container_unit,charge_per_unit\n"


def _pembro() -> dict:
    return yaml.safe_load((ROOT / "examples" / "office_pembrolizumab_q3w.yaml").read_text())


def _site(tmp_path: Path, toml: str = "", csv: str | None = None):
    if csv is not None:
        (tmp_path / "f.csv").write_text(HEADER + csv)
        toml = 'formulary = "f.csv"\n' + toml
    (tmp_path / "site.toml").write_text(toml)
    return load_site(tmp_path / "site.toml")


def _codes(claim) -> list[tuple[str, int]]:
    return [(ln.code, ln.units) for ln in claim.lines]


def test_offsets_without_a_zone_are_an_error_naming_the_field() -> None:
    doc = _pembro()
    doc["administrations"][0]["start"] = "10:00+05:00"
    doc["administrations"][0]["stop"] = "10:30Z"
    with pytest.raises(InputError) as info:
        validate(doc)
    assert "administrations[0].start" in info.value.render() and "time zone" in info.value.render()


def test_offsets_are_converted_to_the_clinic_zone(tmp_path: Path) -> None:
    # 10:00+05:00 is 05:00Z; 10:30Z is 5 h 30 min later: not a 30-minute infusion
    doc = _pembro()
    doc["administrations"][0]["start"] = "2026-03-04T10:00-05:00"
    doc["administrations"][0]["stop"] = "2026-03-04T15:40Z"   # 10:40 in New York
    doc["administrations"][1]["start"] = "10:41"
    loaded = validate(doc, site=_site(tmp_path, 'time_zone = "America/New_York"\n'))
    adm = loaded.encounter.administrations[0]
    assert (adm.start, adm.stop) == ("2026-03-04T10:00", "2026-03-04T10:40")
    claim = code_one(loaded)
    assert ("96413", 1) in _codes(claim) and not any(c == "96415" for c, _u in _codes(claim))


def test_encounter_time_zone_field_converts_too() -> None:
    doc = _pembro()
    doc["time_zone"] = "America/Chicago"
    doc["administrations"][0]["start"] = "2026-03-04T16:15Z"  # 10:15 CST
    doc["administrations"][0]["stop"] = "2026-03-04T16:45Z"
    adm = validate(doc).encounter.administrations[0]
    assert (adm.start, adm.stop) == ("2026-03-04T10:15", "2026-03-04T10:45")
    doc["time_zone"] = "Central"
    with pytest.raises(InputError, match="time_zone"):
        validate(doc)


def test_rxnorm_only_drug_without_formulary_is_an_error_finding_not_a_rejection() -> None:
    doc = _pembro()
    doc["administrations"][0]["drugs"] = [{"code": {"system": "rxnorm", "code": "1657731"}, "dose": {"value": 200, "unit": "mg"}}]
    claim = code_one(validate(doc))
    f = [f for f in claim.findings if f.code == "DRUG_CODE_UNMAPPED"]
    assert f and f[0].severity == "error" and "1657731" in f[0].message and "no site formulary" in f[0].message
    assert not claim.clean


def test_formulary_maps_rxnorm_to_hcpcs_and_gives_the_container(tmp_path: Path) -> None:
    doc = _pembro()
    doc["administrations"][0]["drugs"] = [{"code": {"system": "rxnorm", "code": "1657731"}, "dose": {"value": 200, "unit": "mg"}}]
    site = _site(tmp_path, csv="rxnorm,1657731,J9271,00006302602,pembrolizumab 100 MG/4 ML,single_dose,100,mg,\n")
    loaded = validate(doc, site=site)
    drug = loaded.encounter.administrations[0].drugs[0]
    assert drug.hcpcs == "J9271" and drug.container.type == "single_dose"
    claim = code_one(loaded)
    line = next(ln for ln in claim.lines if ln.code == "J9271")
    assert line.units == 200 and "JZ" in line.modifiers  # single-dose, nothing discarded: JZ (Medicare)
    assert any("site formulary row 2" in r for r in line.why.from_)
    assert not [f for f in claim.findings if f.code == "DRUG_CODE_UNMAPPED"]


def test_formulary_row_that_does_not_match_leaves_an_error(tmp_path: Path) -> None:
    doc = _pembro()
    doc["administrations"][0]["drugs"] = [{"code": {"system": "rxnorm", "code": "999"}, "dose": {"value": 200, "unit": "mg"}}]
    claim = code_one(validate(doc, site=_site(tmp_path, csv="rxnorm,1657731,J9271,,pembrolizumab,,,,\n")))
    f = [f for f in claim.findings if f.code == "DRUG_CODE_UNMAPPED"]
    assert f and "no row of the site formulary" in f[0].message


def test_records_not_given_are_listed_as_not_billed() -> None:
    doc = _pembro()
    doc["not_administered"] = [{"id": "ma-void", "status": "entered_in_error"}, {"id": "ma-skip", "status": "not_done", "reason": "patient refused"}]
    claim = code_one(validate(doc))
    subjects = {nb.subject: nb.why.rule for nb in claim.not_billed}
    assert subjects.get("ma-void") == "records.entered_in_error" and subjects.get("ma-skip") == "records.not_done_reason"


def test_orders_without_administrations_are_never_clean() -> None:
    doc = _pembro()
    doc["administrations"] = []
    doc["services"] = [{"code": "96413"}]
    doc["not_administered"] = [{"id": "req-pembro", "status": "ordered", "drug": "pembrolizumab"}]
    claim = code_one(validate(doc))
    assert not claim.clean and any(f.code == "ADMINISTRATIONS_MISSING" for f in claim.findings)


def test_payer_without_type_is_a_finding() -> None:
    doc = _pembro()
    del doc["payer"]["type"]
    claim = code_one(validate(doc))
    assert any(f.code == "PAYER_TYPE_UNKNOWN" and f.severity == "error" for f in claim.findings)


def test_long_chemo_infusion_without_pump_is_an_error() -> None:
    doc = yaml.safe_load((ROOT / "examples" / "folfox_facility.yaml").read_text())
    pumps = [a for a in doc["administrations"] if a.get("pump")]
    assert pumps
    for a in pumps:
        del a["pump"]
    claim = code_one(validate(copy.deepcopy(doc)))
    assert any(f.code == "LONG_INFUSION_NO_PUMP" for f in claim.findings) and not claim.clean


def test_formulary_container_wins_over_the_fda_package_description(tmp_path: Path) -> None:
    # FDA package.txt: 16729-332-05 (oxaliplatin) "1 VIAL, SINGLE-DOSE in 1 CARTON"; the site's
    # formulary says the vials it stocks under that NDC are multi-dose: the site wins, the input
    # wins over both (docs/reference-data.md, container precedence)
    doc = yaml.safe_load((ROOT / "examples" / "office_pembrolizumab_q3w.yaml").read_text())
    doc["administrations"][0]["drugs"] = [{"hcpcs": "J9263", "ndc": "16729-0332-05", "dose": {"value": 150, "unit": "mg"}}]
    plain = code_one(validate(copy.deepcopy(doc)))
    assert any(f.code == "CONTAINER_FROM_FDA" for f in plain.findings)
    site = _site(tmp_path, csv="ndc,16729-0332-05,J9263,,oxaliplatin 5 MG/ML,multi_dose,100,mg,\n")
    claim = code_one(validate(copy.deepcopy(doc), site=site))
    assert not any(f.code == "CONTAINER_FROM_FDA" for f in claim.findings)
    assert not {"JW", "JZ"} & set(next(ln for ln in claim.lines if ln.code == "J9263").modifiers)
    doc["administrations"][0]["drugs"][0]["container"] = {"type": "single_dose"}
    claim = code_one(validate(copy.deepcopy(doc), site=site))
    assert "JZ" in next(ln for ln in claim.lines if ln.code == "J9263").modifiers
