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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional, Sequence

from .load import InputError, Loaded, parse_document
from .model import Claim, absolute_time
from .formats.x12 import X12Error, parse_837

MAX_EXTENSION = 240  # minutes a stop time is moved at most when searching for a fix


@dataclass
class Posted:
    code: str
    modifiers: list[str]
    units: int


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


@dataclass
class AuditResult:
    encounter: str
    gaps: list[Gap]
    claim: Claim

    @property
    def clean(self) -> bool:
        return not self.gaps

    def to_dict(self) -> dict:
        def gap(g: Gap) -> dict:
            d = {k: v for k, v in g.__dict__.items() if k != "fix"}
            d["fix"] = None if g.fix is None else dict(g.fix.__dict__)
            return d

        return {"encounter": self.encounter, "clean": self.clean, "gaps": [gap(g) for g in self.gaps]}


# ---------------------------------------------------------------------------------------------
# the posted claim


def read_posted(text: str, encounter_id: str, source: str = "") -> list[Posted]:
    """Posted lines from an X12 837 (the claim whose CLM01 is the encounter id, or the only one)
    or from claim JSON."""
    if text.lstrip("\ufeff \r\n\t").startswith("ISA"):
        try:
            claims = parse_837(text)
        except X12Error as exc:
            raise InputError([("(posted)", str(exc))], source) from None
        match = [c for c in claims if c.claim_id == encounter_id.upper() or c.claim_id == encounter_id]
        if not match and len(claims) == 1:
            match = claims
        if not match:
            ids = ", ".join(c.claim_id for c in claims)
            raise InputError([("(posted)", f"no claim with CLM01 = {encounter_id} in the interchange (claims: {ids})")], source)
        return [Posted(ln.code, ln.modifiers, ln.units) for ln in match[0].lines]
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
        out.append(Posted(ln["code"].strip().upper(), [str(m) for m in mods], units))
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


def _search_fix(loaded: Loaded, code: str, want: int, subjects: Sequence[str], solve_kw: dict) -> Optional[Fix]:
    from .solver import code_encounters

    enc = loaded.encounter
    admin_ids = [s for s in subjects if any(a.id == s for a in enc.administrations)]
    if not admin_ids:
        return None
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
        return None
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
    return Fix(subject=aid, field="stop", current=adm.stop, needed=clock, minutes_more=extra, text=text)


def audit(loaded: Loaded, posted: list[Posted], policy: Optional[str] = "medicare", rules: Sequence[str] = (),
          switches: Sequence[str] = (), search_fixes: bool = True) -> AuditResult:
    from .solver import code_encounters

    solve_kw = {"policy": policy, "rules": rules}
    if switches:
        solve_kw["policies"] = None  # set per batch below
    claim = code_encounters([loaded], policy=policy, rules=rules, policies=[tuple(switches)])[0]
    supported = _units_by_code(claim)
    posted_units: dict[str, int] = {}
    posted_mods: dict[str, set[str]] = {}
    for p in posted:
        posted_units[p.code] = posted_units.get(p.code, 0) + p.units
        posted_mods.setdefault(p.code, set()).update(p.modifiers)
    gaps: list[Gap] = []
    codes = list(dict.fromkeys([ln.code for ln in claim.lines] + [p.code for p in posted]))
    for code in codes:
        have, got = supported.get(code, 0), posted_units.get(code, 0)
        per_unit = _per_unit(claim, code)
        lines = [ln for ln in claim.lines if ln.code == code]
        if have > got:
            units = have - got
            gaps.append(Gap(
                kind="missed", code=code, posted_units=got, supported_units=have, units=units,
                reason=" ".join(ln.why.text for ln in lines), rule=lines[0].why.rule,
                subjects=list(dict.fromkeys(r for ln in lines for r in ln.why.from_)),
                dollars_at_asp=None if per_unit is None else f"{(per_unit * units).quantize(Decimal('0.01'))}",
            ))
        elif got > have:
            units = got - have
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
            fix = None
            if search_fixes:
                fix = _search_fix(loaded, code, got, subjects, {"policy": policy, "rules": rules})
            gaps.append(Gap(
                kind="unsupported", code=code, posted_units=got, supported_units=have, units=units,
                reason=reason, rule=rule, subjects=subjects,
                dollars_at_asp=None if per_unit is None else f"{(per_unit * units).quantize(Decimal('0.01'))}",
                fix=fix,
            ))
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
    return AuditResult(encounter=loaded.encounter.id, gaps=gaps, claim=claim)


def audit_table(result: AuditResult) -> str:
    import textwrap

    out = [f"Audit of encounter {result.encounter}: " + ("the posted claim matches the documentation" if result.clean
                                                          else f"{len(result.gaps)} gap(s)")]
    for g in result.gaps:
        out.append("")
        head = {"missed": "MISSED", "unsupported": "UNSUPPORTED", "modifiers": "MODIFIERS"}[g.kind]
        money = f"  ${g.dollars_at_asp} at the ASP limit" if g.dollars_at_asp else ""
        out.append(f"  {head:<12} {g.code:<6} posted {g.posted_units}, supported {g.supported_units}{money}  [{g.rule}]")
        out += textwrap.wrap(g.reason, 96, initial_indent="      ", subsequent_indent="      ")
        if g.fix:
            out += textwrap.wrap("fix: " + g.fix.text, 96, initial_indent="      ", subsequent_indent="           ")
        elif g.kind == "unsupported":
            out.append("      fix: none found by moving a stop time; the charge is not supported by this record.")
    return "\n".join(out) + "\n"


def audit_json(result: AuditResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
