"""Readers for OPPS Addendum B, Medicare billing articles (coverage) and the FDA NDC Directory."""

from __future__ import annotations

import re

from .core import HCPCS_RE, Const, Rejected, Table, decimal_scaled, ndc11, quarter_of
from .readers import Options, cell, in_ptp_scope, need_effective

# --------------------------------------------------------------------------------------------
# CMS OPPS Addendum B: status indicator, APC, payment rate, copayments (never the descriptor)

OPPS_COLS = {"HCPCS Code", "SI", "APC", "Payment Rate"}
_CY = re.compile(r"Addendum B.*?for CY (\d{4})", re.I)


def _money(text: str):
    t = text.replace("$", "").replace(",", "").strip()
    return decimal_scaled(t, 3) if re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", t) else None


def read_opps(rows, name: str, hdr: int, cols: dict, opts: Options) -> Table:
    """Addendum B names its calendar year ("... for CY 2025") but not the quarter: the quarter's
    first day is given with --effective, the version applies to the end of that calendar year."""
    year = next((int(m.group(1)) for _ln, r in rows[:hdr] for m in [_CY.search(" ".join(r))] if m), None)
    if year is None:
        raise Rejected(name, rows[0][0] if rows else None, "no 'Addendum B ... for CY <year>' line in the header block")
    start = need_effective(opts, name, f"Addendum B (CY {year}) names no quarter and")
    if start // 10000 != year:
        raise Rejected(name, None, f"--effective {start} is not in CY {year}, the year the file states")
    V = quarter_of(start)
    t = Table("opps", f"CMS OPPS Addendum B CY {year}, effective {start}: status indicator, APC, payment rate, copayment",
              V, start, year * 10000 + 1231)
    t.declare("table/4", "opps_si/3", "opps_apc/3", "opps_rate/3", "opps_copay/3", "opps_min_copay/3", "opps_coinsurance/3")
    t.fact("table", V, Const("opps"), start, year * 10000 + 1231)
    for line, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            continue
        raw = cell(row, cols, "HCPCS Code")
        code = raw.strip("\xa0\xff\ufeff ")
        if not HCPCS_RE.fullmatch(code):
            raise Rejected(name, line, f"HCPCS Code {raw!r} is not a 5-character HCPCS/CPT code")
        if code != raw:
            t.skip("note: a stray non-printing byte after the HCPCS code was removed (row kept)")
        t.rows_read += 1
        if not in_ptp_scope(code):
            t.skip("row: a code outside the infusion-claim code families (filter, docs/reference-data.md)")
            continue
        _opps_row(t, name, line, row, cols, code)
    return t


def _opps_row(t: Table, name: str, line: int, row, cols: dict, code: str) -> None:
    V = t.version
    si = cell(row, cols, "SI")
    if not re.fullmatch(r"[A-Z][0-9]?", si):
        raise Rejected(name, line, f"status indicator {si!r} of {code} is not a letter with an optional digit")
    t.fact("opps_si", V, code, si)
    apc = cell(row, cols, "APC")
    if apc:
        t.fact("opps_apc", V, code, apc)
    for col, pred in (("Payment Rate", "opps_rate"), ("National Unadjusted Copayment", "opps_copay"),
                      ("Minimum Unadjusted Copayment", "opps_min_copay")):
        text = cell(row, cols, col) if col in cols else ""
        value = _money(text)
        if value is not None:
            t.fact(pred, V, code, value)
        elif text not in ("", "."):
            raise Rejected(name, line, f"{col} {text!r} of {code} is not an amount")
    ira = next((c for c in cols if c.lower().startswith("ira coinsurance")), None)
    text = cell(row, cols, ira).rstrip("%") if ira else ""
    if text:
        pct = decimal_scaled(text, 3)
        if pct is None:
            raise Rejected(name, line, f"IRA coinsurance {text!r} of {code} is not a percentage")
        t.fact("opps_coinsurance", V, code, pct)


# --------------------------------------------------------------------------------------------
# Medicare contractor billing articles (coverage database export, JSON)

_ICD = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?")


def read_coverage(records, name: str) -> Table:
    """A billing-and-coding article: its HCPCS code groups and its covered (and non-covered)
    ICD-10-CM groups. The article's own version number is kept; a newer version replaces it."""
    if len(records) != 1:
        raise Rejected(name, None, f"a coverage export holds one article, this one holds {len(records)}")
    art = records[0]
    aid = str(art.get("displayId", ""))
    if not re.fullmatch(r"A\d{5}", aid):
        raise Rejected(name, None, f"displayId {aid!r} is not an article id (A + 5 digits)")
    t = Table("coverage", f"Medicare billing article {aid} version {art.get('version')}", "", 0, 0, aid.lower())
    t.declare("coverage_article/2", "coverage_code/3", "coverage_dx/3", "coverage_noncovered/3")
    t.fact("coverage_article", aid, int(art.get("version", 0)))
    for key, pred, pattern in (("codes", "coverage_code", HCPCS_RE), ("covered", "coverage_dx", _ICD),
                               ("noncovered", "coverage_noncovered", _ICD)):
        for group, items in (art.get(key) or {}).items():
            for item in items:
                if not pattern.fullmatch(item):
                    raise Rejected(name, f"{key} group {group}", f"{item!r} is not a code")
                t.rows_read += 1
                t.fact(pred, aid, int(group), _dotted(item) if pred != "coverage_code" else item)
    t.note("group numbers are the article's: a code group and a diagnosis group with the same number are not "
           "necessarily paired (the article's paragraphs say which indications apply)")
    return t


def _dotted(code: str) -> str:
    return code if "." in code or len(code) <= 3 else code[:3] + "." + code[3:]


# --------------------------------------------------------------------------------------------
# FDA NDC Directory (tab-separated package.txt / product.txt)

_SINGLE = re.compile(r"\bSINGLE[- ]DOSE\b", re.I)
_MULTI = re.compile(r"\bMULTI(?:PLE)?[- ]DOSE\b", re.I)
_VOLUME = re.compile(r"(\d*\.?\d+) mL in 1 ")


def read_fda_package(rows, name: str, hdr: int, cols: dict) -> Table:
    """package.txt: single- or multiple-dose container per package NDC, where the package
    description says so ("1 VIAL, SINGLE-DOSE in 1 CARTON"); a description naming both (kits) or
    neither gives nothing. The volume of the innermost item when the description gives it in mL
    ("> 4 mL in 1 VIAL"): fda_volume/2, in microliters."""
    t = Table("fda", "FDA NDC Directory packages: single- or multiple-dose container per NDC", "", 0, 0, "package")
    t.declare("fda_container/2", "fda_volume/2")
    counts = {"single": 0, "multi": 0, "both": 0, "neither": 0}
    for line, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            continue
        n, _padded = ndc11(cell(row, cols, "NDCPACKAGECODE"))
        if n is None:
            raise Rejected(name, line, f"NDCPACKAGECODE {cell(row, cols, 'NDCPACKAGECODE')!r} is not a hyphenated NDC")
        t.rows_read += 1
        text = cell(row, cols, "PACKAGEDESCRIPTION")
        single, multi = bool(_SINGLE.search(text)), bool(_MULTI.search(text))
        kind = "both" if single and multi else "single" if single else "multi" if multi else "neither"
        counts[kind] += 1
        if kind in ("single", "multi"):
            t.fact("fda_container", n, Const("single_dose" if kind == "single" else "multi_dose"))
        # the innermost item ("... > 4 mL in 1 VIAL, SINGLE-USE"): a volume in mL, kept in microliters
        vol = _VOLUME.match(text.split(">")[-1].strip())
        ul = decimal_scaled(vol.group(1), 3) if vol else None
        if ul:
            t.fact("fda_volume", n, ul)
            counts["volume"] = counts.get("volume", 0) + 1
    t.note("package descriptions: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return t


def read_fda_product(rows, name: str, hdr: int, cols: dict) -> Table:
    """product.txt has no container type: it is recognised and counted, nothing is kept."""
    t = Table("fda", "FDA NDC Directory products (nothing kept: no container type in this file)", "", 0, 0, "product")
    t.rows_read = sum(1 for _ln, r in rows[hdr + 1:] if any(c.strip() for c in r))
    t.note("product.txt gives dosage forms and routes per product, not the container type of a package")
    return t
