"""X12 005010 837P/837I output, checked by an independent validator (pyx12, with the X222A1 and
X223A2 implementation-guide maps) and parsed back."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.load import load_file
from oncologic.model import Claim, Line, NdcQuantity, Why
from oncologic.solver import code_encounters
from oncologic.formats.x12 import X12Config, X12Error, load_config, parse_837, to_837

pyx12 = pytest.importorskip("pyx12", reason="pyx12 (the independent X12 validator) is not installed: pip install -e '.[formats]'")
import pyx12.error_handler  # noqa: E402
import pyx12.params  # noqa: E402
import pyx12.x12context  # noqa: E402
import pyx12.x12n_document  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples/x12/config.toml"
ENCOUNTERS = [ROOT / "examples/seed_session.yaml", ROOT / "examples/fhir/office_trial.yaml"]

# The tests' own small charge master: per-unit charges of a made-up practice (the engine knows no
# prices; a site supplies its own). Every code the examples bill has one.
CHARGES = {
    "96361": "95.00", "96365": "190.00", "96366": "60.00", "96367": "95.00", "96368": "80.00", "96372": "45.00",
    "96375": "60.00", "96377": "70.00", "96402": "85.00", "96411": "150.00", "96413": "410.00", "96415": "75.00",
    "96416": "220.00", "96417": "180.00", "99214": "370.00", "J0640": "3.10", "J0897": "25.00", "J1100": "0.50",
    "J1200": "2.00", "J1453": "3.20", "J2405": "0.90", "J2506": "60.00", "J3475": "1.10", "J7050": "4.00",
    "J9000": "35.00", "J9060": "6.00", "J9075": "1.60", "J9190": "2.40", "J9201": "40.00", "J9217": "400.00",
    "J9263": "2.25", "J9271": "71.00", "J9312": "106.50", "J9370": "30.00", "J9999": "500.00",
}


def charged(path=CONFIG) -> X12Config:
    from decimal import Decimal

    cfg = load_config(path)
    cfg.charges.update({k: Decimal(v) for k, v in CHARGES.items()})
    return cfg


def validate(text: str) -> tuple[bool, str]:
    """Validate with pyx12 against the implementation-guide map; return (ok, error report)."""
    param = pyx12.params.params()
    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(param, io.StringIO(text), io.StringIO(), None, None, out)
    return ok, out.getvalue()


def service_lines(text: str) -> list[dict]:
    """The 2400 loops as pyx12 reads them (independent of oncologic.formats.x12.parse_837)."""
    param = pyx12.params.params()
    errh = pyx12.error_handler.errh_null()
    reader = pyx12.x12context.X12ContextReader(param, errh, io.StringIO(text))
    out = []
    for node in reader.iter_segments("2400"):
        if node.id != "2400":
            continue
        sv1, sv2 = node.get_value("SV101"), node.get_value("SV202")
        proc = sv1 or sv2
        parts = proc.split(":")
        out.append({
            "code": parts[1],
            "modifiers": [m for m in parts[2:6] if m],
            "units": int(float(node.get_value("SV104") if sv1 else node.get_value("SV205"))),
            "revenue": node.get_value("SV201"),
            "ndc": node.get_value("2410/LIN03"),
            "qty": node.get_value("2410/CTP04"),
        })
    return out


@pytest.mark.parametrize("path", ENCOUNTERS, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["P", "I"])
def test_engine_claims_are_valid_837s(path: Path, kind: str) -> None:
    loaded = load_file(str(path))
    claim = code_encounters([loaded])[0]
    if kind == "I" and claim.setting == "office":
        pytest.skip("an office (professional) claim has no revenue codes; it goes on an 837P")
    text = to_837(claim, loaded.encounter, charged(), kind=kind)
    ok, report = validate(text)
    assert ok, report
    lines = service_lines(text)
    assert [(ln["code"], ln["units"], ln["modifiers"]) for ln in lines] == [(ln.code, ln.units, ln.modifiers) for ln in claim.lines]
    for got, ln in zip(lines, claim.lines):
        assert got["ndc"] == ln.ndc
    if kind == "I":
        assert all(ln["revenue"] and len(ln["revenue"]) == 4 for ln in lines)
    # our own reader (used by the audit) agrees
    posted = parse_837(text)[0]
    assert [(p.code, p.units, p.modifiers) for p in posted.lines] == [(ln.code, ln.units, ln.modifiers) for ln in claim.lines]


def _synthetic(setting: str) -> tuple[Claim, object]:
    """A claim with every line feature the writer supports (the writer is a pure layer: it must
    render what it is given, whatever rules produced it)."""
    loaded = load_file(str(ROOT / "examples/seed_session.yaml"))
    enc = loaded.encounter.model_copy(update={"setting": setting, "id": "ENC*1~X:Y^Z"})
    why = Why(rule="test.rule", text="t", **{"from": ["oxali"]})
    day = enc.date_of_service
    lines = [
        Line(line=1, code="96413", units=1, date=day, diagnoses=list(enc.diagnoses), why=why, modifiers=["Q1"]),
        Line(line=2, code="J9263", units=340, date=day, diagnoses=list(enc.diagnoses), why=why, modifiers=["JW"],
             ndc="00409106401", ndc_quantity=NdcQuantity(value=34, unit="ML")),
        Line(line=3, code="J9999", units=1, date=day + dt.timedelta(days=1), diagnoses=[enc.diagnoses[1]], why=why,
             note="drugname*x 100 mg NDC 12345678901 ~ with a very long description that goes on and on past eighty characters"),
    ]
    claim = Claim(encounter=enc.id, setting=setting, lines=lines, clean=True,
                  claim_data={"clinical_trial_number": ["01234567"], "condition_code": ["30"],
                              "revenue_code": ["rev(96413, 0335)", "rev(J9263, 0636)", "rev(J9999, 0636)"]})
    return claim, enc


@pytest.mark.parametrize("setting,kind", [("office", "P"), ("facility", "I")])
def test_every_line_feature_is_well_formed(setting: str, kind: str) -> None:
    claim, enc = _synthetic(setting)
    text = to_837(claim, enc, charged(), kind=kind)
    ok, report = validate(text)
    assert ok, report
    segs = text.rstrip("~\n").split("~")
    assert "REF*P4*01234567" in segs
    assert ("HI*BG:30" in segs) == (kind == "I")
    assert "LIN**N4*00409106401" in segs and "CTP****34*ML" in segs
    nte = [s for s in segs if s.startswith("NTE*ADD*")]
    if kind == "P":  # the rest of the description in the line's NTE, right after the line
        assert len(nte) == 1 and segs.index(nte[0]) > segs.index(next(s for s in segs if s.startswith("SV1*HC:J9999")))
    else:  # 837I: no line NTE; the claim's billing note names the line
        assert len(nte) == 1 and nte[0].startswith("NTE*ADD*LINE 3 ") and segs.index(nte[0]) < segs.index("LX*1")
    # nothing of the description is lost and no value is cut: SV1/SV2 description + note = the whole text
    sv = next(s for s in segs if "HC:J9999" in s)
    desc = sv.split("*")[1 if kind == "P" else 2].split(":")[6]
    rest = nte[0].split("*", 2)[2].removeprefix("LINE 3 ")
    assert f"{desc} {rest}" == "DRUGNAME X 100 MG NDC 12345678901 WITH A VERY LONG DESCRIPTION THAT GOES ON AND ON PAST EIGHTY CHARACTERS"
    assert len(desc) <= 80 and "NDC 12345678901" in desc
    lines = service_lines(text)
    assert [ln["code"] for ln in lines] == ["96413", "J9263", "J9999"]
    assert lines[1]["qty"] == "34"
    # the untrusted id could not break the interchange
    assert "CLM*ENC 1 X Y Z*" in text
    if kind == "P":
        sv1 = [s for s in segs if s.startswith("SV1*")]
        assert sv1[2].split("*")[1].split(":")[6].startswith("DRUGNAME X 100 MG")  # SV101-7 description
        assert sv1[2].split("*")[7] == "2"  # the line's own diagnosis pointer


def test_missing_revenue_code_is_an_error_not_a_guess() -> None:
    loaded = load_file(str(ROOT / "examples/fhir/office_trial.yaml"))
    claim = code_encounters([loaded])[0]
    assert any(ln.code == "99214" for ln in claim.lines)
    with pytest.raises(X12Error, match="revenue code"):
        to_837(claim, loaded.encounter, charged(None), kind="I")


def test_config_errors_and_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[interchange]\nusage = "X"\n')
    with pytest.raises(X12Error, match="usage"):
        load_config(bad)
    bad.write_text('[nonsense]\na = 1\n')
    with pytest.raises(X12Error, match="unknown section"):
        load_config(bad)
    runner = CliRunner()
    r = runner.invoke(main, ["solve", str(ENCOUNTERS[0]), "--format", "x12-837i", "--config", str(bad)])
    assert r.exit_code == 2 and "unknown section" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["solve", str(ENCOUNTERS[0]), "--format", "x12-837i", "--config", str(CONFIG), "--zero-charges"])
    assert r.exit_code == 0
    assert r.stdout.startswith("ISA*00*") and "GS*HC*ONCOCLINIC01*CLEARHOUSE01*20260305*1015*42*X*005010X223A2" in r.stdout
    assert validate(r.stdout)[0]


def test_output_is_deterministic() -> None:
    loaded = load_file(str(ENCOUNTERS[0]))
    claim = code_encounters([loaded])[0]
    cfg = charged(None)
    assert to_837(claim, loaded.encounter, cfg) == to_837(claim, loaded.encounter, cfg)
    json.dumps(parse_837(to_837(claim, loaded.encounter, cfg))[0].__dict__, default=str)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_example_gives_a_valid_837_of_its_setting(path: Path) -> None:
    loaded = load_file(str(path))
    claim = code_encounters([loaded])[0]
    placeholders = loaded.encounter.patient is None  # the examples without a patient block
    text = to_837(claim, loaded.encounter, charged(), placeholders=placeholders)
    ok, report = validate(text)
    assert ok, report
    assert len(service_lines(text)) == len(claim.lines)
    if placeholders:
        with pytest.raises(X12Error, match="--placeholders"):
            to_837(claim, loaded.encounter, charged())
