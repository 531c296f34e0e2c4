"""Posted 837 files as practice-management systems write them: many claims, found again.

A posted batch is what a billing system sent: one interchange with one or more functional groups
and transaction sets, each holding many subscribers (2000B ``HL*..*22``), sometimes a patient
loop under them (2000C ``HL*..*23`` with ``NM1*QC``), and under each one or more claims (``CLM``).
This module reads, per claim, what the audit needs to find the right one and compare it:

- the claim id (CLM01, the patient control number), the frequency code (CLM05-3: 1 original,
  7 replacement, 8 void), the claim it names (``REF*F8``, the original's reference) and other
  claim references (``REF*D9``, ``REF*EA``);
- the subscriber's member id (``NM1*IL`` … ``MI``), the patient's name when a patient loop is
  present, the statement period (``DTP*434``) and the line dates (``DTP*472``);
- every service line: procedure code and modifiers (``SV1``/``SV2``), units, the posted charge,
  the revenue code; a facility line with a revenue code and no procedure code (routine pharmacy,
  supplies) is kept with ``code = None`` so the audit can list it as "not compared".

Nothing here decides a code; it reads. No delimiter is assumed: ISA declares them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Optional

FREQUENCY_TEXT = {"1": "original", "7": "replacement", "8": "void"}


class PostedError(ValueError):
    """The posted file is not a readable 837."""


@dataclass
class PostedLine:
    code: Optional[str]  # None: a revenue-code-only facility line
    modifiers: list[str]
    units: int
    charge: Optional[Decimal] = None
    date: Optional[dt.date] = None
    revenue: Optional[str] = None
    ndc: Optional[str] = None
    number: int = 0  # LX


@dataclass
class PostedClaim:
    claim_id: str
    member_id: Optional[str]
    frequency: str  # CLM05-3
    total: Optional[Decimal]
    diagnoses: list[str] = field(default_factory=list)
    lines: list[PostedLine] = field(default_factory=list)
    original_ref: Optional[str] = None  # REF*F8
    refs: dict[str, str] = field(default_factory=dict)  # other claim-level REF qualifiers
    statement: Optional[tuple[dt.date, dt.date]] = None  # DTP*434
    patient_name: Optional[str] = None
    patient_birth: Optional[dt.date] = None  # DMG of the patient (2010CA, else the subscriber's 2010BA)
    index: int = 0  # order in the file (0-based)

    @property
    def dates(self) -> list[dt.date]:
        """Dates of service: the line dates, else the statement period's first day."""
        out = sorted({ln.date for ln in self.lines if ln.date})
        if not out and self.statement:
            out = [self.statement[0]]
        return out

    def covers(self, day: dt.date) -> bool:
        if any(ln.date == day for ln in self.lines):
            return True
        if self.statement and self.statement[0] <= day <= self.statement[1]:
            return True
        return False

    def describe(self) -> str:
        days = self.dates
        when = days[0].isoformat() if len(days) == 1 else (f"{days[0]}..{days[-1]}" if days else "no date")
        freq = FREQUENCY_TEXT.get(self.frequency, f"frequency {self.frequency}")
        return f"{self.claim_id} (member {self.member_id or '?'}, {when}, {freq})"


def is_x12(text: str) -> bool:
    return text.lstrip("\ufeff \r\n\t").startswith("ISA")


def _segments(text: str) -> tuple[list[list[str]], str]:
    body = text.lstrip("\ufeff \r\n\t")
    if not body.startswith("ISA") or len(body) < 106:
        raise PostedError("not an X12 interchange (it must start with a 106-character ISA segment)")
    el, comp, term = body[3], body[104], body[105]
    segs = []
    for raw in body.split(term):
        raw = raw.strip("\r\n ")
        if raw:
            segs.append(raw.split(el))
    return segs, comp


def _date(value: str) -> Optional[dt.date]:
    try:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _money(value: str) -> Optional[Decimal]:
    try:
        return Decimal(value) if value else None
    except InvalidOperation:
        return None


def _el(s: list[str], i: int) -> str:
    return s[i] if len(s) > i else ""


class _Reader:
    def __init__(self, comp: str) -> None:
        self.comp = comp
        self.claims: list[PostedClaim] = []
        self.member: Optional[str] = None  # current 2010BA member id
        self.patient: Optional[str] = None  # current 2010CA patient name
        self.subscriber_birth: Optional[dt.date] = None  # 2010BA DMG
        self.patient_birth: Optional[dt.date] = None  # 2010CA DMG
        self.subscriber_name: Optional[str] = None
        self._in: Optional[str] = None  # the NM1 entity whose loop the reader is in (IL, QC, 2310 providers...)
        self.in_provider_loop = False  # inside a 2300 claim's 2310x provider/facility loop
        self.claim: Optional[PostedClaim] = None
        self.line: Optional[PostedLine] = None

    def segment(self, s: list[str]) -> None:
        tag = s[0]
        if tag == "HL":
            self.claim, self.line = None, None
            level = _el(s, 3)
            if level in ("20", "22"):
                self.member, self.patient = None, None
                self.subscriber_birth, self.patient_birth, self.subscriber_name = None, None, None
            elif level == "23":
                self.patient, self.patient_birth = None, None
            return
        if tag == "NM1" and self.claim is None:
            self._in = _el(s, 1)
        if tag == "NM1" and _el(s, 1) == "IL" and self.claim is None:
            if _el(s, 8) == "MI" or _el(s, 9):
                self.member = _el(s, 9).strip() or None
            self.subscriber_name = " ".join(p for p in (_el(s, 4), _el(s, 3)) if p) or None
            return
        if tag == "NM1" and _el(s, 1) == "QC" and self.claim is None:
            self.patient = " ".join(p for p in (_el(s, 4), _el(s, 3)) if p) or None
            return
        if tag == "DMG" and self.claim is None and _el(s, 1) == "D8":
            if self._in == "IL":
                self.subscriber_birth = _date(_el(s, 2))
            elif self._in == "QC":
                self.patient_birth = _date(_el(s, 2))
            return
        if tag == "NM1" and self.claim is not None:  # 2310x / 2420x provider and facility loops
            self.in_provider_loop = True
            return
        if tag == "CLM":
            self._clm(s)
            return
        if tag in ("SE", "GE", "IEA", "ST"):
            self.claim, self.line = None, None
            return
        if self.claim is None:
            return
        handler = getattr(self, "_" + tag.lower(), None)
        if handler is not None:
            handler(s)

    def _clm(self, s: list[str]) -> None:
        parts = _el(s, 5).split(self.comp)
        freq = parts[2] if len(parts) > 2 and parts[2] else "1"
        self.claim = PostedClaim(claim_id=_el(s, 1), member_id=self.member, frequency=freq, total=_money(_el(s, 2)),
                                 patient_name=self.patient or self.subscriber_name,
                                 patient_birth=self.patient_birth if self.patient else self.subscriber_birth,
                                 index=len(self.claims))
        self.claims.append(self.claim)
        self.line = None
        self.in_provider_loop = False

    def _ref(self, s: list[str]) -> None:
        if self.line is not None or self.in_provider_loop:
            return  # line references (6R) and a provider's secondary ids (2310x REF*1G, G2...) are not claim references
        qual, value = _el(s, 1), _el(s, 2).strip()
        if qual == "F8":
            self.claim.original_ref = value
        elif qual and value:
            self.claim.refs.setdefault(qual, value)

    def _dtp(self, s: list[str]) -> None:
        qual, fmt, value = _el(s, 1), _el(s, 2), _el(s, 3)
        if qual == "472" and self.line is not None:
            self.line.date = _date(value)
        elif qual == "434" and self.line is None:
            start = _date(value)
            end = _date(value.split("-")[1]) if fmt == "RD8" and "-" in value else start
            if start and end:
                self.claim.statement = (start, end)

    def _hi(self, s: list[str]) -> None:
        for comp_el in s[1:]:
            parts = comp_el.split(self.comp)
            if len(parts) >= 2 and parts[0] in ("ABK", "ABF", "BK", "BF"):
                code = parts[1]
                self.claim.diagnoses.append(code[:3] + ("." + code[3:] if len(code) > 3 else ""))

    def _lx(self, s: list[str]) -> None:
        self.line = None
        self.in_provider_loop = False
        self._lx_number = int(_el(s, 1)) if _el(s, 1).isdigit() else 0

    def _units(self, tag: str, value: str) -> int:
        try:
            return int(Decimal(value or "1"))
        except InvalidOperation:
            raise PostedError(f"claim {self.claim.claim_id}: {tag} units {value!r} are not a number") from None

    def _sv1(self, s: list[str]) -> None:
        parts = _el(s, 1).split(self.comp)
        if len(parts) < 2 or not parts[1]:
            raise PostedError(f"claim {self.claim.claim_id}: SV1 without a procedure code")
        self._add(PostedLine(code=parts[1].upper(), modifiers=[m for m in parts[2:6] if m],
                             units=self._units("SV1", _el(s, 4)), charge=_money(_el(s, 2))))

    def _sv2(self, s: list[str]) -> None:
        parts = _el(s, 2).split(self.comp) if _el(s, 2) else []
        code = parts[1].upper() if len(parts) > 1 and parts[1] else None
        self._add(PostedLine(code=code, modifiers=[m for m in parts[2:6] if m] if code else [],
                             units=self._units("SV2", _el(s, 5)), charge=_money(_el(s, 3)), revenue=_el(s, 1) or None))

    def _add(self, line: PostedLine) -> None:
        line.number = getattr(self, "_lx_number", 0) or len(self.claim.lines) + 1
        self.claim.lines.append(line)
        self.line = line

    def _lin(self, s: list[str]) -> None:
        if self.line is not None and _el(s, 2) == "N4":
            self.line.ndc = _el(s, 3)


def read_837(text: str) -> list[PostedClaim]:
    """Every claim of an 837P or 837I interchange, in file order."""
    segs, comp = _segments(text)
    reader = _Reader(comp)
    for s in segs:
        reader.segment(s)
    if not reader.claims:
        raise PostedError("the interchange holds no claim (no CLM segment)")
    return reader.claims


# ---------------------------------------------------------------------------------------------
# replacement chains


def supersession(claims: list[PostedClaim]) -> dict[int, int]:
    """index of a claim -> index of the later claim that replaces or voids it.

    A replacement (7) or void (8) names its original in ``REF*F8``: the original is the claim
    before it whose CLM01 or one of whose claim references equals that value. Without ``REF*F8``
    (some systems leave it out), the original is the latest earlier claim with the same CLM01 and
    member id."""
    out: dict[int, int] = {}
    for c in claims:
        if c.frequency not in ("7", "8"):
            continue
        earlier = [o for o in claims[: c.index] if o.index not in out]
        named = None
        if c.original_ref:
            ref = c.original_ref.upper()
            named = next((o for o in reversed(earlier)
                          if o.claim_id.upper() == ref or ref in (v.upper() for v in o.refs.values())), None)
        if named is None:
            named = next((o for o in reversed(earlier) if o.claim_id == c.claim_id and o.member_id == c.member_id), None)
        if named is not None:
            out[named.index] = c.index
    return out


def latest(claims: list[PostedClaim], index: int, chain: dict[int, int]) -> tuple[PostedClaim, list[PostedClaim]]:
    """The claim that stands for ``claims[index]`` after replacements, and every earlier claim of
    its chain (the ones it superseded, oldest first)."""
    while index in chain:
        index = chain[index]
    back = {v: k for k, v in chain.items()}
    history: list[PostedClaim] = []
    i = index
    while i in back:
        i = back[i]
        history.insert(0, claims[i])
    return claims[index], history


def current_claims(claims: list[PostedClaim]) -> list[tuple[PostedClaim, list[PostedClaim]]]:
    """The claims that stand (no later claim supersedes them), each with its superseded chain."""
    chain = supersession(claims)
    return [latest(claims, c.index, chain) for c in claims if c.index not in chain]
