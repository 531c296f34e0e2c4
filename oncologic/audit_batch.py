"""Audit a day (or a month) at once: a folder of encounters against a posted 837 batch.

Each encounter is matched to the posted claim that stands for it (after replacements and voids)
by the member id and the date of service, the way a billing office pairs a chart with its claim.
The encounters are coded in one solve; each matched pair is compared as in
:func:`oncologic.audit.compare`. The summary says what could not be paired (encounters with no
posted claim, posted claims with no encounter), counts missed and unsupported charges and their
dollar value, and groups the money by the rule behind each gap ("patterns of error": which rules
account for most of the money).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional, Sequence

from .audit import AuditResult, Selection, _lines_of, _norm_member, _same_patient, audit, supersession_note
from .load import InputError, Loaded, parse_document, validate
from .posted import PostedClaim, current_claims


@dataclass
class Pattern:
    rule: str
    kind: str
    gaps: int
    value: Decimal
    codes: list[str]


@dataclass
class BatchAudit:
    results: list[AuditResult]
    unmatched_encounters: list[str]  # encounter ids without a posted claim
    unmatched_claims: list[str]  # posted claims (described) without an encounter
    ambiguous: list[str] = field(default_factory=list)  # encounter id: several claims fit

    def totals(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for kind in ("missed", "unsupported", "modifiers"):
            gaps = [g for r in self.results for g in r.gaps if g.kind == kind]
            value = sum((g.value or Decimal(0) for g in gaps), Decimal(0))
            out[kind] = {"gaps": len(gaps), "units": sum(g.units for g in gaps), "value": f"{value:.2f}",
                         "without_value": sum(1 for g in gaps if g.value is None and kind != "modifiers")}
        return out

    def patterns(self) -> list[Pattern]:
        by: dict[tuple[str, str], Pattern] = {}
        for r in self.results:
            for g in r.gaps:
                p = by.setdefault((g.rule, g.kind), Pattern(g.rule, g.kind, 0, Decimal(0), []))
                p.gaps += 1
                p.value += g.value or Decimal(0)
                if g.code not in p.codes:
                    p.codes.append(g.code)
        return sorted(by.values(), key=lambda p: (-p.value, -p.gaps, p.rule))

    def to_dict(self) -> dict:
        return {
            "encounters": len(self.results) + len(self.unmatched_encounters) + len(self.ambiguous),
            "audited": sum(1 for r in self.results if r.audited),
            "clean": sum(1 for r in self.results if r.clean),
            "unmatched_encounters": self.unmatched_encounters,
            "ambiguous_encounters": self.ambiguous,
            "unmatched_claims": self.unmatched_claims,
            "totals": self.totals(),
            "patterns": [{"rule": p.rule, "kind": p.kind, "gaps": p.gaps, "value": f"{p.value:.2f}", "codes": p.codes}
                         for p in self.patterns()],
            "results": [r.to_dict() for r in self.results],
        }


def load_encounters(source: str) -> list[Loaded]:
    """The encounters of a folder (``*.json``, ``*.yaml``, ``*.yml``) or a JSON Lines file."""
    from .batch import BatchError, iter_records

    out, problems = [], []
    try:
        for _rec, name, text in iter_records(source):
            try:
                if text.startswith("\x00"):
                    raise InputError([("(file)", text[1:])], name)
                out.append(validate(parse_document(text, name), name))
            except InputError as exc:
                problems += [(f"{exc.source or name}: {p}", m) for p, m in exc.problems]
    except BatchError as exc:
        raise InputError([("(input)", str(exc))], source) from None
    if problems:
        raise InputError(problems, source)
    if not out:
        raise InputError([("(input)", "no encounter found")], source)
    return out


def _pair(encounters: Sequence[Loaded], claims: list[PostedClaim]):
    standing = current_claims(claims)
    used: set[int] = set()
    pairs, unmatched, ambiguous = [], [], []
    for loaded in encounters:
        enc = loaded.encounter
        member = _norm_member(enc.payer.member_id if enc.payer else None)
        fits = [(c, h) for c, h in standing if member and _norm_member(c.member_id) == member and c.covers(enc.date_of_service)]
        if len(fits) > 1:  # a subscriber and a dependent share the member id: the birth date tells them apart
            fits = [(c, h) for c, h in fits if _same_patient(c, enc) is not False] or fits
        if len(fits) > 1:
            fits = [(c, h) for c, h in fits if c.claim_id.upper() == enc.id.upper()] or fits
        if not fits:
            unmatched.append(enc.id)
        elif len(fits) > 1:
            ambiguous.append(f"{enc.id}: " + "; ".join(c.describe() for c, _h in fits))
            used.update(c.index for c, _h in fits)
        else:
            c, history = fits[0]
            used.add(c.index)
            pairs.append((loaded, c, history))
    unclaimed = [c.describe() for c, _h in standing if c.index not in used]
    return pairs, unmatched, ambiguous, unclaimed


def audit_batch(encounters: Sequence[Loaded], claims: list[PostedClaim], policy: Optional[str] = "medicare",
                rules: Sequence[str] = (), search_fixes: bool = True) -> BatchAudit:
    from .solver import code_encounters

    pairs, unmatched, ambiguous, unclaimed = _pair(encounters, claims)
    coded = code_encounters([p[0] for p in pairs], policy=policy, rules=rules) if pairs else []
    results = []
    for (loaded, pc, history), claim in zip(pairs, coded):
        enc = loaded.encounter
        sel = Selection(claim_id=pc.claim_id, voided=pc.frequency == "8",
                        note=f"posted claim {pc.describe()}, found by member id {enc.payer.member_id} and date of service "
                             f"{enc.date_of_service}", superseded=[h.describe() for h in history])
        sel.note += supersession_note(pc, history)
        posted = [] if sel.voided else _lines_of(pc)
        results.append(audit(loaded, posted, policy=policy, rules=rules, search_fixes=search_fixes, selection=sel, claim=claim))
    return BatchAudit(results=results, unmatched_encounters=unmatched, unmatched_claims=unclaimed, ambiguous=ambiguous)


def batch_table(b: BatchAudit) -> str:
    d = b.to_dict()
    t = d["totals"]
    out = [f"Audit of {d['encounters']} encounter(s) against the posted batch: {d['audited']} paired, {d['clean']} clean",
           f"  missed charges:      {t['missed']['gaps']:>4} gap(s), {t['missed']['units']} unit(s), ${t['missed']['value']}",
           f"  unsupported charges: {t['unsupported']['gaps']:>4} gap(s), {t['unsupported']['units']} unit(s), ${t['unsupported']['value']}",
           f"  modifier gaps:       {t['modifiers']['gaps']:>4}"]
    skipped = [p for r in b.results for p in r.not_compared]
    if skipped:
        value = sum((p.charge or Decimal(0) for p in skipped), Decimal(0))
        out.append(f"  not compared:        {len(skipped):>4} line(s) with a revenue code and no procedure code, ${value:.2f} posted")
    without = t["missed"]["without_value"] + t["unsupported"]["without_value"]
    if without:
        out.append(f"  ({without} gap(s) carry no dollar value: not a drug with an ASP limit and no posted charge)")
    for label, items in (("encounters with no posted claim", b.unmatched_encounters),
                         ("encounters with several posted claims", b.ambiguous),
                         ("posted claims with no encounter", b.unmatched_claims)):
        if items:
            out.append(f"  {label}: " + "; ".join(items))
    if d["patterns"]:
        out += ["", "Patterns of error (by the rule behind each gap, most money first):"]
        for p in d["patterns"]:
            out.append(f"  ${p['value']:>10}  {p['gaps']:>3} x {p['kind']:<11} {p['rule']}  ({', '.join(p['codes'])})")
    from .audit import audit_table

    for r in b.results:
        if r.clean:
            continue
        out += ["", *audit_table(r).rstrip("\n").split("\n")]
    return "\n".join(out) + "\n"


def batch_json(b: BatchAudit) -> str:
    return json.dumps(b.to_dict(), indent=2, ensure_ascii=False) + "\n"
