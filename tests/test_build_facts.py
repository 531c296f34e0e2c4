"""Tests for scripts/build_facts.py and the generated reference facts in facts/.

* Every committed facts/*.lp file parses, grounds and solves in clingo (one Control), and a few
  real values come out as expected.
* facts/manifest.json lists every file with its provenance and the known HCPCS codes.
* Regenerating from ../shared/data into a temporary folder gives byte-identical files
  (skipped when the shared data folder is not present).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import clingo
import pytest

REPO = Path(__file__).resolve().parent.parent
FACTS = REPO / "facts"
SCRIPT = REPO / "scripts" / "build_facts.py"
SHARED = REPO.parent / "shared" / "data"

EXPECTED_FILES = ["hcpcs_2025q4.lp", "ndc_2025q4.lp", "mue_2024q3.lp", "ncci_2024q3.lp",
                  "icd10cm_2026.lp"]


def load_script():
    spec = importlib.util.spec_from_file_location("build_facts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no scripts/__pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


@pytest.fixture(scope="module")
def atoms() -> set[clingo.Symbol]:
    ctl = clingo.Control(["--warn=none"])
    for name in EXPECTED_FILES:
        ctl.load(str(FACTS / name))
    ctl.ground([("base", [])])
    models = []
    with ctl.solve(yield_=True) as handle:
        for model in handle:
            models.append(set(model.symbols(atoms=True)))
    assert len(models) == 1, "a facts-only program has exactly one answer set"
    return models[0]


def F(name, *args):
    """Build a clingo symbol: str -> String, int -> Number, clingo.Symbol as is (constants)."""
    terms = []
    for a in args:
        if isinstance(a, clingo.Symbol):
            terms.append(a)
        elif isinstance(a, int):
            terms.append(clingo.Number(a))
        else:
            terms.append(clingo.String(a))
    return clingo.Function(name, terms)


def C(name):
    return clingo.Function(name)


def values(atoms, name, arity, **fixed):
    """All atoms name/arity whose argument i equals fixed['a<i>']."""
    out = []
    for s in atoms:
        if s.name != name or len(s.arguments) != arity:
            continue
        if all(s.arguments[int(k[1:])] == (clingo.String(v) if isinstance(v, str) else
                                           clingo.Number(v) if isinstance(v, int) else v)
               for k, v in fixed.items()):
            out.append(s)
    return out


def test_all_files_present():
    present = sorted(p.name for p in FACTS.glob("*.lp"))
    assert present == sorted(EXPECTED_FILES)
    assert (FACTS / "manifest.json").is_file()


def test_tables(atoms):
    assert F("table", "2025Q4", C("asp"), 20251001, 20251231) in atoms
    assert F("table", "2025Q4", C("ndc"), 20251001, 20251231) in atoms
    assert F("table", "2024Q3", C("mue"), 20240701, 99991231) in atoms
    assert F("table", "2024Q3", C("ncci"), 20240701, 99991231) in atoms
    assert F("table", "2026", C("icd10cm"), 20260401, 99991231) in atoms
    assert F("table_label", "2024Q3", C("ncci"), "Medicare NCCI PTP edits effective 2024-07-01") in atoms


def test_hcpcs_units(atoms):
    mcg, ul, unit = C("mcg"), C("ul"), C("unit")
    assert F("hcpcs_unit", "2025Q4", "J9271", 1000, mcg) in atoms
    assert F("hcpcs_unit", "2025Q4", "J9045", 50000, mcg) in atoms
    assert F("hcpcs_unit", "2025Q4", "J2506", 500, mcg) in atoms
    assert F("hcpcs_unit", "2025Q4", "J7050", 250000, ul) in atoms
    assert F("hcpcs_unit", "2025Q4", "J0885", 1000, unit) in atoms
    assert F("hcpcs_unit", "2025Q4", "J7030", 1000000, ul) in atoms
    assert F("hcpcs_unit_source", "2025Q4", "J9271", C("asp")) in atoms
    # one unit per code and version
    assert len(values(atoms, "hcpcs_unit", 4, a1="J9271")) == 1
    # unit texts that are not "<number> <unit>" are kept as text, never guessed
    assert F("hcpcs_unit_unparsed", "2025Q4", "J9153", "1 MG/2.27 MG") in atoms
    assert F("hcpcs_unit_unparsed", "2025Q4", "J9029", "PER THERAPEUTIC DOSE") in atoms
    assert F("hcpcs_unit_unparsed", "2025Q4", "J9325", "1 million PFU") in atoms
    assert not values(atoms, "hcpcs_unit", 4, a1="J9153")
    # extract codes missing from the ASP file: unit from the 2024 long descriptor
    assert F("hcpcs_unit", "2025Q4", "J9070", 100000, mcg) in atoms
    assert F("hcpcs_unit_source", "2025Q4", "J9070", C("descriptor2024")) in atoms
    assert not values(atoms, "hcpcs_unit", 4, a1="J9999")  # NOC: no unit


def test_hcpcs_other(atoms):
    assert F("hcpcs", "J9271") in atoms
    assert F("hcpcs", "90371") in atoms  # full ASP file only
    assert F("hcpcs_label", "J9271", "Inj pembrolizumab") in atoms
    assert F("hcpcs_category", "J9271", "chemotherapy drugs section (J9000-J9999)") in atoms
    assert not values(atoms, "hcpcs_category", 2, a0="90371")  # no category outside the extract
    assert F("hcpcs_terminated", "J9070", 20240331) in atoms
    assert F("hcpcs_terminated", "J2505", 20211231) in atoms
    assert F("asp_limit", "2025Q4", "90371", 134194) in atoms
    assert F("asp_limit_unparsed", "2025Q4", "A9606", "N/A") in atoms
    assert len(values(atoms, "asp_limit", 3, a1="J9271")) == 1


def test_ndc(atoms):
    assert F("ndc", "2025Q4", "00006302602", "J9271", 100000, C("mcg")) in atoms
    assert F("ndc_label", "00006302602", "Keytruda") in atoms
    assert F("ndc_labeler", "00006302602", "Merck Sharp & Dohme LLC") in atoms
    assert F("ndc_pkg", "2025Q4", "00006302602", 1, 4) in atoms
    # one NDC under several HCPCS codes: every row is kept
    assert F("ndc", "2025Q4", "00264780000", "J7030", 1000000, C("ul")) in atoms
    assert F("ndc", "2025Q4", "00264780000", "J7050", 1000000, C("ul")) in atoms
    # every NDC is an 11-digit string
    for s in values(atoms, "ndc", 5):
        assert len(s.arguments[1].string) == 11 and s.arguments[1].string.isdigit()


def test_mue_ncci(atoms):
    office, facility = C("office"), C("facility")
    assert F("mue", "2024Q3", office, "36591", 2, 3) in atoms
    assert F("mue", "2024Q3", facility, "36591", 2, 3) in atoms
    assert F("mue_rationale", "2024Q3", office, "36591", "Clinical: Data") in atoms
    assert F("ncci", "2024Q3", facility, "96360", "96372", 1) in atoms
    assert F("ncci_rationale", "2024Q3", facility, "96360", "96374",
             "Misuse of Column Two code with Column One code") in atoms
    # deleted edits are not present (96400 etc. no longer exist)
    assert not [s for s in values(atoms, "ncci", 5) if s.arguments[2].string == "96400"]


def test_icd10(atoms):
    assert F("icd10", "C34.11", C("y")) in atoms
    assert F("icd10", "C34.1", C("n")) in atoms
    assert F("icd10_block", "C34.11", "C30-C39") in atoms
    assert F("icd10_chapter", "C34.11", 2) in atoms
    assert F("icd10_chapter", "Z51.11", 21) in atoms
    assert F("icd10_title", "C84.10", "Sézary disease, unspecified site") in atoms
    assert F("icd10", "T45.1X5A", C("y")) in atoms


def test_escaping():
    bf = load_script()
    original = 'a "b" \\c\nd'
    assert bf.clingo_string(original) == '"a \\"b\\" \\\\c\\nd"'
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], "x(" + bf.clingo_string(original) + ").")
    ctl.ground([("base", [])])
    got = [s.symbol for s in ctl.symbolic_atoms.by_signature("x", 1)]
    assert got[0].arguments[0].string == original


def test_unit_parsing():
    bf = load_script()
    assert bf.parse_dosage("1 MG")[:2] == (1000, "mcg")
    assert bf.parse_dosage("0.5 mg")[:2] == (500, "mcg")
    assert bf.parse_dosage(".625 GM")[:2] == (625000, "mcg")
    assert bf.parse_dosage("1000 CC")[:2] == (1000000, "ul")
    assert bf.parse_dosage("100,000 UNITS")[:2] == (100000, "unit")
    assert bf.parse_dosage("1 microCurie")[:2] == (1, "uci")
    assert bf.parse_dosage("1 EA")[:2] == (1, "each")
    assert bf.parse_dosage("0.1 MCG")[0] is None  # not a whole number of mcg: never rounded
    assert bf.parse_dosage("UP TO 80 MG")[0] is None
    assert bf.parse_dosage("1 SQ CM")[0] is None
    assert bf.parse_descriptor_tail("Injection, cyclophosphamide, 100 mg")[:2] == (100000, "mcg")
    assert bf.parse_descriptor_tail("Leuprolide acetate, per 1 mg")[0] is None
    assert bf.millidollars("58.123") == (58123, None)
    assert bf.millidollars("1.5") == (1500, None)
    assert bf.millidollars("1.2345")[0] is None
    assert bf.ndc11("00006-3026-02") == ("00006302602", False)
    assert bf.ndc11("0006-3026-02") == ("00006302602", True)
    assert bf.ndc11("382567000014")[0] is None


def test_manifest():
    manifest = json.loads((FACTS / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["files"]) == sorted(EXPECTED_FILES)
    for name, entry in manifest["files"].items():
        content = (FACTS / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        for src in entry["sources"]:
            assert len(src["sha256"]) == 64 and src["rows_read"] > 0 and src["version"]
            assert src["sha256"] in content.decode("utf-8")  # header records it too
        assert sum(entry["facts_written"].values()) == entry["facts_total"]
    known = manifest["known_hcpcs"]
    assert known == sorted(set(known)) and "J9271" in known and "J9999" in known
    hcpcs_text = (FACTS / "hcpcs_2025q4.lp").read_text(encoding="utf-8")
    assert len(known) == hcpcs_text.count("\nhcpcs(")


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"reference data folder {SHARED} is absent, "
                    "cannot regenerate facts/ to compare")
def test_regenerate_byte_identical(tmp_path):
    bf = load_script()
    bf.build(SHARED, tmp_path)
    generated = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    committed = sorted(p.name for p in FACTS.iterdir() if p.is_file())
    assert generated == committed
    for name in generated:
        assert (tmp_path / name).read_bytes() == (FACTS / name).read_bytes(), \
            f"facts/{name} is stale: run python scripts/build_facts.py"
