"""Recognise an agency file by its content and turn it into versioned facts (one ``Table``).

Every reader takes the file's bytes, its display name and the import options; it returns a list of
``Table`` or raises ``Rejected`` naming the file and line. Recognition looks at the header text and
the column names, never at the file name (the names change every quarter and carry typos).
"""

from __future__ import annotations

import csv
import io
import re

from .core import (EFFECTIVE_RE, HCPCS_RE, OPEN_END, Const, Fn, Rejected, Table, decimal_scaled, long_date,
                   ndc11, parse_dosage, quarter_of)

SETTINGS = {"office", "facility"}


class Options:
    """Import options for files that do not state everything themselves."""

    def __init__(self, effective: int | None = None, setting: str | None = None) -> None:
        self.effective, self.setting = effective, setting


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Latin-1 (a few labeler names in the CMS files)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def csv_rows(text: str, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(line number, cells with trailing empty cells removed) for every CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out = []
    line = 1
    for row in reader:
        while row and not row[-1].strip():
            row.pop()
        out.append((line, row))
        line = reader.line_num + 1
    return out


def _cells(row: list[str]) -> list[str]:
    return [c.strip() for c in row]


def find_header(rows, want: set[str], limit: int = 30):
    """(index, column map) of the first row (of the first ``limit``) holding every name in ``want``."""
    for i, (_line, row) in enumerate(rows[:limit]):
        cells = _cells(row)
        if want <= set(cells):
            return i, {c: j for j, c in enumerate(cells) if c}
    return None, None


def header_dates(rows, upto: int, name: str) -> tuple[int, int]:
    """The 'Effective <date> through <date>' of a header block (rows before ``upto``)."""
    for line, row in rows[:upto]:
        m = EFFECTIVE_RE.search(" ".join(row))
        if m:
            start, end = long_date(*m.group(1, 2, 3)), long_date(*m.group(4, 5, 6))
            if start is None or end is None or end < start:
                raise Rejected(name, line, f"effective dates do not parse: {m.group(0)!r}")
            return start, end
    raise Rejected(name, rows[upto][0] if upto < len(rows) else None,
                   "no 'Effective <date> through <date>' line in the header block")


def cell(row: list[str], cols: dict[str, int], name: str) -> str:
    j = cols[name]
    return row[j].strip() if j < len(row) else ""


def need_effective(opts: Options, name: str, what: str) -> int:
    if opts.effective is None:
        raise Rejected(name, None, f"{what} does not state its effective date: give --effective YYYY-MM-DD")
    return opts.effective


# --------------------------------------------------------------------------------------------
# CMS ASP pricing file (Payment Allowance Limits / Medicare Part B Payment Limit File)

ASP_COLS = {"HCPCS Code", "HCPCS Code Dosage", "Payment Limit", "Co-insurance Percentage"}


def read_asp(rows, name: str, hdr: int, cols: dict) -> Table:
    start, end = header_dates(rows, hdr, name)
    V = quarter_of(start)
    t = Table("asp", f"CMS ASP pricing file effective {start}..{end}: billing units, payment limits, coinsurance",
              V, start, end)
    t.declare("table/4", "hcpcs_unit/4", "hcpcs_unit_unparsed/3", "asp_limit/3", "asp_limit_unparsed/3",
              "asp_coinsurance/3")
    t.fact("table", V, Const("asp"), start, end)
    seen: set[str] = set()
    reduced_note = 0
    for line, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            continue
        code = cell(row, cols, "HCPCS Code")
        if not HCPCS_RE.fullmatch(code):
            raise Rejected(name, line, f"HCPCS Code {code!r} is not a 5-character HCPCS/CPT code")
        if code in seen:
            raise Rejected(name, line, f"HCPCS Code {code} appears twice")
        seen.add(code)
        t.rows_read += 1
        text = cell(row, cols, "HCPCS Code Dosage")
        amt, dim, why = parse_dosage(text)
        if amt is not None:
            t.fact("hcpcs_unit", V, code, amt, Const(dim))
        else:
            t.fact("hcpcs_unit_unparsed", V, code, text)
            t.skip(f"hcpcs_unit: dosage {why} (hcpcs_unit_unparsed written)")
        limit = cell(row, cols, "Payment Limit")
        mills = decimal_scaled(limit, 3)
        if mills is not None and limit:
            t.fact("asp_limit", V, code, mills)
        else:
            t.fact("asp_limit_unparsed", V, code, limit)
            t.skip("asp_limit: payment limit is not a number with at most 3 decimals (asp_limit_unparsed written)")
        coins = cell(row, cols, "Co-insurance Percentage")
        pct = decimal_scaled(coins, 3) if coins else None
        note = cell(row, cols, "Notes") if "Notes" in cols else ""
        if coins and pct is None:
            raise Rejected(name, line, f"Co-insurance Percentage {coins!r} is not a number")
        if pct is not None and pct != 20000:
            t.fact("asp_coinsurance", V, code, pct)
            reduced_note += "inflation-adjusted coinsurance" in note.lower()
    if not seen:
        raise Rejected(name, None, "the pricing file has a header row but no code rows")
    n = len(t.preds["asp_coinsurance/3"])
    t.note(f"coinsurance other than 20%: {n} codes, {reduced_note} of them with the note 'Inflation-adjusted coinsurance'")
    return t


# --------------------------------------------------------------------------------------------
# CMS ASP NDC-HCPCS crosswalk

XW_CODE = re.compile(r"_\d{4}_CODE")


def read_crosswalk(rows, name: str, hdr: int, cols: dict) -> Table:
    start, end = header_dates(rows, hdr, name)
    V = quarter_of(start)
    code_col = next(c for c in cols if XW_CODE.fullmatch(c))
    for need in ("NDC2", "HCPCS dosage", "BILLUNITS"):
        if need not in cols:
            raise Rejected(name, rows[hdr][0], f"crosswalk header has no {need!r} column (changed layout?)")
    t = Table("ndc", f"CMS ASP NDC-HCPCS crosswalk effective {start}..{end}: NDC -> HCPCS and drug amount per item",
              V, start, end)
    t.declare("table/4", "ndc/5", "ndc_unparsed/5", "ndc_pkg_size/3")
    t.fact("table", V, Const("ndc"), start, end)
    padded = 0
    for line, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            continue
        code = cell(row, cols, code_col)
        if not HCPCS_RE.fullmatch(code):
            raise Rejected(name, line, f"{code_col} {code!r} is not a 5-character HCPCS/CPT code")
        t.rows_read += 1
        n, was_padded = ndc11(cell(row, cols, "NDC2"))
        if n is None:
            t.skip("row: product identifier is not a hyphenated 10/11-digit NDC (device catalogue numbers, GTIN/UPC)")
            continue
        padded += was_padded
        # PKG SIZE: the size of one item of the package, a bare number (a volume in mL for
        # solutions, 1 or a count otherwise: the column names no unit), kept in thousandths
        size = cell(row, cols, "PKG SIZE") if "PKG SIZE" in cols else ""
        size_milli = decimal_scaled(size, 3) if re.fullmatch(r"\d*\.?\d+", size or "") else None
        if size_milli:
            t.fact("ndc_pkg_size", V, n, size_milli)
        dosage, bu = cell(row, cols, "HCPCS dosage"), cell(row, cols, "BILLUNITS")
        amt, dim, why = parse_dosage(dosage)
        per_item = decimal_scaled(bu, 6) if re.fullmatch(r"\d*\.?\d+", bu or "") else None
        if amt is None or not per_item:
            t.fact("ndc_unparsed", V, n, code, bu, dosage)
            t.skip(f"ndc: {'dosage ' + why if amt is None else 'billunits is not a positive number'} (ndc_unparsed written)")
            continue
        item = per_item * amt
        if item % 10**6:
            t.fact("ndc_unparsed", V, n, code, bu, dosage)
            t.skip(f"ndc: billunits x dosage is not a whole number of {dim} (ndc_unparsed written)")
            continue
        t.fact("ndc", V, n, code, item // 10**6, Const(dim))
    t.note(f"NDCs zero-padded from a 10-digit form: {padded}")
    return t


# --------------------------------------------------------------------------------------------
# NCCI MUE (reformatted copies: per-code JSON shards, a flat CSV, a practitioner-only JSON list)

MUE_SET = {"practitioner": "office", "hospital": "facility", "dme": "dme"}


def _part(codes) -> str:
    prefixes = {c[:2] for c in codes}
    return prefixes.pop().lower() if len(prefixes) == 1 else "all"


def _mue_table(start: int, codes, what: str) -> Table:
    V = quarter_of(start)
    t = Table("mue", f"NCCI MUE ({what}) effective {start}", V, start, OPEN_END, _part(codes))
    t.declare("table/4", "mue/5")
    return t


def _mue_value(t: Table, name: str, where, setting: str, code: str, value, mai) -> None:
    if value in (None, "") and mai in (None, ""):
        return
    try:
        v, m = int(value), int(mai)
    except (TypeError, ValueError):
        raise Rejected(name, where, f"MUE value {value!r} / MAI {mai!r} of {code} is not an integer") from None
    if v < 0 or m not in (1, 2, 3):
        raise Rejected(name, where, f"MUE value {v} / MAI {m} of {code} out of range (MAI is 1, 2 or 3)")
    t.fact("mue", t.version, Const(setting), code, v, m)


def _mue_tables(t: Table) -> Table:
    for s in sorted({str(args[1]) for args in t.preds["mue/5"]}):
        t.fact("table", t.version, Fn("mue", Const(s)), t.start, t.end)
    return t


def read_mue_shard(records, name: str, opts: Options) -> Table:
    start = need_effective(opts, name, "the MUE file")
    t = _mue_table(start, [r.get("code", "") for r in records], "practitioner, outpatient hospital, DME")
    for i, r in enumerate(records, 1):
        code = r.get("code", "")
        if not HCPCS_RE.fullmatch(code):
            raise Rejected(name, f"record {i}", f"code {code!r} is not a HCPCS/CPT code")
        t.rows_read += 1
        for key, setting in MUE_SET.items():
            v = r.get(key)
            if v:
                _mue_value(t, name, f"record {i}", setting, code, v.get("mue"), v.get("mai"))
    return _mue_tables(t)


def read_mue_csv(rows, name: str, hdr: int, cols: dict, opts: Options) -> Table:
    start = need_effective(opts, name, "the MUE table")
    body = [(ln, r) for ln, r in rows[hdr + 1:] if any(c.strip() for c in r)]
    t = _mue_table(start, [cell(r, cols, "hcpcs_cpt") for _, r in body], "practitioner, outpatient hospital, DME")
    for line, row in body:
        code = cell(row, cols, "hcpcs_cpt")
        if not HCPCS_RE.fullmatch(code):
            raise Rejected(name, line, f"hcpcs_cpt {code!r} is not a HCPCS/CPT code")
        t.rows_read += 1
        for prefix, setting in (("prac", "office"), ("oph", "facility"), ("dme", "dme")):
            if f"{prefix}_mue" in cols:
                _mue_value(t, name, line, setting, code, cell(row, cols, f"{prefix}_mue"), cell(row, cols, f"{prefix}_mai"))
    return _mue_tables(t)


def read_mue_list(records, name: str, opts: Options) -> Table:
    start = need_effective(opts, name, "the MUE table")
    t = _mue_table(start, [r[0] for r in records], "practitioner")
    for i, r in enumerate(records, 1):
        if not HCPCS_RE.fullmatch(str(r[0])):
            raise Rejected(name, f"record {i}", f"code {r[0]!r} is not a HCPCS/CPT code")
        t.rows_read += 1
        _mue_value(t, name, f"record {i}", "office", r[0], r[1], r[2])
    return _mue_tables(t)


# --------------------------------------------------------------------------------------------
# NCCI PTP (practitioner): the pairs an infusion claim can carry

def in_ptp_scope(code: str) -> bool:
    """The codes an oncologic claim can carry (docs/reference-data.md, "PTP filter"): HCPCS Level II
    codes (a letter first), and the CPT families of infusion claims: 36xxx (vascular access and
    blood draws), 79xxx (radiopharmaceutical therapy, 79101), 90xxx (immune globulins, vaccines and
    their administration), 96xxx (drug administration, chemotherapy) and 99xxx (evaluation and
    management)."""
    return code[0].isalpha() or code[:2] in ("36", "79", "90", "96", "99")


def _ptp_table(start: int, setting: str, part: str, what: str) -> Table:
    V = quarter_of(start)
    t = Table("ncci", f"NCCI PTP edits ({what}), {setting} claims, effective {start}", V, start, OPEN_END, part)
    t.declare("table/4", "table_label/3", "ncci/5")
    t.fact("table", V, Fn("ncci", Const(setting)), start, OPEN_END)
    t.fact("table_label", V, Const("ncci"), f"Medicare NCCI PTP edits {V}")
    t.reversed_pairs = 0
    return t


def _ptp_pair(t: Table, name: str, where, setting: str, c1: str, c2: str, mi) -> None:
    if not (HCPCS_RE.fullmatch(c1) and HCPCS_RE.fullmatch(c2)):
        raise Rejected(name, where, f"PTP pair {c1!r}/{c2!r} is not two HCPCS/CPT codes")
    try:
        m = int(mi)
    except (TypeError, ValueError):
        m = -1
    if m not in (0, 1, 9):
        raise Rejected(name, where, f"modifier indicator {mi!r} of {c1}/{c2} is not 0, 1 or 9")
    t.rows_read += 1
    t.reversed_pairs += c1 > c2
    if not (in_ptp_scope(c1) and in_ptp_scope(c2)):
        t.skip("pair: a code outside the infusion-claim code families (PTP filter)")
        return
    t.fact("ncci", t.version, Const(setting), c1, c2, m)


def read_ptp_nested(records, name: str, opts: Options) -> Table:
    start = need_effective(opts, name, "the PTP table")
    setting = opts.setting or "office"
    first = records[0][0] if records else "empty"
    t = _ptp_table(start, setting, str(first).lower(), "all active pairs, nested by column 1")
    for i, rec in enumerate(records, 1):
        c1, pairs = rec[0], rec[1]
        for c2, mi, *_rest in pairs:
            _ptp_pair(t, name, f"record {i}", setting, str(c1), str(c2), mi)
    return _ptp_order(t)


def _ptp_order(t: Table) -> Table:
    """A CMS PTP table puts the comprehensive code in column 1, so about two pairs in three have
    column 1 > column 2 (410 of the 618 pairs of the July 2024 infusion extract). A copy in which
    every one of many pairs has column 1 < column 2 was sorted when it was reformatted: it still
    says which codes form a pair and with which modifier indicator, but not which one is column 2
    (the code that is denied). ncci_unordered(V,S) tells the rules so."""
    if t.rows_read >= 100 and not t.reversed_pairs:
        setting = next(iter(t.preds["table/4"]))[1].args[0]
        t.fact("ncci_unordered", t.version, setting)
        t.note(f"all {t.rows_read} pairs read have column 1 < column 2: the column order was lost when this copy "
               "was made (ncci_unordered written)")
    return t


def read_ptp_csv(rows, name: str, hdr: int, cols: dict, opts: Options) -> Table:
    start = need_effective(opts, name, "the PTP table")
    if opts.setting is None:
        raise Rejected(name, None, "the PTP table does not say which setting it is for: give --setting office|facility")
    t = _ptp_table(start, opts.setting, "csv", "column 1 / column 2 table")
    for line, row in rows[hdr + 1:]:
        if any(c.strip() for c in row):
            _ptp_pair(t, name, line, opts.setting, cell(row, cols, "column1"), cell(row, cols, "column2"),
                      cell(row, cols, "modifier_indicator"))
    return _ptp_order(t)
