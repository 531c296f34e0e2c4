#!/usr/bin/env python3
"""Generate the clingo reference fact files (facts/*.lp) from the CMS/CDC CSV tables.

Usage:
    python scripts/build_facts.py [--source ../shared/data] [--out facts]

Defaults are resolved relative to the repository root (the parent of this script's folder):
source = <repo>/../shared/data, out = <repo>/facts.

Rules followed here (see docs/reference-data.md):
  * Nothing is invented: every fact is a transformation of one CSV cell. A value that cannot be
    transformed exactly (a unit text that is not "<number> <unit>", an amount that is not a whole
    number in the small unit, a price with more than 3 decimals) is never rounded or guessed: it is
    skipped, counted in the file header, and where the brief asks for it an ..._unparsed fact keeps
    the original text.
  * All codes are clingo strings. Amounts are integers in a small unit with an explicit dimension
    constant: mcg (mass), ul (volume), unit (units/IU), uci (microcurie), each (EA/each).
  * Output is deterministic: rows are sorted, no timestamps, so a re-run is byte-identical.
  * Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path

GENERATOR = "scripts/build_facts.py"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "facts"

# ---------------------------------------------------------------------------------------------
# Provenance of each source CSV, copied from shared/data/README.md. `rows` is the row count the
# README documents; the build stops if a file has a different count (wrong copy or new release:
# a new release needs its own entry and its own output file, see docs/reference-data.md).
# ---------------------------------------------------------------------------------------------
SOURCES = {
    "asp_pricing_2025q4_full.csv": {
        "rows": 1012,
        "version": "CMS ASP Pricing File October 2025 (Payment Allowance Limits for Medicare Part B "
                   "Drugs, based on 2Q25 ASP data), whole file",
        "effective_from": "2025-10-01",
        "effective_to": "2025-12-31",
    },
    "hcpcs_drug_units.csv": {
        "rows": 329,
        "version": "oncology extract: CMS ASP Pricing File October 2025 plus CMS HCPCS Level II "
                   "file July 2024 (HCPC2024_JUL_ANWEB_v3: descriptors, termination dates); "
                   "category column derived",
        "effective_from": "2025-10-01",
        "effective_to": "2025-12-31",
    },
    "ndc_hcpcs_2025q4_full.csv": {
        "rows": 8245,
        "version": "CMS October 2025 ASP NDC-HCPCS Crosswalk for Medicare Part B Drugs, whole file",
        "effective_from": "2025-10-01",
        "effective_to": "2025-12-31",
    },
    "mue.csv": {
        "rows": 666,
        "version": "CMS Medicare NCCI Medically Unlikely Edits, Practitioner Services and Facility "
                   "Outpatient Hospital Services tables effective 2024-07-01 (selected codes)",
        "effective_from": "2024-07-01",
        "effective_to": "",
    },
    "ncci_ptp_admin.csv": {
        "rows": 618,
        "version": "CMS Medicare NCCI Procedure-to-Procedure edits effective 2024-07-01, practitioner "
                   "and outpatient hospital (infusion/chemo-administration and access codes)",
        "effective_from": "2024-07-01",
        "effective_to": "",
    },
    "icd10cm_neoplasms.csv": {
        "rows": 2192,
        "version": "ICD-10-CM Tabular List April 1, 2026 release (icd10c-tabular-April-1-2026.xml): "
                   "chapter 2 (C00-D49) plus 14 encounter/supportive-care codes",
        "effective_from": "2026-04-01",
        "effective_to": "",
    },
}

# One entry per generated file. To add a quarter, add its CSVs to SOURCES and a new entry here
# (new version term, new output file name); keep the old entry so the old quarter stays beside it.
RELEASES = [
    {"kind": "hcpcs", "version": "2025Q4", "out": "hcpcs_2025q4.lp",
     "asp": "asp_pricing_2025q4_full.csv", "extract": "hcpcs_drug_units.csv"},
    {"kind": "ndc", "version": "2025Q4", "out": "ndc_2025q4.lp",
     "crosswalk": "ndc_hcpcs_2025q4_full.csv", "hcpcs": "hcpcs_2025q4.lp"},
    {"kind": "mue", "version": "2024Q3", "out": "mue_2024q3.lp", "csv": "mue.csv"},
    {"kind": "ncci", "version": "2024Q3", "out": "ncci_2024q3.lp", "csv": "ncci_ptp_admin.csv"},
    {"kind": "icd10cm", "version": "2026", "out": "icd10cm_2026.lp", "csv": "icd10cm_neoplasms.csv"},
]

OPEN_END = 99991231  # To of a table whose source states only an effective (start) date

# ---------------------------------------------------------------------------------------------
# Terms and rendering
# ---------------------------------------------------------------------------------------------


class Const(str):
    """A clingo constant (rendered bare); plain str is rendered as a clingo string."""


def clingo_string(text: str) -> str:
    if re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text):
        raise ValueError(f"control character in text {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_term(t) -> str:
    if isinstance(t, Const):
        return str(t)
    if isinstance(t, bool):
        raise TypeError("bool term")
    if isinstance(t, int):
        return str(t)
    if isinstance(t, str):
        return clingo_string(t)
    raise TypeError(f"unsupported term {t!r}")


def sort_key(args):
    key = []
    for t in args:
        if isinstance(t, Const):
            key.append((2, 0, str(t)))
        elif isinstance(t, int):
            key.append((0, t, ""))
        else:
            key.append((1, 0, t))
    return tuple(key)


class FactFile:
    """Collects facts (deduplicated), skip reasons and notes for one output file."""

    def __init__(self, name: str, title: str, version_term: str, source_files: list[str]):
        self.name = name
        self.title = title
        self.version_term = version_term
        self.source_files = source_files
        self.preds: dict[str, set] = {}
        self.order: list[str] = []
        self.rows_read: dict[str, int] = {}
        self.skipped: Counter = Counter()
        self.notes: list[str] = []

    def declare(self, *sigs: str):
        """Fix the order of the predicate sections (and list a predicate even with 0 facts)."""
        for sig in sigs:
            if sig not in self.preds:
                self.preds[sig] = set()
                self.order.append(sig)

    def fact(self, pred: str, *args):
        sig = f"{pred}/{len(args)}"
        if sig not in self.preds:
            self.preds[sig] = set()
            self.order.append(sig)
        self.preds[sig].add(tuple(args))

    def skip(self, reason: str, n: int = 1):
        self.skipped[reason] += n

    def note(self, text: str):
        self.notes.append(text)

    def counts(self) -> dict[str, int]:
        return {sig: len(self.preds[sig]) for sig in self.order}

    def body(self) -> str:
        lines = []
        for sig in self.order:
            pred = sig.rsplit("/", 1)[0]
            lines.append("")
            lines.append(f"% {sig}")
            for args in sorted(self.preds[sig], key=sort_key):
                lines.append(f"{pred}({','.join(render_term(a) for a in args)}).")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reading and parsing helpers
# ---------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_source(source_dir: Path, name: str, ff: FactFile, hashes: dict) -> list[dict[str, str]]:
    path = source_dir / name
    if not path.is_file():
        raise SystemExit(f"build_facts: source file not found: {path}")
    rows = read_csv(path)
    expected = SOURCES[name]["rows"]
    if len(rows) != expected:
        raise SystemExit(f"build_facts: {name} has {len(rows)} rows, the data README documents "
                         f"{expected}; wrong file or a new release (add a new SOURCES entry)")
    if name not in hashes:
        hashes[name] = sha256_of(path)
    ff.rows_read[name] = len(rows)
    return rows


NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
UNIT_TABLE = {
    # mass -> micrograms
    "MCG": (1, "mcg"), "MICROGRAM": (1, "mcg"), "MICROGRAMS": (1, "mcg"),
    "MG": (1000, "mcg"), "MILLIGRAM": (1000, "mcg"), "MILLIGRAMS": (1000, "mcg"),
    "G": (1000000, "mcg"), "GM": (1000000, "mcg"), "GRAM": (1000000, "mcg"),
    "GRAMS": (1000000, "mcg"),
    # volume -> microlitres
    "ML": (1000, "ul"), "CC": (1000, "ul"), "MILLILITER": (1000, "ul"),
    "MILLILITERS": (1000, "ul"),
    # units (USP "units", international units) -> whole units
    "UNIT": (1, "unit"), "UNITS": (1, "unit"), "IU": (1, "unit"),
    # radioactivity -> microcuries
    "MICROCURIE": (1, "uci"), "MICROCURIES": (1, "uci"),
    "MILLICURIE": (1000, "uci"), "MILLICURIES": (1000, "uci"),
    # countable items
    "EA": (1, "each"), "EACH": (1, "each"),
}
DOSAGE_RE = re.compile(rf"\s*({NUM})\s*([A-Za-z]+)\s*")
DESCRIPTOR_TAIL_RE = re.compile(rf",\s*({NUM})\s*([A-Za-z]+)\s*$")


def to_small(number_text: str, unit_word: str):
    """Return (amount, dim, None) or (None, None, reason)."""
    factor_dim = UNIT_TABLE.get(unit_word.upper())
    if factor_dim is None:
        return None, None, f"unit word {unit_word.upper()!r} is not in the unit table"
    factor, dim = factor_dim
    try:
        value = Decimal(number_text.replace(",", ""))
    except InvalidOperation:
        return None, None, "number does not parse"
    if value <= 0:
        return None, None, "amount is not positive"
    small = value * factor
    if small != small.to_integral_value():
        return None, None, f"not a whole number of {dim}"
    return int(small), dim, None


def parse_dosage(text: str):
    """'<number> <unit>' (whole text) -> (amount, dim, None) or (None, None, reason)."""
    m = DOSAGE_RE.fullmatch(text.replace("\xa0", " "))
    if not m:
        return None, None, "text is not '<number> <unit>'"
    return to_small(m.group(1), m.group(2))


def parse_descriptor_tail(text: str):
    """Long descriptor that clearly ends with ', <number> <unit>'."""
    m = DESCRIPTOR_TAIL_RE.search(text)
    if not m:
        return None, None, "does not end with ', <number> <unit>'"
    return to_small(m.group(1), m.group(2))


def ymd(text: str) -> int | None:
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if not m:
        return None
    return int(m.group(1) + m.group(2) + m.group(3))


def millidollars(text: str):
    """'58.123' -> (58123, None); otherwise (None, reason). Never rounds."""
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", text)
    if not m:
        return None, "payment limit is not a number"
    frac = m.group(2) or ""
    if len(frac) > 3:
        return None, "payment limit has more than 3 decimals"
    return int(m.group(1)) * 1000 + int((frac + "000")[:3]), None


def clean_int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"\d+", text) else None


def ndc11(text: str):
    """NDC as published -> 11-digit string, or None. 5-4-2 is taken as is; the 10-digit
    hyphenated forms 4-4-2, 5-3-2 and 5-4-1 are zero-padded per segment (returns padded=True)."""
    m = re.fullmatch(r"(\d{4,5})-(\d{3,4})-(\d{1,2})", text)
    if not m:
        return None, False
    a, b, c = m.groups()
    if len(a) + len(b) + len(c) not in (10, 11):
        return None, False
    padded = (len(a), len(b), len(c)) != (5, 4, 2)
    return a.zfill(5) + b.zfill(4) + c.zfill(2), padded


def yyyymmdd(date_text: str) -> int:
    if not date_text:
        return OPEN_END
    return ymd(date_text)


def table_fact(ff: FactFile, name: str, source: str):
    info = SOURCES[source]
    ff.fact("table", ff.version_term, Const(name), yyyymmdd(info["effective_from"]),
            yyyymmdd(info["effective_to"]))


SETTINGS = {"practitioner": Const("office"), "outpatient_hospital": Const("facility")}

# ---------------------------------------------------------------------------------------------
# 1. HCPCS codes, units, ASP limits
# ---------------------------------------------------------------------------------------------


def build_hcpcs(src: Path, hashes: dict, rel: dict) -> FactFile:
    V = rel["version"]
    ff = FactFile(rel["out"],
                  "HCPCS Level II drug codes: labels, oncology categories, billing units, "
                  f"ASP payment limits ({V}), termination dates",
                  V, [rel["asp"], rel["extract"]])
    ff.declare("table/4", "hcpcs/1", "hcpcs_label/2", "hcpcs_category/2", "hcpcs_unit/4",
               "hcpcs_unit_unparsed/3", "hcpcs_unit_source/3", "asp_limit/3",
               "asp_limit_unparsed/3", "hcpcs_terminated/2")
    asp_rows = load_source(src, rel["asp"], ff, hashes)
    ext_rows = load_source(src, rel["extract"], ff, hashes)
    table_fact(ff, "asp", rel["asp"])

    asp = {}
    for r in asp_rows:
        if r["hcpcs_code"] in asp:
            raise SystemExit(f"build_facts: duplicate code {r['hcpcs_code']} in ASP file")
        asp[r["hcpcs_code"]] = r
    ext = {}
    for r in ext_rows:
        if r["hcpcs_code"] in ext:
            raise SystemExit(f"build_facts: duplicate code {r['hcpcs_code']} in extract")
        ext[r["hcpcs_code"]] = r

    # --- the extract and the full file come from the same ASP file: assert they agree ---------
    nbsp_only, limit_na, mismatches, flag_bad = [], [], [], []
    derived_bad = []
    for c, x in sorted(ext.items()):
        in_asp = c in asp
        if (x["in_asp_oct2025"] == "Y") != in_asp:
            flag_bad.append(c)
        if not in_asp:
            if x["billing_unit"] or x["payment_limit_usd_per_unit_oct2025"]:
                mismatches.append(f"{c} (not in ASP file but has ASP values in extract)")
            continue
        a = asp[c]
        for xe, ae in (("billing_unit", "hcpcs_code_dosage"),
                       ("asp_short_description", "short_description")):
            if x[xe] != a[ae]:
                if x[xe].replace("\xa0", " ") == a[ae].replace("\xa0", " "):
                    nbsp_only.append(f"{c} {xe}")
                else:
                    mismatches.append(f"{c} {xe}: extract {x[xe]!r} vs ASP {a[ae]!r}")
        xl, al = x["payment_limit_usd_per_unit_oct2025"], a["payment_limit"]
        if xl != al:
            if xl == "" and al == "N/A":
                limit_na.append(c)
            else:
                mismatches.append(f"{c} payment limit: extract {xl!r} vs ASP {al!r}")
        # the extract's derived regex split must agree with our parse when it gave one
        if x["billing_unit_amount"]:
            amt, dim, _ = parse_dosage(a["hcpcs_code_dosage"])
            amt2, dim2, _ = to_small(x["billing_unit_amount"], x["billing_unit_uom"])
            if (amt, dim) != (amt2, dim2):
                derived_bad.append(f"{c}: ours {amt} {dim} vs extract split {amt2} {dim2}")
    if flag_bad:
        raise SystemExit(f"build_facts: in_asp_oct2025 flag disagrees with the ASP file for {flag_bad}")
    if mismatches:
        raise SystemExit("build_facts: extract and full ASP file disagree (README says they agree):\n  "
                         + "\n  ".join(mismatches))
    ff.note(f"extract vs full ASP file: billing unit, short description and payment limit agree for "
            f"all {sum(1 for c in ext if c in asp)} shared codes")
    if nbsp_only:
        ff.note("differs only by a non-breaking space in the extract (full file has a plain space): "
                + ", ".join(nbsp_only))
    if limit_na:
        ff.note("payment limit 'N/A' in the full file, blank in the extract: " + ", ".join(limit_na))
    if derived_bad:
        ff.note("extract's derived billing_unit_amount/uom differs from our parse: " + "; ".join(derived_bad))
    else:
        ff.note("extract's derived billing_unit_amount/billing_unit_uom agree with our unit parse "
                "wherever the extract filled them")

    category_fixups = []
    comma_numbers = []
    no_descriptor_unit = []
    for c in sorted(set(asp) | set(ext)):
        a, x = asp.get(c), ext.get(c)
        ff.fact("hcpcs", c)
        # category (extract only)
        if x is not None:
            cat = x["category"]
            fixed = cat.strip().strip('"').strip()
            if fixed != cat:
                category_fixups.append(f"{c}: {cat!r} -> {fixed!r}")
            if fixed:
                ff.fact("hcpcs_category", c, fixed)
            else:
                ff.skip("hcpcs_category: extract row has an empty category")
        # label
        label = (a["short_description"] if a is not None else "") or \
                (x["hcpcs_short_descriptor_2024jul"] if x is not None else "")
        if label:
            ff.fact("hcpcs_label", c, label)
        else:
            ff.skip("hcpcs_label: no ASP short description and no 2024 short descriptor")
        # billing unit
        if a is not None:
            text = a["hcpcs_code_dosage"]
            ff.fact("hcpcs_unit_source", V, c, Const("asp"))
            amt, dim, why = parse_dosage(text)
            if amt is not None:
                ff.fact("hcpcs_unit", V, c, amt, Const(dim))
                if "," in text:
                    comma_numbers.append(f"{c} {text!r}")
            else:
                ff.fact("hcpcs_unit_unparsed", V, c, text)
                ff.skip(f"hcpcs_unit: ASP dosage {why} (hcpcs_unit_unparsed written)")
        else:
            text = x["hcpcs_long_descriptor_2024jul"]
            amt, dim, why = parse_descriptor_tail(text)
            if amt is not None:
                ff.fact("hcpcs_unit", V, c, amt, Const(dim))
                ff.fact("hcpcs_unit_source", V, c, Const("descriptor2024"))
                if "," in DESCRIPTOR_TAIL_RE.search(text).group(1):
                    comma_numbers.append(f"{c} {text!r} (2024 descriptor)")
            else:
                no_descriptor_unit.append(c)
                ff.skip(f"hcpcs_unit: code not in ASP file and its 2024 long descriptor {why} "
                        f"(nothing written)")
        # ASP payment limit
        if a is not None:
            md, why = millidollars(a["payment_limit"])
            if md is not None:
                ff.fact("asp_limit", V, c, md)
            else:
                ff.fact("asp_limit_unparsed", V, c, a["payment_limit"])
                ff.skip(f"asp_limit: {why} (asp_limit_unparsed written)")
        else:
            ff.skip("asp_limit: code not in the ASP file (no price)")
        # termination
        if x is not None and x["hcpcs_2024_termination_date"]:
            d = ymd(x["hcpcs_2024_termination_date"])
            if d is None:
                ff.skip("hcpcs_terminated: termination date is not YYYY-MM-DD")
            else:
                ff.fact("hcpcs_terminated", c, d)
    if category_fixups:
        ff.note("category fix-ups (stray quote characters stripped): " + "; ".join(category_fixups))
    else:
        ff.note("category fix-ups: none needed (no category carries stray quote characters once "
                "the CSV is read with a CSV parser)")
    if no_descriptor_unit:
        ff.note("extract-only codes with no unit (2024 long descriptor does not end with "
                "', <number> <unit>'): " + ", ".join(no_descriptor_unit))
    if comma_numbers:
        ff.note("numbers with thousands separators read as integers: " + "; ".join(comma_numbers))
    ff.note(f"codes: {len(asp)} in the full ASP file, {len(ext)} in the oncology extract, "
            f"{len(set(asp) & set(ext))} in both, {len(set(ext) - set(asp))} extract-only")
    return ff


# ---------------------------------------------------------------------------------------------
# 2. NDC-HCPCS crosswalk
# ---------------------------------------------------------------------------------------------


def build_ndc(src: Path, hashes: dict, rel: dict, hcpcs_ff: FactFile) -> FactFile:
    V = rel["version"]
    ff = FactFile(rel["out"],
                  f"ASP NDC-HCPCS crosswalk ({V}): NDC -> HCPCS code and drug amount per item, "
                  "package, label and labeler",
                  V, [rel["crosswalk"]])
    ff.declare("table/4", "ndc/5", "ndc_unparsed/5", "ndc_pkg/4", "ndc_pkg_size_text/3",
               "ndc_label/2", "ndc_labeler/2")
    rows = load_source(src, rel["crosswalk"], ff, hashes)
    table_fact(ff, "ndc", rel["crosswalk"])

    hcpcs_units = {args[1]: (args[2], str(args[3])) for args in hcpcs_ff.preds.get("hcpcs_unit/4", ())}
    unparsed_but_asp_parses = Counter()
    known = {args[0] for args in hcpcs_ff.preds.get("hcpcs/1", ())}

    per_ndc = defaultdict(set)
    padded = 0
    written_rows = 0
    unit_disagree = set()
    not_in_asp = set()
    seen_pairs = set()
    for r in rows:
        n, was_padded = ndc11(r["ndc"])
        if n is None:
            ff.skip("row: product identifier is not a hyphenated 10/11-digit NDC (skin-substitute "
                    "and device catalogue numbers, GTIN/UPC codes)")
            continue
        padded += was_padded
        c = r["hcpcs_code"]
        if (n, c) in seen_pairs:
            ff.skip("row: duplicate (NDC, HCPCS) pair")
            continue
        seen_pairs.add((n, c))
        written_rows += 1
        per_ndc[n].add(c)
        if c not in known:
            not_in_asp.add(c)
        dose_amt, dim, why = parse_dosage(r["hcpcs_dosage"])
        if dose_amt is not None and c in hcpcs_units and hcpcs_units[c] != (dose_amt, dim):
            unit_disagree.add(f"{c}: crosswalk {r['hcpcs_dosage']!r} = {dose_amt} {dim}, ASP file unit = "
                              f"{hcpcs_units[c][0]} {hcpcs_units[c][1]} (ndc/5 follows the crosswalk row)")
        bu = r["billunits"]
        if dose_amt is None and c in hcpcs_units:
            unparsed_but_asp_parses[f"{c} {r['hcpcs_dosage']!r}"] += 1
        if dose_amt is None:
            ff.fact("ndc_unparsed", V, n, c, bu, r["hcpcs_dosage"])
            ff.skip(f"ndc: HCPCS dosage {why} (ndc_unparsed written)")
        elif not re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", bu) or Decimal(bu) <= 0:
            ff.fact("ndc_unparsed", V, n, c, bu, r["hcpcs_dosage"])
            ff.skip("ndc: billunits is not a positive number (ndc_unparsed written)")
        else:
            item = Decimal(bu) * dose_amt
            if item != item.to_integral_value():
                ff.fact("ndc_unparsed", V, n, c, bu, r["hcpcs_dosage"])
                ff.skip(f"ndc: billunits x dosage is not a whole number of {dim} "
                        f"(ndc_unparsed written)")
            else:
                ff.fact("ndc", V, n, c, int(item), Const(dim))
        # package
        qty, size = clean_int(r["pkg_qty"]), clean_int(r["pkg_size"])
        if qty is not None and size is not None:
            ff.fact("ndc_pkg", V, n, qty, size)
        elif size is None and r["pkg_size"]:
            ff.fact("ndc_pkg_size_text", V, n, r["pkg_size"])
            ff.skip("ndc_pkg: pkg_size is not an integer (ndc_pkg_size_text written; count of rows)")
        else:
            ff.skip("ndc_pkg: pkg_qty/pkg_size blank or not an integer (nothing written)")
        if r["drug_name"]:
            ff.fact("ndc_label", n, r["drug_name"])
        else:
            ff.skip("ndc_label: blank drug_name")
        if r["labeler_name"]:
            ff.fact("ndc_labeler", n, r["labeler_name"])
        else:
            ff.skip("ndc_labeler: blank labeler_name")

    multi = {n: cs for n, cs in per_ndc.items() if len(cs) > 1}
    ff.note(f"crosswalk rows with a valid NDC: {written_rows} ({len(per_ndc)} distinct NDCs); "
            f"NDCs zero-padded from a 10-digit form: {padded}")
    ff.note(f"NDCs listed under more than one HCPCS code (all rows kept, as published): {len(multi)} "
            f"NDCs, {sum(len(cs) for cs in multi.values())} rows")
    for sig in ("ndc_pkg/4", "ndc_label/2", "ndc_labeler/2", "ndc_pkg_size_text/3"):
        keyed = defaultdict(set)
        for args in ff.preds.get(sig, ()):
            key = args[:2] if sig.startswith("ndc_pkg") else args[:1]
            keyed[key].add(args)
        conflicts = sorted(k[-1] for k, v in keyed.items() if len(v) > 1)
        if conflicts:
            ff.note(f"{sig}: {len(conflicts)} NDCs carry more than one value across their HCPCS "
                    f"rows (all kept): " + ", ".join(conflicts[:20])
                    + (" ..." if len(conflicts) > 20 else ""))
    if unit_disagree:
        ff.note("crosswalk dosage differs from the ASP file's unit for: " + "; ".join(sorted(unit_disagree)))
    else:
        ff.note("crosswalk hcpcs_dosage agrees with hcpcs_unit (ASP file) for every code where both parse")
    if unparsed_but_asp_parses:
        ff.note("crosswalk dosage text does not parse although the code's ASP unit does; kept as "
                "ndc_unparsed, the ASP unit is NOT substituted ('UP TO' units give a capacity, not "
                "the drug amount): " + "; ".join(f"{k} x{v}" for k, v in sorted(unparsed_but_asp_parses.items())))
    if not_in_asp:
        ff.note("HCPCS codes in the crosswalk without an hcpcs/1 fact: " + ", ".join(sorted(not_in_asp)))
    return ff


# ---------------------------------------------------------------------------------------------
# 3. MUE
# ---------------------------------------------------------------------------------------------


def build_mue(src: Path, hashes: dict, rel: dict) -> FactFile:
    V = rel["version"]
    eff = SOURCES[rel["csv"]]["effective_from"]
    ff = FactFile(rel["out"], f"NCCI Medically Unlikely Edits effective {eff}", V, [rel["csv"]])
    ff.declare("table/4", "mue/5", "mue_rationale/4")
    rows = load_source(src, rel["csv"], ff, hashes)
    table_fact(ff, "mue", rel["csv"])
    for r in rows:
        s = SETTINGS.get(r["setting"])
        if s is None:
            ff.skip("row: unknown setting")
            continue
        if r["table_effective_date"] != eff:
            ff.skip(f"row: table_effective_date is not {eff}")
            continue
        value, mai = clean_int(r["mue_value"]), clean_int(r["mue_adjudication_indicator"])
        if value is None or mai not in (1, 2, 3):
            ff.skip("row: MUE value or MAI is not an integer (MAI 1/2/3)")
            continue
        ff.fact("mue", V, s, r["hcpcs_code"], value, mai)
        if r["mue_rationale"]:
            ff.fact("mue_rationale", V, s, r["hcpcs_code"], r["mue_rationale"])
    groups = Counter(r["code_group"] for r in rows)
    ff.note("code groups: " + ", ".join(f"{k} {v}" for k, v in sorted(groups.items())))
    ff.note("setting constants: practitioner -> office, outpatient_hospital -> facility")
    return ff


# ---------------------------------------------------------------------------------------------
# 4. NCCI PTP
# ---------------------------------------------------------------------------------------------


def build_ncci(src: Path, hashes: dict, rel: dict) -> FactFile:
    V = rel["version"]
    eff = SOURCES[rel["csv"]]["effective_from"]
    ff = FactFile(rel["out"],
                  f"NCCI procedure-to-procedure edits active on {eff} (administration and access codes)",
                  V, [rel["csv"]])
    ff.declare("table/4", "table_label/3", "ncci/5", "ncci_rationale/5")
    rows = load_source(src, rel["csv"], ff, hashes)
    table_fact(ff, "ncci", rel["csv"])
    start = yyyymmdd(eff)
    flag_disagree = []
    for r in rows:
        s = SETTINGS.get(r["setting"])
        if s is None:
            ff.skip("row: unknown setting")
            continue
        if r["deletion_date"]:
            d = ymd(r["deletion_date"])
            if d is None:
                ff.skip("row: deletion_date is not YYYY-MM-DD")
                continue
            active = d > start
        else:
            active = True
        if active != (r["active_in_2024q3_table"] == "Y"):
            flag_disagree.append(f"{r['setting']} {r['column1_code']}/{r['column2_code']}")
        if not active:
            ff.skip(f"row: edit deleted on or before {eff}")
            continue
        mi = clean_int(r["modifier_indicator"])
        if mi not in (0, 1, 9):
            ff.skip("row: modifier indicator is not 0/1/9")
            continue
        c1, c2 = r["column1_code"], r["column2_code"]
        ff.fact("ncci", V, s, c1, c2, mi)
        if r["ptp_edit_rationale"]:
            ff.fact("ncci_rationale", V, s, c1, c2, r["ptp_edit_rationale"])
        if r["table_version"]:
            ff.fact("table_label", V, Const("ncci"), r["table_version"])
    if flag_disagree:
        ff.note("active_in_2024q3_table flag disagrees with deletion_date for: " + ", ".join(flag_disagree))
    else:
        ff.note("active_in_2024q3_table flag agrees with deletion_date on every row")
    ff.note("setting constants: practitioner -> office, outpatient_hospital -> facility; "
            "edit effective dates and the pre-1996 flag are not in the source")
    return ff


# ---------------------------------------------------------------------------------------------
# 5. ICD-10-CM
# ---------------------------------------------------------------------------------------------


def build_icd(src: Path, hashes: dict, rel: dict) -> FactFile:
    V = rel["version"]
    eff = SOURCES[rel["csv"]]["effective_from"]
    ff = FactFile(rel["out"],
                  f"ICD-10-CM release effective {eff}: chapter 2 neoplasms plus encounter/supportive-care codes",
                  V, [rel["csv"]])
    ff.declare("table/4", "icd10/2", "icd10_title/2", "icd10_block/2", "icd10_chapter/2")
    rows = load_source(src, rel["csv"], ff, hashes)
    table_fact(ff, "icd10cm", rel["csv"])
    chapters = Counter()
    for r in rows:
        code = r["code"]
        if not re.fullmatch(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?", code) \
                or code.replace(".", "") != r["code_nodot"]:
            ff.skip("row: code is not a dotted ICD-10-CM code")
            continue
        billable = {"Y": Const("y"), "N": Const("n")}.get(r["billable"])
        if billable is None:
            ff.skip("row: billable is not Y/N")
            continue
        ff.fact("icd10", code, billable)
        if r["title"]:
            ff.fact("icd10_title", code, r["title"])
        if r["block"]:
            ff.fact("icd10_block", code, r["block"])
        ch = clean_int(r["chapter"])
        if ch is not None:
            ff.fact("icd10_chapter", code, ch)
            chapters[ch] += 1
        else:
            ff.skip("icd10_chapter: chapter column is not an integer")
    ff.note("icd10_chapter rows per chapter: " + ", ".join(f"{k}: {v}" for k, v in sorted(chapters.items()))
            + " (chapter 2 = neoplasms; the 14 encounter/supportive-care codes keep their own chapter)")
    return ff


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def header(ff: FactFile, hashes: dict) -> str:
    lines = [f"% {ff.title}",
             f"% generated file, do not edit: python {GENERATOR} (see docs/reference-data.md)",
             f"% generator: {GENERATOR}",
             f'% version term: "{ff.version_term}"']
    for name in ff.source_files:
        info = SOURCES[name]
        lines += [f"% source: {name}",
                  f"%   sha256: {hashes[name]}",
                  f"%   version: {info['version']}",
                  f"%   effective: {info['effective_from']} .. {info['effective_to'] or 'open (no end date in source)'}",
                  f"%   rows read: {ff.rows_read[name]}"]
    counts = ff.counts()
    lines.append(f"% facts written: {sum(counts.values())}")
    for sig, n in counts.items():
        lines.append(f"%   {sig}: {n}")
    if ff.skipped:
        lines.append(f"% skipped (reason: count), {sum(ff.skipped.values())} in all:")
        for reason, n in sorted(ff.skipped.items()):
            lines.append(f"%   {reason}: {n}")
    else:
        lines.append("% skipped: none")
    for text in ff.notes:
        lines.append(f"% note: {text}")
    return "\n".join(lines) + "\n"


def manifest_entry(ff: FactFile, hashes: dict, content: bytes) -> dict:
    counts = ff.counts()
    return {
        "title": ff.title,
        "version_term": ff.version_term,
        "generator": GENERATOR,
        "sha256": hashlib.sha256(content).hexdigest(),
        "sources": [{
            "file": name,
            "sha256": hashes[name],
            "version": SOURCES[name]["version"],
            "effective_from": SOURCES[name]["effective_from"],
            "effective_to": SOURCES[name]["effective_to"] or None,
            "rows_read": ff.rows_read[name],
        } for name in ff.source_files],
        "facts_written": counts,
        "facts_total": sum(counts.values()),
        "skipped": dict(sorted(ff.skipped.items())),
        "skipped_total": sum(ff.skipped.values()),
        "notes": list(ff.notes),
    }


def build(source: Path, out: Path) -> dict:
    hashes: dict[str, str] = {}
    files: list[FactFile] = []
    by_out: dict[str, FactFile] = {}
    for rel in RELEASES:
        kind = rel["kind"]
        if kind == "hcpcs":
            ff = build_hcpcs(source, hashes, rel)
        elif kind == "ndc":
            ff = build_ndc(source, hashes, rel, by_out[rel["hcpcs"]])
        elif kind == "mue":
            ff = build_mue(source, hashes, rel)
        elif kind == "ncci":
            ff = build_ncci(source, hashes, rel)
        elif kind == "icd10cm":
            ff = build_icd(source, hashes, rel)
        else:
            raise SystemExit(f"build_facts: unknown release kind {kind!r}")
        files.append(ff)
        by_out[ff.name] = ff
    known = set()
    for ff in files:
        known.update(a[0] for a in ff.preds.get("hcpcs/1", ()))
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"generator": GENERATOR, "files": {}, "known_hcpcs": sorted(known)}
    for ff in files:
        content = (header(ff, hashes) + ff.body()).encode("utf-8")
        (out / ff.name).write_bytes(content)
        manifest["files"][ff.name] = manifest_entry(ff, hashes, content)
    text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_bytes(text.encode("utf-8"))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                    help=f"folder with the reference CSVs (default {DEFAULT_SOURCE})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = ap.parse_args(argv)
    manifest = build(args.source, args.out)
    if not args.quiet:
        for name, entry in sorted(manifest["files"].items()):
            print(f"{args.out / name}: {entry['facts_total']} facts, {entry['skipped_total']} skipped")
        print(f"{args.out / 'manifest.json'}: {len(manifest['known_hcpcs'])} known HCPCS codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
