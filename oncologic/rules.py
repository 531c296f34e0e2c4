"""Rule tags in the encodings: ``%@rule``, ``%@text``, ``%@ref`` (no clingo needed).

A tagged rule looks like::

    %@rule admin.initial
    %@text "{A:adm} is the initial service: {L} ranks highest ..."
    %@ref "CPT facility hierarchy (domain-rules 3.6)"
    charge(E,k(1,G,0,C,0),C,1,A) :- initial_basis(E,G,A,hierarchy), ...

An optional ``%@effective 2023-07-01`` (from that date of service on) or
``%@effective 2023-07-01..2024-12-31`` (both ends included; ``..2024-12-31`` has no start) limits
the rule to dates of service in the range; two versions of one rule id may coexist when their
ranges are disjoint (:func:`check_effective`).

The id is stable API (``family.name``). The text is a template over the rule's variables,
rendered by :mod:`oncologic.explain`; ``{A:adm}`` names a format (see ``explain.FORMATS``).
The tag block applies to the first rule after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TAG = re.compile(r"^\s*%@(rule|text|ref|effective)\s+(.*?)\s*$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")
_PLACEHOLDER = re.compile(r"\{([A-Z][A-Za-z0-9_']*(?:,[A-Z][A-Za-z0-9_']*)*)(?::([a-z]+))?\}")


@dataclass(frozen=True)
class RuleTag:
    id: str
    text: str
    ref: str
    file: str
    line: int  # line of the rule the tag applies to (1-based)
    effective_from: int | None = None  # YYYYMMDD: the rule applies to dates of service from this day
    effective_to: int | None = None  # YYYYMMDD: ... up to and including this day

    @property
    def effective(self) -> str:
        """The date range as written for people ("" when the rule has none)."""
        if self.effective_from is None and self.effective_to is None:
            return ""
        def fmt(v):
            return f"{v // 10000:04d}-{v // 100 % 100:02d}-{v % 100:02d}"
        lo = fmt(self.effective_from) if self.effective_from is not None else ""
        hi = fmt(self.effective_to) if self.effective_to is not None else ""
        return f"{lo}..{hi}"

    def overlaps(self, other: "RuleTag") -> bool:
        lo1, hi1 = self.effective_from or 0, self.effective_to or 99991231
        lo2, hi2 = other.effective_from or 0, other.effective_to or 99991231
        return lo1 <= hi2 and lo2 <= hi1

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    def placeholders(self) -> list[tuple[list[str], str]]:
        return [(m.group(1).split(","), m.group(2) or "") for m in _PLACEHOLDER.finditer(self.text)]


class TagError(ValueError):
    pass


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _parse_date(value: str, where: str) -> int:
    m = _DATE.match(value)
    if not m:
        raise TagError(f"{where}: %@effective date {value!r} must be YYYY-MM-DD")
    y, mo, d = (int(g) for g in m.groups())
    import datetime

    try:
        datetime.date(y, mo, d)
    except ValueError:
        raise TagError(f"{where}: %@effective date {value!r} is not a calendar date") from None
    return y * 10000 + mo * 100 + d


def parse_effective(value: str, where: str) -> tuple[int | None, int | None]:
    """``2023-07-01``, ``2023-07-01..2024-12-31``, ``..2024-12-31`` -> (from, to) as YYYYMMDD."""
    text = value.strip()
    if ".." in text:
        lo_s, hi_s = (part.strip() for part in text.split("..", 1))
    else:
        lo_s, hi_s = text, ""
    lo = _parse_date(lo_s, where) if lo_s else None
    hi = _parse_date(hi_s, where) if hi_s else None
    if lo is None and hi is None:
        raise TagError(f"{where}: %@effective needs a start date, an end date or both")
    if lo is not None and hi is not None and hi < lo:
        raise TagError(f"{where}: %@effective range {value!r} ends before it starts")
    return lo, hi


def check_effective(tags: list[RuleTag]) -> None:
    """Versions of one rule id with different effective ranges must not overlap (identical ranges
    are variants of one version: several rules may share an id)."""
    by_id: dict[str, list[RuleTag]] = {}
    for tag in tags:
        by_id.setdefault(tag.id, []).append(tag)
    for rid, group in by_id.items():
        ranges = {(t.effective_from, t.effective_to): t for t in group}
        if len(ranges) < 2:
            continue
        items = list(ranges.values())
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if a.overlaps(b):
                    raise TagError(f"{b.file}:{b.line}: rule {rid} effective {b.effective or 'always'} overlaps its "
                                   f"other version at {a.file}:{a.line} (effective {a.effective or 'always'}); "
                                   "versions of one rule id need disjoint date ranges")


def parse_tags(path: Path, display: str | None = None) -> list[RuleTag]:
    """All tags of one .lp file, each bound to the line of the rule that follows it."""
    name = display or str(path)
    tags: list[RuleTag] = []
    pending: dict[str, str] = {}
    pending_line = 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _TAG.match(raw)
        if match:
            key, value = match.group(1), _unquote(match.group(2))
            if key == "rule":
                if pending:
                    raise TagError(f"{name}:{pending_line}: %@rule {pending.get('rule')} is not followed by a rule")
                if not _ID.match(value):
                    raise TagError(f"{name}:{lineno}: rule id {value!r} must look like family.name")
                pending = {"rule": value}
                pending_line = lineno
            else:
                if not pending:
                    raise TagError(f"{name}:{lineno}: %@{key} without a preceding %@rule")
                pending[key] = value
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("%"):
            continue
        if pending:
            if "text" not in pending:
                raise TagError(f"{name}:{pending_line}: rule {pending['rule']} has no %@text")
            lo = hi = None
            if "effective" in pending:
                lo, hi = parse_effective(pending["effective"], f"{name}:{pending_line}")
            tags.append(RuleTag(pending["rule"], pending["text"], pending.get("ref", ""), name, lineno, lo, hi))
            pending = {}
    if pending:
        raise TagError(f"{name}:{pending_line}: %@rule {pending['rule']} is not followed by a rule")
    return tags


_SIG = re.compile(r"^([a-z_][A-Za-z0-9_']*)(?:\((.*)\))?$")


def doc_blocks(path: Path) -> list[tuple[str, list[str], str, str]]:
    """Every ``%*! pred(Args) ... *%`` docstring block of a rule file, in file order:
    (predicate name, argument names, signature as written, description)."""
    out: list[tuple[str, list[str], str, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("%*!"):
            sig = line[3:].strip()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("*%"):
                body.append(lines[i].strip())
                i += 1
            m = _SIG.match(sig)
            if m:
                args = [a.strip() for a in (m.group(2) or "").split(",") if a.strip()]
                out.append((m.group(1), args, sig, " ".join(body).strip()))
        i += 1
    return out

