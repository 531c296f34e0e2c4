"""Submission-ready 837s: charges, the patient, the rendering/attending provider, unique control
numbers, CL1, MEA, the NDC unit and the NOC description; each output is checked by two parsers
that are not oncologic's (pyx12 with the implementation-guide maps, and LinuxForHealth x12)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.formats.fhir import load_bundle
from oncologic.formats.x12 import (X12Error, load_config, next_control_number, note_values, split_note, lab_value,
                                   to_837)
from oncologic.load import load_file, validate
from oncologic.model import Line, NdcQuantity, Why, npi_valid
from oncologic.solver import code_encounters

pytest.importorskip("pyx12", reason="pyx12 is not installed: pip install -e '.[test]'")
from test_x12 import CHARGES, charged  # noqa: E402
from x12_parsers import HAVE_LFH, lfh_claims, lfh_parse, pyx12_validate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples/x12/config.toml"
SEED = ROOT / "examples/seed_session.yaml"
OFFICE = ROOT / "examples/fhir/office_trial.yaml"
needs_lfh = pytest.mark.skipif(not HAVE_LFH, reason="LinuxForHealth x12 is not installed: pip install -e '.[test]'")


def _coded(path: Path):
    loaded = load_file(str(path))
    return loaded, code_encounters([loaded])[0]


def _segs(text: str) -> list[str]:
    return text.rstrip("~\n").split("~")


def _with_charges(claim, master: dict[str, str]):
    """The claim as the charge master makes it: each line's ``charge`` = per-unit charge x units
    (the field the claim carries when the site gives a charge master)."""
    lines = [ln.model_copy(update={"charge": str((Decimal(master[ln.code]) * ln.units).quantize(Decimal("0.01")))})
             for ln in claim.lines]
    return claim.model_copy(update={"lines": lines})


# ---------------------------------------------------------------------------------------------
# done means: an 837P and an 837I with non-zero charges that both parsers accept


@needs_lfh
def test_example_837p_and_837i_with_charges_pass_both_parsers() -> None:
    texts, claims = [], []
    for path, kind in ((OFFICE, "P"), (SEED, "I")):
        loaded, claim = _coded(path)
        claim = _with_charges(claim, CHARGES)
        texts.append(to_837(claim, loaded.encounter, load_config(CONFIG), kind=kind))
        claims.append((loaded, claim))
    for text in texts:
        ok, report = pyx12_validate(text)
        assert ok, report
    results = lfh_parse(*texts)
    for (loaded, claim), res in zip(claims, results):
        assert res["ok"], res.get("error")
        [c] = lfh_claims(res["models"][0])
        want = sum(Decimal(ln.charge) for ln in claim.lines)
        assert want > 0 and Decimal(str(c["total"])) == want
        assert [Decimal(str(x["charge"])) for x in c["lines"]] == [Decimal(ln.charge) for ln in claim.lines]
        pt = loaded.encounter.patient
        assert (c["last"], c["first"], c["birth"], c["sex"]) == (pt.name.last.upper(), pt.name.first.upper(),
                                                                  pt.birth_date.isoformat(), pt.sex)
        assert c["member"] == loaded.encounter.payer.member_id
        assert c["provider_npi"] == "1245319599"
    cl1 = lfh_claims(results[1]["models"][0])[0]["cl1"]
    assert cl1["admission_type_code"] == "3" and cl1["patient_status_code"] == "01"


def test_the_config_charge_master_is_used_when_lines_carry_none() -> None:
    loaded, claim = _coded(SEED)
    text = to_837(claim, loaded.encounter, charged(), kind="I")
    clm = next(s for s in _segs(text) if s.startswith("CLM*"))
    want = sum(Decimal(CHARGES[ln.code]) * ln.units for ln in claim.lines)
    assert Decimal(clm.split("*")[2]) == want > 0
    assert pyx12_validate(text)[0]


# ---------------------------------------------------------------------------------------------
# 1. never a silent $0.00


def test_no_charges_is_refused_unless_zero_charges(tmp_path: Path) -> None:
    loaded, claim = _coded(SEED)
    with pytest.raises(X12Error) as err:
        to_837(claim, loaded.encounter, load_config(None), kind="I")
    msg = str(err.value)
    assert "no charge for line 1 (96413)" in msg and "--zero-charges" in msg and "charge master" in msg
    text = to_837(claim, loaded.encounter, load_config(None), kind="I", zero_charges=True)
    assert "CLM*ENC-SEED-001*0***" in text
    no_charges = _config_without(tmp_path, "charges")
    r = CliRunner().invoke(main, ["solve", str(SEED), "--format", "x12-837i", "--config", str(no_charges)])
    assert r.exit_code == 2 and "--zero-charges" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["solve", str(SEED), "--format", "x12-837i", "--config", str(no_charges), "--zero-charges"])
    assert r.exit_code == 0 and pyx12_validate(r.stdout)[0]
    # a partial charge master names the lines it lacks
    cfg = charged()
    del cfg.charges["J9263"]
    with pytest.raises(X12Error, match=r"line \d+ \(J9263\)"):
        to_837(claim, loaded.encounter, cfg, kind="I")


# ---------------------------------------------------------------------------------------------
# 2. the patient block


def _without(path: Path, *keys: str):
    import yaml

    data = yaml.safe_load(path.read_text())
    for k in keys:
        data.pop(k, None)
    return validate(json.loads(json.dumps(data, default=str)))


def test_patient_block_goes_to_nm1_n3_n4_dmg() -> None:
    loaded, claim = _coded(OFFICE)
    segs = _segs(to_837(claim, loaded.encounter, charged(), kind="P"))
    i = segs.index("NM1*IL*1*SAMPLE*ROBIN*J***MI*XYZ123456")
    assert segs[i + 1:i + 4] == ["N3*200 HARBOR DRIVE*APT 4B", "N4*ANNAPOLIS*MD*21401", "DMG*D8*19611130*M"]


def test_no_patient_is_an_error_unless_placeholders() -> None:
    loaded = _without(SEED, "patient")
    claim = code_encounters([loaded])[0]
    with pytest.raises(X12Error) as err:
        to_837(claim, loaded.encounter, charged(), kind="I")
    assert "patient" in str(err.value) and "--placeholders" in str(err.value)
    text = to_837(claim, loaded.encounter, charged(), kind="I", placeholders=True)
    assert "NM1*IL*1*EXAMPLE*PAT****MI*1EG4TE5MK72" in text and pyx12_validate(text)[0]  # the config's placeholders
    # a member id is needed too
    data = loaded.encounter.model_copy(update={"payer": loaded.encounter.payer.model_copy(update={"member_id": None})})
    with pytest.raises(X12Error, match="member_id"):
        to_837(claim, data, charged(), kind="I", placeholders=False)


def test_patient_contract_validation() -> None:
    import yaml

    from oncologic.load import InputError

    data = yaml.safe_load(SEED.read_text())
    data["patient"]["birth_date"] = "2027-01-01"
    with pytest.raises(InputError) as err:
        validate(json.loads(json.dumps(data, default=str)))
    assert "patient.birth_date" in err.value.render() and "after the date of service" in err.value.render()
    data = yaml.safe_load(SEED.read_text())
    data["patient"]["address"]["postal_code"] = "ABCDE"
    with pytest.raises(InputError) as err:
        validate(json.loads(json.dumps(data, default=str)))
    assert "patient.address.postal_code" in err.value.render()
    data = yaml.safe_load(SEED.read_text())
    data["attending_provider"]["npi"] = "1234567890"
    with pytest.raises(InputError) as err:
        validate(json.loads(json.dumps(data, default=str)))
    assert "attending_provider.npi" in err.value.render() and "check digit" in err.value.render()
    data = yaml.safe_load(SEED.read_text())
    data["patient"]["sex"] = "female"
    assert validate(json.loads(json.dumps(data, default=str))).encounter.patient.sex == "F"
    assert npi_valid("1245319599") and not npi_valid("1245319590")


def test_fhir_patient_in_us_core_shape() -> None:
    loaded = load_bundle(str(ROOT / "examples/fhir/office_trial.bundle.json"))
    pt = loaded.encounter.patient
    assert (pt.name.last, pt.name.first, pt.name.middle) == ("Sample", "Robin", "J")
    assert (pt.birth_date, pt.sex) == (dt.date(1961, 11, 30), "M")
    assert pt.address.lines == ["200 Harbor Drive", "Apt 4B"] and pt.address.postal_code == "21401"
    assert loaded.encounter.rendering_provider.npi == "1245319599"
    seed = load_bundle(str(ROOT / "examples/fhir/seed_session.bundle.json"))
    assert seed.encounter.attending_provider.name.last == "Nguyen"
    assert seed.encounter.patient.address.postal_code == "212181234"
    r = CliRunner().invoke(main, ["solve", "--from", "fhir", str(ROOT / "examples/fhir/office_trial.bundle.json"),
                                  "--format", "x12-837p", "--config", str(CONFIG), "--zero-charges"])
    assert r.exit_code == 0 and "NM1*IL*1*SAMPLE*ROBIN*J***MI*XYZ123456~" in r.stdout and "NM1*82*1*NGUYEN*LINDA" in r.stdout


def test_fhir_patient_partial_data_is_a_warning_not_a_rejection(tmp_path: Path) -> None:
    doc = json.loads((ROOT / "examples/fhir/office_trial.bundle.json").read_text())
    for e in doc["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            r["birthDate"] = "1961"  # a partial date (allowed in FHIR) cannot go on a claim
            r["identifier"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
                                "value": "MEMBER-9"}]
        if r["resourceType"] == "Practitioner":
            r["identifier"][0]["value"] = "1234567890"  # fails the check digit
    p = tmp_path / "b.json"
    p.write_text(json.dumps(doc))
    loaded = load_bundle(str(p))
    assert loaded.encounter.patient is None and loaded.encounter.rendering_provider is None
    assert any("birthDate" in w and "not a full date" in w for w in loaded.warnings)
    assert any("check digit" in w for w in loaded.warnings)
    assert loaded.encounter.administrations  # still coded
    for e in doc["entry"]:
        if e["resource"]["resourceType"] == "Patient":
            e["resource"]["birthDate"] = "1961-11-30"
    p.write_text(json.dumps(doc))
    assert load_bundle(str(p)).encounter.patient.member_id == "MEMBER-9"


# ---------------------------------------------------------------------------------------------
# 3. providers, control numbers, CL1, MEA, CTP, NOC description


def _config_without(tmp_path: Path, section: str, extra: str = "") -> Path:
    """The example config without one of its sections (and with ``extra`` appended)."""
    import re

    text = re.sub(r"^\[" + re.escape(section) + r"\][^\[]*", "", CONFIG.read_text(), flags=re.M)
    path = tmp_path / f"no-{section}.toml"
    path.write_text(text + extra)
    return path


def test_rendering_and_attending_provider_from_input_or_config(tmp_path: Path) -> None:
    loaded = _without(OFFICE, "rendering_provider")
    claim = code_encounters([loaded])[0]
    bare = _config_without(tmp_path, "rendering_provider")
    with pytest.raises(X12Error, match=r"rendering provider.*\[rendering_provider\]"):
        to_837(claim, loaded.encounter, charged(bare), kind="P")
    cfg_path = _config_without(tmp_path, "rendering_provider",
                               '\n[rendering_provider]\nlast_name = "Okafor"\nfirst_name = "Ada"\nnpi = "1679576722"\n')
    segs = _segs(to_837(claim, loaded.encounter, charged(cfg_path), kind="P"))
    assert "NM1*82*1*OKAFOR*ADA****XX*1679576722" in segs
    assert segs.index("NM1*82*1*OKAFOR*ADA****XX*1679576722") < segs.index("LX*1")
    # the encounter's own provider wins over the config's
    loaded, claim = _coded(OFFICE)
    assert "NM1*82*1*NGUYEN*LINDA****XX*1245319599" in to_837(claim, loaded.encounter, charged(cfg_path), kind="P")
    # 837I: the attending from the config when the encounter names none
    seed = _without(SEED, "attending_provider")
    sclaim = code_encounters([seed])[0]
    assert "NM1*71*1*SMITH*ALEX****XX*1234567893" in to_837(sclaim, seed.encounter, charged(), kind="I")
    with pytest.raises(X12Error, match="attending provider"):
        to_837(sclaim, seed.encounter, charged(None), kind="I")
    cfg_path.write_text('[rendering_provider]\nlast_name = "X"\nnpi = "1234567890"\n')
    with pytest.raises(X12Error, match="rendering_provider.npi"):
        load_config(cfg_path)


def _envelope(text: str) -> tuple[str, str, str, str]:
    segs = [s.split("*") for s in _segs(text)]
    by = {s[0]: s for s in segs}
    return by["ISA"][13], by["GS"][6], by["GE"][2], by["IEA"][2]


def test_control_numbers_from_a_counter_file_are_unique(tmp_path: Path) -> None:
    counter = tmp_path / "ctl.txt"
    runner = CliRunner()
    seen = []
    for _ in range(3):
        r = runner.invoke(main, ["solve", str(SEED), "--format", "x12-837i", "--config", str(CONFIG), "--zero-charges",
                                 "--counter-file", str(counter)])
        assert r.exit_code == 0, r.output
        isa, gs, ge, iea = _envelope(r.stdout)
        assert int(isa) == int(gs) == int(ge) == int(iea)
        seen.append(int(isa))
        assert pyx12_validate(r.stdout)[0]
    assert seen == [42, 43, 44]  # the config's control_number is the start
    assert counter.read_text().strip() == "44"
    # a refused 837 uses no number
    r = runner.invoke(main, ["solve", str(SEED), "--format", "x12-837i", "--config", str(_config_without(tmp_path, "charges")),
                             "--counter-file", str(counter)])
    assert r.exit_code == 2 and "no charge" in r.output and counter.read_text().strip() == "44"
    r = runner.invoke(main, ["solve", str(SEED), "--format", "x12-837i", "--zero-charges", "--control-number", "777"])
    assert r.exit_code == 0 and _envelope(r.stdout)[0] == "000000777"
    # the counter file from the config, relative to it; concurrent writers never share a number
    cfg = tmp_path / "c.toml"
    cfg.write_text('[interchange]\ncounter_file = "n.txt"\ncontrol_number = 100\n')
    assert load_config(cfg).counter_file == str(tmp_path / "n.txt")
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(20):
            n = next_control_number(tmp_path / "n.txt", 100)
            with lock:
                got.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(100, 180))
    (tmp_path / "bad.txt").write_text("abc")
    with pytest.raises(X12Error, match="not a number"):
        next_control_number(tmp_path / "bad.txt")


def test_cl1_admission_type_is_configurable(tmp_path: Path) -> None:
    loaded, claim = _coded(SEED)
    assert "CL1*3**01" in _segs(to_837(claim, loaded.encounter, charged(), kind="I"))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[claim]\nadmission_type = "9"\n')
    c = charged(cfg)
    assert "CL1*9**01" in _segs(to_837(claim, loaded.encounter, c, kind="I"))
    cfg.write_text('[claim]\nadmission_type = "7"\n')
    with pytest.raises(X12Error, match="admission_type"):
        load_config(cfg)


def _esa_claim(kind: str, value: str, which: str = "R1"):
    """A hand-built ESA claim: the line carries the most recent hemoglobin as its ``test_result``
    (``code`` R1 hemoglobin / R2 hematocrit, ``value``: the ESA rules put it there; here it is
    written by hand, as the writer must render whatever it is given)."""
    from types import SimpleNamespace

    loaded = load_file(str(SEED))
    enc = loaded.encounter.model_copy(update={"setting": "office" if kind == "P" else "facility"})
    why = Why(rule="test.esa", text="t", **{"from": ["esa"]})
    day = enc.date_of_service
    lines = [
        Line(line=1, code="96372", units=1, date=day, diagnoses=["D63.0"], why=why, charge="45.00"),
        Line(line=2, code="J0885", units=40, date=day, diagnoses=["D63.0"], modifiers=["EA", "JZ"], why=why, charge="400.00",
             ndc="59676034001", ndc_quantity=NdcQuantity(value=1, unit="UN")),
    ]
    lines[1] = lines[1].model_copy(update={"test_result": SimpleNamespace(code=which, value=value, unit="g/dL", evidence="hgb1")})
    from oncologic.model import Claim

    claim = Claim(encounter=enc.id, setting=enc.setting, lines=lines, clean=True,
                  claim_data={"revenue_code": ["rev(96372, 0260)", "rev(J0885, 0636)"]})
    for ln in claim.lines:  # before the charge field lands in the model, carry it as the merged claim will
        if getattr(ln, "charge", None) is None:
            ln.__dict__["charge"] = {"96372": "45.00", "J0885": "400.00"}[ln.code]
    return claim, enc.model_copy(update={"diagnoses": ["D63.0", "C34.11"]})


@needs_lfh
def test_esa_hemoglobin_goes_to_mea_on_837p_and_value_code_48_on_837i() -> None:
    claim, enc = _esa_claim("P", "9.85")
    p = to_837(claim, enc, charged(), kind="P")
    segs = _segs(p)
    assert "MEA*TR*R1*9.8" in segs  # one decimal, further decimals dropped (MM5699)
    sv1 = next(s for s in segs if s.startswith("SV1*HC:J0885:EA:JZ*400*UN*40*"))
    assert segs.index("MEA*TR*R1*9.8") == segs.index(sv1) + 2  # after DTP*472
    claim_i, enc_i = _esa_claim("I", "9.85")
    i = to_837(claim_i, enc_i, charged(), kind="I")
    assert "HI*BE:48:::9.8" in _segs(i) and "MEA*" not in i
    hct, enc_h = _esa_claim("P", "28", "R2")
    assert "MEA*TR*R2*28.0" in to_837(hct, enc_h, charged(), kind="P")
    for text in (p, i):
        assert pyx12_validate(text)[0], pyx12_validate(text)[1]
    res = lfh_parse(p, i)
    assert all(r["ok"] for r in res), res
    [c] = lfh_claims(res[0]["models"][0])
    assert c["lines"][1]["mea"][0]["measurement_value"] == 9.8
    assert [lab_value(v) for v in ("26.25", "28", "4.5", "0.9")] == ["26.2", "28.0", "4.5", "0.9"]
    bad, enc_b = _esa_claim("P", "9.8", "R9")
    with pytest.raises(X12Error, match="R1 .hemoglobin. nor R2"):
        to_837(bad, enc_b, charged(), kind="P")


def test_ndc_quantity_ml_for_volumes_un_for_whole_items_never_a_fraction_of_un() -> None:
    claim, enc = _esa_claim("P", "10")
    ml = claim.model_copy(update={"lines": [claim.lines[0], claim.lines[1].model_copy(
        update={"ndc_quantity": NdcQuantity(value=2.5, unit="ML")})]})
    assert "CTP****2.5*ML" in _segs(to_837(ml, enc, charged(), kind="P"))
    un = claim.model_copy(update={"lines": [claim.lines[0], claim.lines[1].model_copy(
        update={"ndc_quantity": NdcQuantity(value=3.5, unit="UN")})]})
    with pytest.raises(X12Error, match=r"3\.5 UN is a fraction"):
        to_837(un, enc, charged(), kind="P")
    assert "CTP****1*UN" in _segs(to_837(claim, enc, charged(), kind="P"))


def test_noc_description_is_split_between_values_never_inside_one() -> None:
    note = ("fam-trastuzumab deruxtecan-nxki biosimilar candidate NDC 12345678901 340 mg discarded 60 mg "
            "manufacturer Example Biologics Incorporated")
    assert note_values(note) == ["fam-trastuzumab deruxtecan-nxki biosimilar candidate", "NDC 12345678901", "340 mg",
                                 "discarded 60 mg", "manufacturer Example Biologics Incorporated"]
    head, rest = split_note(note)
    assert len(head) <= 80 and head == "FAM-TRASTUZUMAB DERUXTECAN-NXKI BIOSIMILAR CANDIDATE NDC 12345678901 340 MG"
    assert rest == "DISCARDED 60 MG MANUFACTURER EXAMPLE BIOLOGICS INCORPORATED"
    loaded = load_file(str(OFFICE))
    enc = loaded.encounter
    why = Why(rule="noc.units", text="t", **{"from": ["x"]})
    line = Line(line=1, code="J9999", units=1, date=enc.date_of_service, diagnoses=list(enc.diagnoses), why=why,
                ndc="12345678901", ndc_quantity=NdcQuantity(value=2, unit="UN"), note=note)
    from oncologic.model import Claim

    claim = Claim(encounter=enc.id, setting="office", lines=[line], clean=True)
    segs = _segs(to_837(claim, enc, charged(), kind="P"))
    sv1 = next(s for s in segs if s.startswith("SV1*"))
    assert sv1.split("*")[1].split(":")[6] == head
    assert f"NTE*ADD*{rest}" in segs
    assert pyx12_validate("~".join(segs) + "~\n")[0]
    # too long for SV101-7 and the note together: refused, not cut
    long = claim.model_copy(update={"lines": [line.model_copy(update={"note": note + " " + "additional words " * 8})]})
    with pytest.raises(X12Error, match="without cutting a value"):
        to_837(long, enc, charged(), kind="P")


@needs_lfh
def test_every_example_837_passes_the_second_parser() -> None:
    texts, claims = [], []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        loaded, claim = _coded(path)
        texts.append(to_837(claim, loaded.encounter, charged(), placeholders=loaded.encounter.patient is None))
        claims.append(claim)
    for claim, res in zip(claims, lfh_parse(*texts)):
        assert res["ok"], (claim.encounter, res.get("error"))
        [c] = lfh_claims(res["models"][0])
        assert len(c["lines"]) == len(claim.lines) and Decimal(str(c["total"])) > 0


def test_fhir_claim_output_carries_the_patient_and_the_line_charges() -> None:
    from oncologic.formats.fhir_claim import claim_resource

    loaded, claim = _coded(OFFICE)
    res = claim_resource(_with_charges(claim, CHARGES), loaded.encounter, load_config(CONFIG))
    [patient] = [c for c in res["contained"] if c["resourceType"] == "Patient"]
    assert patient["birthDate"] == "1961-11-30" and patient["gender"] == "male" and patient["name"][0]["family"] == "Sample"
    assert patient["address"][0]["postalCode"] == "21401"
    assert [i["net"]["value"] for i in res["item"]] == [float(ln.charge) for ln in _with_charges(claim, CHARGES).lines]


@needs_lfh
def test_the_example_config_gives_submission_ready_837s_from_the_cli() -> None:
    """Done means: the examples with the example charge master, through the CLI, give an 837P and
    an 837I with non-zero charges, the patient and the provider, accepted by both parsers."""
    runner = CliRunner()
    texts = []
    for path, fmt in ((OFFICE, "x12-837p"), (SEED, "x12-837i")):
        r = runner.invoke(main, ["solve", str(path), "--format", fmt, "--config", str(CONFIG)])
        assert r.exit_code == 0, r.output
        texts.append(r.stdout)
        assert pyx12_validate(r.stdout)[0]
        assert (ROOT / "examples/x12" / f"{path.stem}.{fmt[4:]}.x12").read_text() == r.stdout  # the shipped example output
    for res in lfh_parse(*texts):
        assert res["ok"], res.get("error")
        [c] = lfh_claims(res["models"][0])
        assert Decimal(str(c["total"])) > 0 and all(Decimal(str(x["charge"])) > 0 for x in c["lines"])
        assert c["birth"] and c["provider_npi"] == "1245319599"


def test_the_payers_member_id_comes_before_the_patients() -> None:
    """A Medicare Advantage patient: the Patient carries the MBI, the Coverage the plan's member id;
    the claim goes to the plan, so NM1*IL09 is the plan's id. Without one, the patient's is used."""
    import yaml

    data = yaml.safe_load(SEED.read_text())
    data["payer"] = {"name": "Example Advantage Plan", "type": "medicare_advantage", "member_id": "MAP778812301"}
    data["patient"]["member_id"] = "1EG4TE5MK72"
    loaded = validate(json.loads(json.dumps(data, default=str)))
    claim = code_encounters([loaded])[0]
    assert "NM1*IL*1*EXAMPLE*PAT****MI*MAP778812301" in _segs(to_837(claim, loaded.encounter, charged(), kind="I"))
    enc = loaded.encounter.model_copy(update={"payer": loaded.encounter.payer.model_copy(update={"member_id": None})})
    assert "NM1*IL*1*EXAMPLE*PAT****MI*1EG4TE5MK72" in _segs(to_837(claim, enc, charged(), kind="I"))
