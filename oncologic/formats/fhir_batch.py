"""FHIR input for ``oncologic batch --from fhir``: bundles in, one batch record per encounter.

The input is a Bundle file (``.json``), an NDJSON file (one Bundle per line, or the resources of
a FHIR bulk export, one resource per line), ``-`` for NDJSON on standard input, or a folder of
those. The resources of a bulk export (NDJSON lines that are not Bundles) are gathered into one
bundle per file or folder, so an export of Patient, Encounter, MedicationAdministration...
files codes like a whole-patient bundle. Each bundle is mapped here, in the reading process; a
record then carries the mapped encounter, its warnings and its FHIR element paths, and is
validated and coded like any other record (:mod:`oncologic.batch`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

from ..load import InputError, parse_json

MARK = "\x01"  # a record mapped from FHIR (JSON payload follows)
BUNDLE_SUFFIXES = (".json",)
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def _lines(fh, label: str, loose: list[dict]) -> Iterator[tuple[str, Optional[dict], list]]:
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        where = f"{label}:{lineno}"
        try:
            doc = parse_json(line, where)
        except InputError as exc:  # invalid JSON, duplicate keys, past a size limit
            yield where, None, exc.problems
            continue
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            yield where, doc, []
        elif isinstance(doc, dict) and isinstance(doc.get("resourceType"), str):
            loose.append({"fullUrl": f"{doc['resourceType']}/{doc.get('id')}", "resource": doc})
        else:
            yield where, None, [("(document)", "neither a FHIR Bundle nor a FHIR resource")]


def _file(path: Path, loose: list[dict]) -> Iterator[tuple[str, Optional[dict], list]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield str(path), None, [("(file)", f"cannot read: {getattr(exc, 'strerror', None) or exc}")]
        return
    if path.suffix.lower() in NDJSON_SUFFIXES:
        yield from _lines(text.splitlines(), str(path), loose)
        return
    try:
        doc = parse_json(text, str(path))
    except InputError as exc:
        yield str(path), None, exc.problems
        return
    yield str(path), doc, []


def bundles(source: str | Path) -> Iterator[tuple[str, Optional[dict], list]]:
    """(label, bundle or None, problems) for every bundle of the input, in order."""
    loose: list[dict] = []
    if str(source) == "-":
        yield from _lines(sys.stdin, "<stdin>", loose)
        label = "<stdin>"
    else:
        path = Path(source)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in BUNDLE_SUFFIXES + NDJSON_SUFFIXES) \
            if path.is_dir() else [path]
        for p in files:
            yield from _file(p, loose)
        label = str(path)
    if loose:
        yield f"{label} (bulk export resources)", {"resourceType": "Bundle", "type": "collection", "entry": loose}, []


def iter_fhir_records(source: str | Path, site: Any = None) -> Iterator[tuple[int, str, str]]:
    """Batch records (number, source label, text) of FHIR input: one per encounter mapped."""
    from .fhir import bundle_to_documents

    n = 0
    for label, doc, problems in bundles(source):
        mapped = []
        warnings: list = []
        if doc is not None:
            try:
                mapped = bundle_to_documents(doc, site)
            except InputError as exc:
                problems, warnings = exc.problems, exc.warnings
        if not mapped:
            n += 1
            if doc is not None and not problems:
                problems = [("(bundle)", "the bundle holds no encounter that can be coded")]
            yield n, label, MARK + json.dumps({"problems": problems, "warnings": warnings})
            continue
        for m in mapped:
            n += 1
            yield n, f"{label} {m.label}", MARK + json.dumps({"document": m.document, "warnings": m.warnings, "paths": m.paths})


def load_record(text: str, site: Any = None):
    """(Loaded or None, encounter id, problems, warnings, error kind) of a record made by
    :func:`iter_fhir_records` (kind ``input``, or ``too_large`` past a size limit)."""
    from .fhir import Mapped, validate_mapped

    payload = json.loads(text[len(MARK):])
    if "problems" in payload:
        kind = "too_large" if any("(max_" in str(p[1]) for p in payload["problems"]) else "input"
        return None, None, [tuple(p) for p in payload["problems"]], [f"fhir: {w}" for w in payload["warnings"]], kind
    m = Mapped(payload["document"], payload["warnings"], payload["paths"])
    enc_id = m.document.get("id")
    try:
        return validate_mapped(m, site=site), enc_id, [], [], None
    except InputError as exc:
        return None, enc_id, exc.problems, exc.warnings, exc.kind
