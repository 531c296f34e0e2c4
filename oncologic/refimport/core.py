"""Shared pieces of the reference-data importer: fact terms and their rendering, the parsed table
(``Table``), the rejection error, and the small exact parsers (dates, amounts, NDCs).

Rules kept here (docs/reference-data.md):
  * nothing is invented: every fact is a transformation of cells of one agency file; a value that
    cannot be transformed exactly is never rounded or guessed (it is counted as skipped, and where a
    rule needs to know, an ``..._unparsed`` fact keeps the text);
  * codes are clingo strings; amounts are integers in a small unit (mcg, ul, unit, uci, each),
    money in mills (thousandths of a dollar), percentages in thousandths of a percent;
  * output is deterministic (sorted rows, no timestamps), so a re-import is byte-identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from decimal import Decimal, InvalidOperation

OPEN_END = 99991231  # the To of a table that applies from its effective date until replaced


class Const(str):
    """A clingo constant (rendered bare); plain ``str`` is rendered as a clingo string."""


class Fn:
    """A clingo function term such as ``mue(office)`` (name and constant/str/int arguments)."""

    def __init__(self, name: str, *args) -> None:
        self.name, self.args = name, args

    def __str__(self) -> str:
        return f"{self.name}({','.join(render_term(a) for a in self.args)})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Fn) and (self.name, self.args) == (other.name, other.args)

    def __hash__(self) -> int:
        return hash((self.name, self.args))


class Rejected(Exception):
    """A file that cannot be recognised or parsed: the message names the file and the line."""

    def __init__(self, path, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")


def clingo_string(text: str) -> str:
    if re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text):
        raise ValueError(f"control character in text {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_term(t) -> str:
    if isinstance(t, (Const, Fn)):
        return str(t)
    if isinstance(t, bool):
        raise TypeError("bool term")
    if isinstance(t, int):
        return str(t)
    if isinstance(t, str):
        return clingo_string(t)
    raise TypeError(f"unsupported term {t!r}")


def sort_key(args) -> tuple:
    key = []
    for t in args:
        if isinstance(t, (Const, Fn)):
            key.append((2, 0, str(t)))
        elif isinstance(t, int):
            key.append((0, t, ""))
        else:
            key.append((1, 0, t))
    return tuple(key)


class Table:
    """The facts of one imported file: kind, version, dates, facts by predicate, counts, notes."""

    def __init__(self, kind: str, title: str, version: str, start: int, end: int, part: str = "") -> None:
        self.kind, self.title, self.version = kind, title, version
        self.start, self.end, self.part = start, end, part
        self.preds: dict[str, set] = {}
        self.order: list[str] = []
        self.rows_read = 0
        self.skipped: Counter = Counter()
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        """The fact file's name: one file per table kind, version and part."""
        name = "_".join(x for x in (self.kind, self.version.lower(), self.part) if x)
        return f"{name}.lp"

    def declare(self, *sigs: str) -> None:
        for sig in sigs:
            if sig not in self.preds:
                self.preds[sig] = set()
                self.order.append(sig)

    def fact(self, pred: str, *args) -> None:
        sig = f"{pred}/{len(args)}"
        if sig not in self.preds:
            self.declare(sig)
        self.preds[sig].add(tuple(args))

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def note(self, text: str) -> None:
        self.notes.append(text)

    def counts(self) -> dict[str, int]:
        return {sig: len(self.preds[sig]) for sig in self.order}

    def render(self, source: dict) -> bytes:
        """The fact file: a comment header (provenance, counts, skips, notes), then the facts."""
        lines = [f"% {self.title}",
                 "% generated file, do not edit: oncologic data import (see docs/reference-data.md)",
                 f"% table: {self.kind}, version {self.version}, part {self.part or '-'}",
                 f"% effective: {ymd_text(self.start)} .. {ymd_text(self.end)}",
                 f"% source: {source['file']}", f"%   sha256: {source['sha256']}",
                 f"%   rows read: {self.rows_read}"]
        counts = self.counts()
        lines.append(f"% facts written: {sum(counts.values())}")
        lines += [f"%   {sig}: {n}" for sig, n in counts.items()]
        if self.skipped:
            lines.append(f"% skipped (reason: count), {sum(self.skipped.values())} in all:")
            lines += [f"%   {reason}: {n}" for reason, n in sorted(self.skipped.items())]
        else:
            lines.append("% skipped: none")
        lines += [f"% note: {text}" for text in self.notes]
        for sig in self.order:
            pred = sig.rsplit("/", 1)[0]
            lines += ["", f"% {sig}"]
            lines += [f"{pred}({','.join(render_term(a) for a in args)})." for args in sorted(self.preds[sig], key=sort_key)]
        return ("\n".join(lines) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# exact parsers

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ymd_text(value: int) -> str:
    if value == OPEN_END:
        return "open"
    if not value:
        return "none"
    s = str(value)
    return f"{s[:4]}-{s[4:6]}-{s[6:]}"


def ymd_int(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def quarter_of(day: int) -> str:
    """20251001 -> '2025Q4' (the version term of a quarterly table)."""
    y, m = day // 10000, (day // 100) % 100
    return f"{y}Q{(m - 1) // 3 + 1}"


_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"], 1)}
_LONG_DATE = r"([A-Za-z]+)\s+(\d{1,2}),\s*(\d{4})"
EFFECTIVE_RE = re.compile(rf"Effective\s+{_LONG_DATE}\s+through\s+{_LONG_DATE}", re.I)


def long_date(month: str, day: str, year: str) -> int | None:
    m = _MONTHS.get(month.lower())
    if m is None:
        return None
    try:
        return ymd_int(dt.date(int(year), m, int(day)))
    except ValueError:
        return None


def parse_iso(text: str) -> int | None:
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if not m:
        return None
    try:
        return ymd_int(dt.date(int(m[1]), int(m[2]), int(m[3])))
    except ValueError:
        return None


NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
UNIT_TABLE = {
    "MCG": (1, "mcg"), "MICROGRAM": (1, "mcg"), "MICROGRAMS": (1, "mcg"),
    "MG": (1000, "mcg"), "MILLIGRAM": (1000, "mcg"), "MILLIGRAMS": (1000, "mcg"),
    "G": (1000000, "mcg"), "GM": (1000000, "mcg"), "GRAM": (1000000, "mcg"), "GRAMS": (1000000, "mcg"),
    "ML": (1000, "ul"), "CC": (1000, "ul"), "MILLILITER": (1000, "ul"), "MILLILITERS": (1000, "ul"),
    "UNIT": (1, "unit"), "UNITS": (1, "unit"), "IU": (1, "unit"),
    "MICROCURIE": (1, "uci"), "MICROCURIES": (1, "uci"), "MILLICURIE": (1000, "uci"), "MILLICURIES": (1000, "uci"),
    "EA": (1, "each"), "EACH": (1, "each"),
}
DOSAGE_RE = re.compile(rf"\s*({NUM})\s*([A-Za-z]+)\s*")


def to_small(number_text: str, unit_word: str):
    """(amount, dim, None) or (None, None, reason): the amount in the dimension's small unit."""
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
    """'<number> <unit>' (the whole text) -> (amount, dim, None) or (None, None, reason)."""
    m = DOSAGE_RE.fullmatch(text.replace("\xa0", " "))
    if not m:
        return None, None, "text is not '<number> <unit>'"
    return to_small(m.group(1), m.group(2))


def decimal_scaled(text: str, places: int):
    """'58.123' with places=3 -> 58123; None when not a plain decimal or more places (never rounds)."""
    m = re.fullmatch(r"\$?\s*(\d[\d,]*)?(?:\.(\d+))?", text.strip())
    if not m or (m.group(1) is None and m.group(2) is None):
        return None
    whole, frac = (m.group(1) or "0").replace(",", ""), m.group(2) or ""
    if len(frac) > places and frac[places:].strip("0"):
        return None
    return int(whole) * 10 ** places + int((frac + "0" * places)[:places] or 0)


def ndc11(text: str):
    """NDC as published -> (11-digit string, padded?) or (None, False). 5-4-2 as is; 4-4-2, 5-3-2
    and 5-4-1 zero-padded per segment."""
    m = re.fullmatch(r"(\d{4,5})-(\d{3,4})-(\d{1,2})", text.strip())
    if not m:
        return None, False
    a, b, c = m.groups()
    if len(a) + len(b) + len(c) not in (10, 11):
        return None, False
    return a.zfill(5) + b.zfill(4) + c.zfill(2), (len(a), len(b), len(c)) != (5, 4, 2)


HCPCS_RE = re.compile(r"[A-Z0-9][0-9]{3}[A-Z0-9]")
