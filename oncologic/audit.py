"""Posted-claim audit: what was billed against what the documentation supports.

``oncologic audit ENCOUNTER --posted CLAIM`` codes the encounter, reads the posted claim (an X12
837P/837I interchange or the claim JSON of the contract) and compares them code by code:

- a **missed** charge: the documentation supports more units of a code than were posted (the
  engine's reason for the line is the reason);
- an **unsupported** charge: more units were posted than the documentation supports (the reason
  is the engine's rejection of that candidate, when it considered one);
- a **modifier** gap: the same code was posted with other modifiers than the engine derives.

Drug lines carry the dollars at the ASP payment limit (``Line.asp_limit``) for the units in the
gap. For an unsupported time-based charge, the audit looks for the smallest documentation fix:
it re-solves the encounter with the stop time of each administration the charge rests on moved
later, minute by minute (all variants in one batch solve), and reports the earliest stop time at
which the engine itself would bill the posted units. No threshold or code number is written here:
the rules decide, the audit only asks them "what if".
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional, Sequence

from .load import InputError, Loaded, parse_document
from .model import Claim, Encounter, absolute_time
from .posted import PostedClaim, PostedError, is_x12, latest, read_837, supersession

MAX_EXTENSION = 240  # minutes a stop time is moved at most when searching for a fix


@dataclass
class Posted:
    code: Optional[str]  # None: a facility line with a revenue code and no procedure code
    modifiers: list[str]
    units: int
    charge: Optional[Decimal] = field(default=None, compare=False)  # the posted line charge (all units)
    revenue: Optional[str] = field(default=None, compare=False)
    line: int = field(default=0, compare=False)


@dataclass
class Fix:
    subject: str
    field: str
    current: Optional[str]
    needed: str
    minutes_more: int
    text: str


@dataclass
class Gap:
    kind: str  # missed | unsupported | modifiers
    code: str
    posted_units: int
    supported_units: int
    units: int
    reason: str
    rule: str
    subjects: list[str]
    dollars_at_asp: Optional[str] = None
    fix: Optional[Fix] = None
    posted_modifiers: list[str] = field(default_factory=list)
    supported_modifiers: list[str] = field(default_factory=list)
    posted_charge: Optional[str] = None  # the posted charge for the units in the gap (unsupported)
    no_fix: Optional[str] = None  # why no documentation fix was found (unsupported, fix is None)

    @property
    def value(self) -> Optional[Decimal]:
        """The dollar value of the gap: at the ASP limit for a drug, else the posted charge."""
        if self.dollars_at_asp is not None:
            return Decimal(self.dollars_at_asp)
        return None if self.posted_charge is None else Decimal(self.posted_charge)

    @property
    def value_basis(self) -> Optional[str]:
        if self.dollars_at_asp is not None:
            return "ASP payment limit"
        return None if self.posted_charge is None else "posted charge"


@dataclass
class Selection:
    """Which posted claim was audited, and how it was found."""

    claim_id: Optional[str]
    note: str  # how it was selected, in words
    mismatch: Optional[str] = None  # the claim is for another patient or date: nothing compared
    superseded: list[str] = field(default_factory=list)  # claim descriptions it replaced
    voided: bool = False


@dataclass
class AuditResult:
    encounter: str
    gaps: list[Gap]
    claim: Claim
    selection: Optional[Selection] = None
    not_compared: list[Posted] = field(default_factory=list)

    @property
    def audited(self) -> bool:
        return self.selection is None or self.selection.mismatch is None

    @property
    def clean(self) -> bool:
        return self.audited and not self.gaps

    def to_dict(self) -> dict:
        def gap(g: Gap) -> dict:
            d = {k: v for k, v in g.__dict__.items() if k != "fix"}
            d["fix"] = None if g.fix is None else dict(g.fix.__dict__)
            d["value"] = None if g.value is None else f"{g.value:.2f}"
            d["value_basis"] = g.value_basis
            return d

        out: dict[str, Any] = {"encounter": self.encounter, "audited": self.audited, "clean": self.clean}
        if self.selection is not None:
            out["posted_claim"] = dict(self.selection.__dict__)
        out["gaps"] = [gap(g) for g in self.gaps]
        out["not_compared"] = [_not_compared_dict(p) for p in self.not_compared]
        return out


def _not_compared_dict(p: Posted) -> dict:
    return {"line": p.line, "revenue_code": p.revenue, "units": p.units,
            "charge": None if p.charge is None else f"{p.charge:.2f}",
            "reason": "a revenue code without a procedure code: nothing to compare with the engine's lines"}


# ---------------------------------------------------------------------------------------------
# the posted claim


def _norm_member(value: Optional[str]) -> str:
    return re.sub(r"[^0-9A-Z]", "", (value or "").upper())


def _lines_of(pc: PostedClaim) -> list[Posted]:
    return [Posted(ln.code, ln.modifiers, ln.units, ln.charge, ln.revenue, ln.number) for ln in pc.lines]


def select_claim(claims: list[PostedClaim], enc: Encounter, claim_id: Optional[str] = None) -> tuple[PostedClaim, Selection]:
    """The posted claim that stands for the encounter: by claim id (CLM01) when given, else by
    the encounter's member id and date of service, else the claim whose CLM01 is the encounter
    id, else the only claim. A replacement or void that supersedes it is followed to the latest
    claim. Raises InputError, naming the claims found, when none or several fit."""
    chain = supersession(claims)
    found = "; ".join(c.describe() for c in claims)
    member, day = _norm_member(enc.payer.member_id if enc.payer else None), enc.date_of_service
    if claim_id is not None:
        picked = [c for c in claims if c.claim_id.upper() == claim_id.upper()]
        if not picked:
            raise InputError([("--claim", f"no claim with CLM01 = {claim_id} in the file; it holds: {found}")])
        start, how = picked[0], f"claim id {claim_id}"
    else:
        standing = [c for c in claims if c.index not in chain]
        fits = [c for c in standing if member and _norm_member(c.member_id) == member and c.covers(day)]
        if len(fits) > 1:  # one member id for several people (a subscriber and a dependent): the birth date tells them apart
            fits = [c for c in fits if _same_patient(c, enc) is not False] or fits
        if len(fits) > 1:
            fits = [c for c in fits if c.claim_id.upper() == enc.id.upper()] or fits
        if len(fits) > 1:
            raise InputError([("(posted)", f"{len(fits)} claims for member {enc.payer.member_id} on {day}: "
                                           + "; ".join(c.describe() for c in fits) + " (choose one with --claim)")])
        if fits:
            start, how = fits[0], f"member id {enc.payer.member_id} and date of service {day}"
        else:
            by_id = [c for c in claims if c.claim_id.upper() == enc.id.upper()]
            if by_id:
                start, how = by_id[0], f"claim id = encounter id {enc.id}"
            elif len(claims) == 1:
                start, how = claims[0], "the only claim in the file"
            else:
                who = f"member {enc.payer.member_id}" if member else "the encounter (no member id)"
                raise InputError([("(posted)", f"no claim for {who} on {day} in the file; it holds: {found}")])
    cur, superseded = latest(claims, start.index, chain)
    sel = Selection(claim_id=cur.claim_id, note=f"posted claim {cur.describe()}, found by {how}",
                    superseded=[c.describe() for c in superseded], voided=cur.frequency == "8")
    sel.note += supersession_note(cur, superseded)
    sel.mismatch = _mismatch(cur, enc, member)
    return cur, sel


def supersession_note(cur: PostedClaim, superseded: list[PostedClaim]) -> str:
    """How the audited claim stands to the claims it replaced or voided, in words."""
    if superseded:
        verb = "voids" if cur.frequency == "8" else "replaces"
        return (f"; it {verb} " + ", ".join(c.describe() for c in superseded)
                + (" (audited as voided: nothing stands billed)" if cur.frequency == "8" else "; the latest claim is audited"))
    if cur.frequency in ("7", "8"):
        what = "replaces" if cur.frequency == "7" else "voids"
        ref = f" {cur.original_ref}" if cur.original_ref else " (no REF*F8 given)"
        return f"; it {what} the payer's claim{ref}, which is not in this file" + (
            " (audited as voided: nothing stands billed)" if cur.frequency == "8" else "")
    return ""


def _same_patient(pc: PostedClaim, enc: Encounter) -> Optional[bool]:
    """Whether the posted claim's patient (its DMG birth date) is the encounter's patient; None
    when either side does not say."""
    pt = getattr(enc, "patient", None)
    if pt is None or pc.patient_birth is None:
        return None
    return pc.patient_birth == pt.birth_date


def _mismatch(pc: PostedClaim, enc: Encounter, member: str) -> Optional[str]:
    problems = []
    if member and pc.member_id and _norm_member(pc.member_id) != member:
        problems.append(f"it is for member {pc.member_id}, the encounter for member {enc.payer.member_id}")
    if _same_patient(pc, enc) is False:
        who = f" ({pc.patient_name})" if pc.patient_name else ""
        problems.append(f"its patient{who} was born {pc.patient_birth}, the encounter's patient on {enc.patient.birth_date}")
    if pc.dates and not pc.covers(enc.date_of_service):
        days = ", ".join(d.isoformat() for d in pc.dates)
        problems.append(f"its date(s) of service {days} do not include the encounter's {enc.date_of_service}")
    if not problems:
        return None
    return (f"posted claim {pc.claim_id} does not belong to encounter {enc.id}: " + "; ".join(problems)
            + ". Nothing was compared (comparing them would list false gaps).")


def read_posted_claim(text: str, enc: Encounter, source: str = "", claim_id: Optional[str] = None
                      ) -> tuple[list[Posted], Optional[Selection]]:
    """The posted lines for the encounter (X12 837 or claim JSON) and, for an 837, which claim."""
    if is_x12(text):
        try:
            claims = read_837(text)
        except PostedError as exc:
            raise InputError([("(posted)", str(exc))], source) from None
        try:
            pc, sel = select_claim(claims, enc, claim_id)
        except InputError as exc:
            raise InputError(exc.problems, source) from None
        return ([] if sel.voided else _lines_of(pc)), sel
    return _read_json_lines(text, source), None


def read_posted(text: str, encounter_id: str, source: str = "") -> list[Posted]:
    """Posted lines from an X12 837 (the claim whose CLM01 is the encounter id, or the only one)
    or from claim JSON."""
    if is_x12(text):
        try:
            claims = read_837(text)
        except PostedError as exc:
            raise InputError([("(posted)", str(exc))], source) from None
        match = [c for c in claims if c.claim_id.upper() == encounter_id.upper()] or (claims if len(claims) == 1 else [])
        if not match:
            ids = ", ".join(c.claim_id for c in claims)
            raise InputError([("(posted)", f"no claim with CLM01 = {encounter_id} in the interchange (claims: {ids})")], source)
        return _lines_of(match[0])
    return _read_json_lines(text, source)


def _read_json_lines(text: str, source: str) -> list[Posted]:
    data = parse_document(text, source)
    if not isinstance(data, dict) or not isinstance(data.get("lines"), list):
        raise InputError([("(posted)", "neither an X12 837 nor claim JSON with a lines list")], source)
    out = []
    for i, ln in enumerate(data["lines"]):
        if not isinstance(ln, dict) or not isinstance(ln.get("code"), str):
            raise InputError([(f"lines[{i}].code", "required field is missing")], source)
        units = ln.get("units", 1)
        if not isinstance(units, int) or isinstance(units, bool) or units < 0:
            raise InputError([(f"lines[{i}].units", "a whole number of units")], source)
        mods = ln.get("modifiers") or []
        if not isinstance(mods, list):
            raise InputError([(f"lines[{i}].modifiers", "a list of modifiers")], source)
        out.append(Posted(ln["code"].strip().upper(), [str(m) for m in mods], units, line=i + 1))
    return out


# ---------------------------------------------------------------------------------------------
# comparison


def _units_by_code(claim: Claim) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in claim.lines:
        out[ln.code] = out.get(ln.code, 0) + ln.units
    return out


def _per_unit(claim: Claim, code: str) -> Optional[Decimal]:
    for ln in claim.lines:
        if ln.code == code and ln.asp_limit is not None:
            return Decimal(ln.asp_limit.per_unit)
    return None


def _stop_variants(loaded: Loaded, admin_id: str) -> list[tuple[int, Any]]:
    """Encounters identical to the documented one except for a later stop time of ``admin_id``
    (1..MAX_EXTENSION minutes; from the start when the record has no stop)."""
    enc = loaded.encounter
    idx = next(i for i, a in enumerate(enc.administrations) if a.id == admin_id)
    adm = enc.administrations[idx]
    base = absolute_time(enc.date_of_service, adm.stop or adm.start)
    out = []
    for extra in range(1, MAX_EXTENSION + 1):
        new_stop = (base + dt.timedelta(minutes=extra)).isoformat(timespec="minutes")
        variant = enc.model_copy(deep=True)
        variant.administrations[idx] = adm.model_copy(update={"stop": new_stop})
        out.append((extra, Loaded(variant, [], dict(loaded.resolved))))
    return out


def _search_fix(loaded: Loaded, code: str, want: int, subjects: Sequence[str], solve_kw: dict) -> tuple[Optional[Fix], str]:
    """The smallest later stop time that makes the rules bill ``want`` units of ``code``, or None
    and the reason none was found."""
    from .solver import code_encounters

    enc = loaded.encounter
    admin_ids = [s for s in subjects if any(a.id == s for a in enc.administrations)]
    if not admin_ids:
        if subjects:
            return None, (f"the charge rests on {', '.join(subjects)}, none of them an administration with a stop time; "
                          "the fix search only moves stop times, so it cannot help here.")
        return None, (f"the rules never considered {code} for anything documented in this record (no line, no rejected "
                      "candidate), so no stop time is tied to it: nothing in the record could be corrected to support it.")
    batch: list[tuple[str, int, Loaded]] = []
    for aid in admin_ids:
        for extra, variant in _stop_variants(loaded, aid):
            batch.append((aid, extra, variant))
    claims = code_encounters([v for _a, _e, v in batch], **solve_kw)
    best: Optional[tuple[int, str]] = None
    for (aid, extra, _v), claim in zip(batch, claims):
        if _units_by_code(claim).get(code, 0) >= want and (best is None or extra < best[0]):
            best = (extra, aid)
    if best is None:
        return None, (f"moving the stop time of {', '.join(admin_ids)} up to {MAX_EXTENSION} minutes later still does not "
                      f"support {want} unit(s) of {code}: what rejects it is not the documented time; the charge is not "
                      "supported by this record.")
    extra, aid = best
    adm = next(a for a in enc.administrations if a.id == aid)
    base = absolute_time(enc.date_of_service, adm.stop or adm.start)
    needed = base + dt.timedelta(minutes=extra)
    clock = needed.strftime("%H:%M") if needed.date() == enc.date_of_service else needed.isoformat(timespec="minutes")
    if adm.stop:
        text = (f"{want} unit(s) of {code} would be supported only if the record showed {aid} running until {clock} "
                f"({extra} minute(s) after the documented stop {adm.stop}); if it did, correct the stop time, otherwise the charge must come off.")
    else:
        text = f"{aid} has no stop time; a documented stop time of {clock} or later would support {want} unit(s) of {code}."
    return Fix(subject=aid, field="stop", current=adm.stop, needed=clock, minutes_more=extra, text=text), ""


def _money(value: Optional[Decimal]) -> Optional[str]:
    return None if value is None else f"{value.quantize(Decimal('0.01'))}"


def _posted_charge_per_unit(posted: list[Posted], code: str) -> Optional[Decimal]:
    total, units = Decimal(0), 0
    for p in posted:
        if p.code == code and p.charge is not None:
            total += p.charge
            units += p.units
    return total / units if units else None


def _missed(code: str, have: int, got: int, lines: list, per_unit: Optional[Decimal]) -> Gap:
    units = have - got
    return Gap(kind="missed", code=code, posted_units=got, supported_units=have, units=units,
               reason=" ".join(ln.why.text for ln in lines), rule=lines[0].why.rule,
               subjects=list(dict.fromkeys(r for ln in lines for r in ln.why.from_)),
               dollars_at_asp=None if per_unit is None else _money(per_unit * units))


def _unsupported(claim: Claim, code: str, have: int, got: int, lines: list) -> Gap:
    rejected = [nb for nb in claim.not_billed if nb.candidate == code]
    if rejected:
        reason = " ".join(nb.why.text for nb in rejected)
        rule = rejected[0].why.rule
        subjects = list(dict.fromkeys(nb.subject for nb in rejected))
    elif lines:
        reason = f"the documentation supports {have} unit(s) of {code}: " + " ".join(ln.why.text for ln in lines)
        rule = lines[0].why.rule
        subjects = list(dict.fromkeys(r for ln in lines for r in ln.why.from_))
    else:
        reason = f"no rule bills {code} for this encounter: nothing documented supports it."
        rule = "audit.no_support"
        subjects = []
    related = [f for f in claim.findings if f.subject in subjects or code in f.message]
    if related:
        reason += " " + " ".join(f"[{f.code}] {f.message}" for f in related)
        subjects += [f.subject for f in related if f.subject not in subjects]
    return Gap(kind="unsupported", code=code, posted_units=got, supported_units=have, units=got - have,
               reason=reason, rule=rule, subjects=subjects)


def compare(loaded: Loaded, claim: Claim, posted: list[Posted], search_fixes: bool = True,
            solve_kw: Optional[dict] = None) -> list[Gap]:
    """The gaps between the engine's claim for the encounter and the posted lines (lines without
    a procedure code are left out: see :attr:`AuditResult.not_compared`)."""
    posted = [p for p in posted if p.code]
    supported = _units_by_code(claim)
    posted_units: dict[str, int] = {}
    posted_mods: dict[str, set[str]] = {}
    for p in posted:
        posted_units[p.code] = posted_units.get(p.code, 0) + p.units
        posted_mods.setdefault(p.code, set()).update(p.modifiers)
    gaps: list[Gap] = []
    for code in dict.fromkeys([ln.code for ln in claim.lines] + [p.code for p in posted]):
        have, got = supported.get(code, 0), posted_units.get(code, 0)
        per_unit = _per_unit(claim, code)
        lines = [ln for ln in claim.lines if ln.code == code]
        if have > got:
            gaps.append(_missed(code, have, got, lines, per_unit))
        elif got > have:
            g = _unsupported(claim, code, have, got, lines)
            g.dollars_at_asp = None if per_unit is None else _money(per_unit * g.units)
            charge = _posted_charge_per_unit(posted, code)
            g.posted_charge = None if charge is None else _money(charge * g.units)
            if search_fixes:
                g.fix, g.no_fix = _search_fix(loaded, code, got, g.subjects, solve_kw or {})
            else:
                g.no_fix = "not searched (--no-fixes)."
            g.no_fix = g.no_fix or None
            gaps.append(g)
        elif have and code in posted_mods:
            want_mods = sorted({m for ln in lines for m in ln.modifiers})
            got_mods = sorted(posted_mods[code])
            if want_mods != got_mods:
                gaps.append(Gap(
                    kind="modifiers", code=code, posted_units=got, supported_units=have, units=0,
                    reason=f"posted with modifiers [{' '.join(got_mods)}]; the engine derives [{' '.join(want_mods)}]. "
                           + " ".join(ln.why.text for ln in lines),
                    rule=lines[0].why.rule, subjects=list(dict.fromkeys(r for ln in lines for r in ln.why.from_)),
                    posted_modifiers=got_mods, supported_modifiers=want_mods,
                ))
    return gaps


def audit(loaded: Loaded, posted: list[Posted], policy: Optional[str] = "medicare", rules: Sequence[str] = (),
          switches: Sequence[str] = (), search_fixes: bool = True, selection: Optional[Selection] = None,
          claim: Optional[Claim] = None) -> AuditResult:
    """Audit one encounter against its posted lines. With a ``selection`` whose claim belongs to
    another patient or date, nothing is compared and the result says so."""
    from .solver import code_encounters

    if claim is None:
        claim = code_encounters([loaded], policy=policy, rules=rules, policies=[tuple(switches)])[0]
    result = AuditResult(encounter=loaded.encounter.id, gaps=[], claim=claim, selection=selection,
                         not_compared=[p for p in posted if not p.code])
    if selection is not None and selection.mismatch:
        return result
    solve_kw = {"policy": policy, "rules": rules, "policies": None}
    if switches:
        solve_kw["policies"] = [tuple(switches)] * (MAX_EXTENSION * len(loaded.encounter.administrations))
    result.gaps = compare(loaded, claim, posted, search_fixes, solve_kw)
    return result


def audit_table(result: AuditResult) -> str:
    import textwrap

    sel = result.selection
    if not result.audited:
        out = [f"Audit of encounter {result.encounter}: not audited"]
        out += textwrap.wrap(sel.mismatch, 96, initial_indent="  ", subsequent_indent="  ")
        out += textwrap.wrap(sel.note, 96, initial_indent="  ", subsequent_indent="  ")
        return "\n".join(out) + "\n"
    out = [f"Audit of encounter {result.encounter}: " + ("the posted claim matches the documentation" if result.clean
                                                          else f"{len(result.gaps)} gap(s)")]
    if sel is not None:
        out += textwrap.wrap(sel.note, 96, initial_indent="  ", subsequent_indent="  ")
    for g in result.gaps:
        out.append("")
        head = {"missed": "MISSED", "unsupported": "UNSUPPORTED", "modifiers": "MODIFIERS"}[g.kind]
        money = f"  ${g.value:.2f} ({g.value_basis})" if g.value is not None else ""
        out.append(f"  {head:<12} {g.code:<6} posted {g.posted_units}, supported {g.supported_units}{money}  [{g.rule}]")
        out += textwrap.wrap(g.reason, 96, initial_indent="      ", subsequent_indent="      ")
        if g.fix:
            out += textwrap.wrap("fix: " + g.fix.text, 96, initial_indent="      ", subsequent_indent="           ")
        elif g.kind == "unsupported":
            out += textwrap.wrap("fix: none found: " + (g.no_fix or "the charge is not supported by this record."), 96,
                                 initial_indent="      ", subsequent_indent="           ")
    for p in result.not_compared:
        charge = f", charge ${p.charge:.2f}" if p.charge is not None else ""
        out.append("")
        out.append(f"  NOT COMPARED line {p.line}: revenue code {p.revenue or '?'} without a procedure code "
                   f"({p.units} unit(s){charge}); the engine codes procedures, so there is nothing to compare it with")
    return "\n".join(out) + "\n"


def audit_json(result: AuditResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
