"""docs/reference.md lists every rule id and interface predicate of the encodings.

Tolerant on purpose: other engineers add rules all the time, so the test only checks that each
rule id (and each declared predicate) appears in the committed document, not that the text is
byte-identical. When it fails, rerun ``python scripts/gen_reference.py`` and commit the result.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from oncologic.rules import parse_tags

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reference.md"
HINT = "docs/reference.md is out of date: run `python scripts/gen_reference.py` and commit docs/reference.md"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_rule_id_is_in_the_reference():
    text = DOC.read_text(encoding="utf-8")
    ids = {t.id for p in sorted((ROOT / "encodings").rglob("*.lp")) for t in parse_tags(p)}
    assert ids, "no tagged rules found"
    missing = sorted(i for i in ids if f"`{i}`" not in text)
    assert not missing, f"{HINT} (missing rule ids: {', '.join(missing)})"


def test_every_interface_predicate_is_in_the_reference():
    text = DOC.read_text(encoding="utf-8")
    gen = _generator()
    defined, shown = gen.interface(ROOT / "encodings" / "interface.lp")
    names = {n for _s, n, _a in defined} | {n for n, _a in shown}
    missing = sorted(n for n in names if f"`{n}(" not in text and f"`{n}/" not in text)
    assert not missing, f"{HINT} (missing predicates: {', '.join(missing)})"


def test_generator_output_names_file_line_text_and_source():
    text = _generator().generate(ROOT)
    line = next(ln for ln in text.splitlines() if ln.startswith("| `admin.additional_hour` |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1].startswith("encodings/admin/sequence.lp:")
    assert "additional hour" in cells[2] and "CPM-12" in cells[3]
