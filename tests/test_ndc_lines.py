"""NDC quantities per NDC (issue #13): a line that draws on several NDCs carries each NDC, its
share of the units and its quantity; the 837 gives each NDC its own 2400 loop with LIN/CTP (loop
2410 occurs once per 2400 loop in the 837P/837I TR3s), checked by pyx12."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from oncologic.formats.x12 import load_config, parse_837, to_837
from oncologic.load import validate as validate_doc
from oncologic.solver import code_encounters

pyx12 = pytest.importorskip("pyx12", reason="pyx12 (the independent X12 validator) is not installed")
import pyx12.error_handler  # noqa: E402
import pyx12.params  # noqa: E402
import pyx12.x12context  # noqa: E402
import pyx12.x12n_document  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples/x12/config.toml"


def _avastin(setting: str) -> dict:
    # Avastin 100 mg/4 mL (50242-0060-01) and 400 mg/16 mL (50242-0061-01) for one 500 mg dose
    # (domain-rules 7.21: two NDCs of one HCPCS code on one line)
    return {"id": "NDC2", "setting": setting, "date_of_service": "2025-11-04", "diagnoses": ["C18.7"],
            "payer": {"name": "Medicare", "type": "medicare", "member_id": "1EG4TE5MK72"},
            "administrations": [{"id": "a1", "route": "iv_infusion", "start": "09:00", "stop": "10:30", "drugs": [
                {"hcpcs": "J9035", "ndc": "50242-0060-01", "dose": {"value": 100, "unit": "mg"}},
                {"hcpcs": "J9035", "ndc": "50242-0061-01", "dose": {"value": 400, "unit": "mg"}}]}]}


def _loops(text: str) -> list[tuple]:
    param = pyx12.params.params()
    reader = pyx12.x12context.X12ContextReader(param, pyx12.error_handler.errh_null(), io.StringIO(text))
    out = []
    for node in reader.iter_segments("2400"):
        if node.id != "2400":
            continue
        sv1 = node.get_value("SV101")
        proc = (sv1 or node.get_value("SV202")).split(":")[1]
        units = int(float(node.get_value("SV104") if sv1 else node.get_value("SV205")))
        out.append((proc, units, node.get_value("2410/LIN03"), node.get_value("2410/CTP04"), node.get_value("2410/CTP05")))
    return out


@pytest.mark.parametrize("setting,kind", [("office", "P"), ("facility", "I")])
def test_each_ndc_of_a_line_gets_its_own_lin_ctp(setting: str, kind: str) -> None:
    loaded = validate_doc(_avastin(setting))
    claim = code_encounters([loaded])[0]
    drug = [ln for ln in claim.lines if ln.code == "J9035"]
    assert len(drug) == 1 and drug[0].units == 50
    items = [(it.ndc, it.units, it.quantity.value, it.quantity.unit) for it in drug[0].ndc_items]
    assert items == [("50242006001", 10, 4, "ML"), ("50242006101", 40, 16, "ML")]
    text = to_837(claim, loaded.encounter, load_config(CONFIG), kind=kind, zero_charges=True, placeholders=True)
    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text), io.StringIO(), None, None, out)
    assert ok, out.getvalue()
    loops = [lp for lp in _loops(text) if lp[0] == "J9035"]
    assert loops == [("J9035", 10, "50242006001", "4", "ML"), ("J9035", 40, "50242006101", "16", "ML")]
    # the units posted add up to the claim line's (the audit reads the 837 back by code)
    posted = parse_837(text)[0]
    assert sum(p.units for p in posted.lines if p.code == "J9035") == 50
    # the NDC that has its own loop is not repeated in the note
    assert "also NDC 50242006101" not in text


def test_note_mode_keeps_one_loop_with_the_first_ndc(tmp_path: Path) -> None:
    cfg_file = tmp_path / "x12.toml"
    cfg_file.write_text(CONFIG.read_text(encoding="utf-8") + '\n[lines]\nndc_multiple = "note"\n', encoding="utf-8")
    loaded = validate_doc(_avastin("office"))
    claim = code_encounters([loaded])[0]
    text = to_837(claim, loaded.encounter, load_config(cfg_file), kind="P", zero_charges=True, placeholders=True)
    loops = [lp for lp in _loops(text) if lp[0] == "J9035"]
    assert loops == [("J9035", 50, "50242006001", "4", "ML")]
    assert "ALSO NDC 50242006101" in text.upper()


def test_a_single_ndc_line_has_no_ndc_items_key() -> None:
    doc = _avastin("office")
    doc["administrations"][0]["drugs"] = doc["administrations"][0]["drugs"][:1]
    claim = code_encounters([validate_doc(doc)])[0]
    dumped = [ln.model_dump(mode="json") for ln in claim.lines]
    assert all("ndc_items" not in ln for ln in dumped)
    assert [ln["ndc_quantity"] for ln in dumped if ln["code"] == "J9035"] == [{"value": 4, "unit": "ML"}]


def test_fhir_claim_has_one_detail_per_ndc() -> None:
    from oncologic.formats.fhir_claim import claim_resource

    loaded = validate_doc(_avastin("office"))
    claim = code_encounters([loaded])[0]
    res = claim_resource(claim, loaded.encounter)
    item = next(it for it in res["item"] if it["productOrService"]["coding"][0]["code"] == "J9035")
    got = [(d["sequence"], d["productOrService"]["coding"][0]["code"], d["quantity"]["value"], d["quantity"]["unit"])
           for d in item["detail"]]
    assert got == [(1, "50242006001", 4, "ML"), (2, "50242006101", 16, "ML")]
