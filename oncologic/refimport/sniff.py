"""Which reader a file needs, decided from its content (header text, column names, record shape)."""

from __future__ import annotations

import gzip
import json
import re

from . import readers as R
from . import readers2 as R2
from .core import Const, Rejected, Table

ICD_RE = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?")


def read_icd10cm(rows, name: str, hdr: int, cols: dict, opts: R.Options) -> Table:
    """The project's ICD-10-CM extract (chapter 2 neoplasms plus encounter codes of the CDC tabular
    release): billable flag and chapter, the two columns the diagnosis rules read."""
    start = R.need_effective(opts, name, "the ICD-10-CM table")
    t = Table("icd10cm", f"ICD-10-CM codes effective {start}: billable flag and chapter", str(start // 10000),
              start, 99991231)
    t.declare("table/4", "icd10/2", "icd10_chapter/2")
    t.fact("table", t.version, Const("icd10cm"), start, 99991231)
    for line, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            continue
        code, billable = R.cell(row, cols, "code"), R.cell(row, cols, "billable")
        if not ICD_RE.fullmatch(code) or billable not in ("Y", "N"):
            raise Rejected(name, line, f"ICD-10-CM row {code!r} (billable {billable!r}) does not parse")
        t.rows_read += 1
        t.fact("icd10", code, Const(billable.lower()))
        chapter = R.cell(row, cols, "chapter")
        if chapter.isdigit():
            t.fact("icd10_chapter", code, int(chapter))
        else:
            t.skip("icd10_chapter: chapter is not an integer")
    return t


def read_category(rows, name: str, hdr: int, cols: dict, opts: R.Options) -> Table:
    """The project's oncology classification of drug codes (hcpcs_code, category): the category
    column only (the rules' substance kinds, prior-authorization and diagnosis categories). Code
    validity comes from the CMS HCPCS file (hcpcs.py), not from this extract."""
    t = Table("hcpcs_category", "oncology category of drug codes (project classification)", "", 0, 0)
    t.declare("hcpcs_category/2")
    for line, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            continue
        code = R.cell(row, cols, "hcpcs_code")
        if not R.HCPCS_RE.fullmatch(code):
            raise Rejected(name, line, f"hcpcs_code {code!r} is not a HCPCS code")
        t.rows_read += 1
        cat = R.cell(row, cols, "category").strip('"').strip()
        if cat:
            t.fact("hcpcs_category", code, cat)
    return t


# (required column names, reader) for CSV files whose header row is found among the first rows
CSV_KINDS = [
    (R.ASP_COLS, lambda rows, n, h, c, o: R.read_asp(rows, n, h, c)),
    ({"NDC2", "HCPCS dosage", "BILLUNITS"}, lambda rows, n, h, c, o: R.read_crosswalk(rows, n, h, c)),
    ({"hcpcs_cpt", "prac_mue", "prac_mai"}, R.read_mue_csv),
    ({"column1", "column2", "modifier_indicator"}, R.read_ptp_csv),
    ({"code", "code_nodot", "billable", "chapter"}, read_icd10cm),
    ({"hcpcs_code", "category"}, read_category),
    (R2.OPPS_COLS, R2.read_opps),
]
TSV_KINDS = [
    ({"NDCPACKAGECODE", "PACKAGEDESCRIPTION"}, R2.read_fda_package),
    ({"PRODUCTNDC", "PRODUCTTYPENAME", "DOSAGEFORMNAME"}, R2.read_fda_product),
]


def read_csv_kind(text: str, name: str, opts: R.Options) -> list[Table]:
    first = text.split("\n", 1)[0]
    if "\t" in first:
        rows = R.csv_rows(text, "\t")
        for want, reader in TSV_KINDS:
            hdr, cols = R.find_header(rows, want, limit=1)
            if hdr is not None:
                return [reader(rows, name, hdr, cols)]
    rows = R.csv_rows(text)
    for want, reader in CSV_KINDS:
        hdr, cols = R.find_header(rows, want)
        if hdr is not None:
            return [reader(rows, name, hdr, cols, opts)]
    raise Rejected(name, 1, "not a recognised reference file (no known header row among the first 30 lines)")


def read_json_kind(doc, name: str, opts: R.Options) -> list[Table]:
    if isinstance(doc, list) and doc:
        first = doc[0]
        if isinstance(first, dict) and {"displayId", "codes", "covered"} <= set(first):
            return [R2.read_coverage(doc, name)]
        if isinstance(first, dict) and "code" in first and ({"practitioner", "hospital"} & set(first)):
            return [R.read_mue_shard(doc, name, opts)]
        if isinstance(first, list) and len(first) == 4 and isinstance(first[1], int):
            return [R.read_mue_list(doc, name, opts)]
        if isinstance(first, list) and len(first) == 2 and isinstance(first[1], list):
            return [R.read_ptp_nested(doc, name, opts)]
    raise Rejected(name, 1, "JSON of an unknown shape (not an MUE or PTP table)")


def read_any(data: bytes, name: str, opts: R.Options, sibling=None) -> list[Table]:
    """Recognise the file by its content and read it. ``sibling(predicate)`` returns the text of
    a file beside this one that satisfies the predicate (the HCPCS record layout of a bare TXT)."""
    from . import hcpcs as H

    if data[:4] == b"PK\x03\x04":
        return [H.read_hcpcs_zip(data, name)]
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise Rejected(name, None, f"gzip data does not decompress: {exc}") from None
    text = R.decode(data)
    from . import rxnorm as X

    if X.rrf_kind(text) is not None:
        return [X.read_rrf(text, name)]
    if H.is_layout(text):
        return []  # a record layout alone holds no data: read together with its data file
    if _fixed_width_hcpcs(text):
        layout = sibling(H.is_layout) if sibling else None
        if layout is None:
            raise Rejected(name, 1, "a fixed-width HCPCS file needs its record layout (HCPC*_recordlayout.txt) beside it")
        return [H.read_hcpcs_txt(text, layout, name)]
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Rejected(name, exc.lineno, f"JSON does not parse: {exc.msg}") from None
        return read_json_kind(doc, name, opts)
    return read_csv_kind(text, name, opts)


def _fixed_width_hcpcs(text: str) -> bool:
    first = text.split("\n", 1)[0].rstrip("\r")
    return len(first) >= 293 and first[10:11] in ("3", "7") and bool(re.fullmatch(r"[ A-Z0-9]{5}\d{5}", first[:10]))
