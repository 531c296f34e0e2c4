"""Encounters -> input facts, as plain Python values (the engine turns them into clingo symbols).

No user string is ever pasted into program text: each fact is ``(predicate, args)`` where an
argument is an ``int``, a ``str`` (becomes a clingo *string*), a :class:`Const` (a constant
from a closed set the model already validated, e.g. a route) or an :class:`Fn` term.

Numbering is batch-first: encounter ``E`` is 1..N in the batch; administrations are numbered
1..n in a canonical order (start, stop, route, contents, id) so that the order of the input
list never changes a code; drugs keep their position in the bag; access sites are numbered by
name. Times are integer minutes from the encounter's first start; amounts are integers in a
fixed small unit (mcg, ul, unit, uci).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Union

from .load import InputError, Loaded, fmt_path
from .model import Amount, Encounter, absolute_time


class Const(NamedTuple):
    name: str


class Fn(NamedTuple):
    name: str
    args: tuple


Arg = Union[int, str, Const, Fn]
Fact = tuple[str, tuple]

# input unit -> (dimension, multiplier to the small unit)
UNIT_SCALE: dict[str, tuple[str, int]] = {
    "mg": ("mcg", 1000),
    "mcg": ("mcg", 1),
    "g": ("mcg", 1_000_000),
    "mL": ("ul", 1000),
    "units": ("unit", 1),
    "mCi": ("uci", 1000),
    "uCi": ("uci", 1),
}
MAX_INT = 2**31 - 1


def scaled(amount: Amount, path: tuple) -> tuple[int, str]:
    """An input amount as (integer in the small unit, dimension); exact or an InputError."""
    dim, mult = UNIT_SCALE[amount.unit]
    value = amount.value * mult
    if value != value.to_integral_value():
        raise InputError([(fmt_path(path), f"{amount.value} {amount.unit} is finer than the engine's precision (1 {dim})")])
    out = int(value)
    if out > MAX_INT:
        raise InputError([(fmt_path(path), f"{amount.value} {amount.unit} is too large")])
    return out, dim


def yyyymmdd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


@dataclass
class Context:
    """What Python needs to turn the encounter's integer ids back into the input's names."""

    encounter: Encounter
    number: int
    origin: dt.datetime  # minute 0
    admin_index: dict[int, int] = field(default_factory=dict)  # A -> position in input list
    admin_minutes: dict[int, tuple[int, Optional[int]]] = field(default_factory=dict)
    access_names: dict[int, str] = field(default_factory=dict)
    drug_codes: dict[tuple[int, int], Optional[str]] = field(default_factory=dict)
    policies: tuple[str, ...] = ()
    formulary: dict[tuple[int, int], str] = field(default_factory=dict)  # (A, D) -> "N (system code)"

    # -- references back to the input ------------------------------------------------------
    def admin(self, a: int):
        return self.encounter.administrations[self.admin_index[a]]

    def ref(self, term: Any) -> str:
        """The input id of a subject/reference term (see encodings/interface.lp)."""
        if isinstance(term, bool):
            return str(term)
        if isinstance(term, int):
            return self.admin(term).id
        if isinstance(term, Const):
            return term.name
        if isinstance(term, Fn):
            if term.name == "d":
                a, d = term.args
                return f"{self.admin(a).id}.drugs[{d - 1}]"
            if term.name == "fm" and len(term.args) == 2:
                a, d = term.args
                row = self.formulary.get((a, d))
                return f"site formulary row {row}" if row else "site formulary"
            if term.name == "na" and len(term.args) == 1:
                return self.encounter.not_administered[term.args[0] - 1].id
            names = {"s": "services", "dx": "diagnoses", "auth": "authorizations", "ev": "evidence"}
            if term.name in names and len(term.args) == 1:
                return f"{names[term.name]}[{term.args[0] - 1}]"
            return f"{term.name}({','.join(self.ref(x) if isinstance(x, (Fn, Const)) else str(x) for x in term.args)})"
        return str(term)

    def date_of(self, term: Any) -> dt.date:
        """The calendar date of the service a reference points at (for lines after midnight)."""
        a = None
        if isinstance(term, int) and not isinstance(term, bool):
            a = term
        elif isinstance(term, Fn) and term.name == "d":
            a = term.args[0]
        if a is None or a not in self.admin_minutes:
            return self.encounter.date_of_service
        start = self.admin_minutes[a][0]
        return (self.origin + dt.timedelta(minutes=start)).date()

    def clock(self, minutes: int) -> str:
        moment = self.origin + dt.timedelta(minutes=minutes)
        text = moment.strftime("%H:%M")
        days = (moment.date() - self.encounter.date_of_service).days
        return text if days == 0 else f"{text} (+{days}d)"


def _canonical_order(enc: Encounter) -> list[int]:
    def key(i: int):
        adm = enc.administrations[i]
        start = absolute_time(enc.date_of_service, adm.start)
        stop = absolute_time(enc.date_of_service, adm.stop) if adm.stop else dt.datetime.max
        contents = tuple((d.hcpcs or "", d.ndc or "", (d.name or "").lower()) for d in adm.drugs)
        return (start, stop, adm.route, contents, adm.access, adm.id)

    return sorted(range(len(enc.administrations)), key=key)


def _source_facts(add, ctx: "Context", loaded: Loaded, e: int, a: int, d: int, idx: int, drug) -> None:
    """What the record said about a drug beyond the billing codes: its own code, the formulary
    row that mapped it, how its dose was derived."""
    if drug.code is not None:
        add(("drug_source_code", (e, a, d, drug.code.system, drug.code.code)))
    row = loaded.formulary.get((idx, d - 1))
    if row is not None:
        add(("drug_formulary", (e, a, d, row.row, f"{row.system} {row.code}")))
        ctx.formulary[(a, d)] = f"{row.row} ({row.system} {row.code})"
    if drug.dose_basis:
        add(("dose_basis", (e, a, d, drug.dose_basis)))


def _payer_plans(site: Any, name: str) -> list[str]:
    """The plan names of the site configuration's [payers] entries for a payer name: the entry
    of the name itself (exact, then ignoring case), or the name when it is an entry's plan (a
    FHIR bundle's payer is named by its plan, oncologic.formats.fhir_parts)."""
    if site is None or not getattr(site, "payers", None):
        return []
    entry = site.payer(name)
    if entry is not None and entry.plan:
        return [entry.plan]
    return sorted({p.plan for p in site.payers.values() if p.plan and p.plan == name})


def encounter_facts(loaded: Loaded, e: int, policies: tuple[str, ...] = ()) -> tuple[list[Fact], Context]:
    """The input facts of one encounter numbered ``e`` in its batch."""
    enc = loaded.encounter
    starts = [absolute_time(enc.date_of_service, a.start) for a in enc.administrations]
    origin = min(starts) if starts else dt.datetime.combine(enc.date_of_service, dt.time())
    ctx = Context(enc, e, origin, policies=policies)
    out: list[Fact] = []
    add = out.append

    add(("encounter", (e,)))
    add(("setting", (e, Const(enc.setting))))
    add(("dos", (e, yyyymmdd(enc.date_of_service))))
    if enc.payer is not None:
        add(("payer", (e,)))
        if enc.payer.type is not None:
            add(("payer_type", (e, Const(enc.payer.type))))
        if enc.payer.name:
            # the payer by name and plan (a policy for one payer keys on these, not on the type)
            add(("payer_name", (e, enc.payer.name)))
            for plan in _payer_plans(getattr(loaded, "site", None), enc.payer.name):
                add(("payer_plan", (e, plan)))
        if enc.payer.member_id:
            add(("member_id", (e,)))
        if enc.payer.coverage_start or enc.payer.coverage_end:
            lo = yyyymmdd(enc.payer.coverage_start) if enc.payer.coverage_start else 0
            hi = yyyymmdd(enc.payer.coverage_end) if enc.payer.coverage_end else 99991231
            add(("coverage", (e, lo, hi)))
    for i, code in enumerate(enc.diagnoses, start=1):
        add(("diagnosis", (e, i, code)))
    for name in policies:
        add(("policy", (e, Const(name))))

    access_ids = {name: n for n, name in enumerate(sorted({a.access for a in enc.administrations}), start=1)}
    ctx.access_names = {n: name for name, n in access_ids.items()}

    # substance identity within the encounter: same code and same (lower-cased) name
    substance_ids: dict[tuple[str, str], int] = {}

    for a, idx in enumerate(_canonical_order(enc), start=1):
        adm = enc.administrations[idx]
        ctx.admin_index[a] = idx
        where = ("administrations", idx)
        t0 = int((starts[idx] - origin).total_seconds() // 60)
        t1 = None
        add(("admin", (e, a)))
        add(("route", (e, a, Const(adm.route))))
        add(("access", (e, a, access_ids[adm.access])))
        add(("start", (e, a, t0)))
        add(("day", (e, a, (starts[idx].date() - enc.date_of_service).days)))
        if adm.stop is not None:
            t1 = int((absolute_time(enc.date_of_service, adm.stop) - origin).total_seconds() // 60)
            add(("stop", (e, a, t1)))
        ctx.admin_minutes[a] = (t0, t1)
        if adm.purpose:
            add(("purpose", (e, a, Const(adm.purpose))))
        if adm.primary_reason:
            add(("primary_reason", (e, a)))
        if adm.separate_access_reason:
            add(("separate_access", (e, a)))
        if adm.discontinued:
            add(("discontinued", (e, a)))
        if adm.pump:
            add(("pump", (e, a, Const(adm.pump))))
        if adm.research:
            add(("research", (e, a, Const(adm.research))))
        if adm.lesions is not None:
            add(("lesions", (e, a, adm.lesions)))
        for d, drug in enumerate(adm.drugs, start=1):
            dpath = where + ("drugs", d - 1)
            add(("drug", (e, a, d)))
            code = drug.hcpcs or loaded.resolved.get((idx, d - 1))
            ctx.drug_codes[(a, d)] = code
            if code:
                add(("drug_code", (e, a, d, code)))
                if (idx, d - 1) in loaded.rxnorm:
                    add(("drug_rxnorm", (e, a, d, loaded.rxnorm[(idx, d - 1)])))
                elif drug.hcpcs is None:
                    add(("drug_code_from_ndc", (e, a, d)))
            if drug.ndc:
                add(("drug_ndc", (e, a, d, drug.ndc)))
            if drug.name:
                add(("drug_named", (e, a, d)))
                add(("drug_name", (e, a, d, drug.name.strip())))
            if drug.manufacturer:
                add(("drug_manufacturer", (e, a, d)))
                add(("drug_manufacturer_name", (e, a, d, drug.manufacturer.strip())))
            if drug.kind:
                add(("drug_kind", (e, a, d, Const(drug.kind))))
            _source_facts(add, ctx, loaded, e, a, d, idx, drug)
            if drug.dose is not None:
                amt, dim = scaled(drug.dose, dpath + ("dose",))
                add(("dose", (e, a, d, amt, Const(dim))))
            if drug.container is not None:
                add(("container", (e, a, d, Const(drug.container.type))))
                if drug.container.size is not None:
                    amt, dim = scaled(drug.container.size, dpath + ("container", "size"))
                    add(("container_size", (e, a, d, amt, Const(dim))))
                if drug.container.count is not None:
                    add(("container_count", (e, a, d, drug.container.count)))
            if drug.discarded is not None:
                amt, dim = scaled(drug.discarded, dpath + ("discarded",))
                add(("discarded", (e, a, d, amt, Const(dim))))
            add(("supplied_by", (e, a, d, Const(drug.supplied_by))))
            key = (code or drug.ndc or "", (drug.name or "").strip().lower())
            sid = substance_ids.setdefault(key, len(substance_ids) + 1)
            add(("substance", (e, a, d, sid)))

    if loaded.site is not None and loaded.site.has_formulary:
        add(("site_formulary", (e,)))
    for i, na in enumerate(enc.not_administered, start=1):
        add(("not_administered", (e, i, Const(na.status))))
        if na.reason:
            add(("not_administered_reason", (e, i, na.reason)))
    for i, svc in enumerate(enc.services, start=1):
        add(("service", (e, i, svc.code)))
        if svc.separately_identifiable:
            add(("separately_identifiable", (e, i)))

    trial = enc.clinical_trial
    if trial is not None:
        add(("trial", (e,)))
        if trial.nct:
            add(("trial_nct", (e, trial.nct[-8:])))
        if trial.qualifying:
            add(("trial_qualifying", (e,)))
        for item in trial.billing_grid:
            ref: Arg = item.item
            for a, idx in ctx.admin_index.items():
                if enc.administrations[idx].id == item.item:
                    ref = a
            add(("grid", (e, ref, Const(item.payer))))

    plan = enc.treatment_plan
    if plan is not None:
        add(("plan", (e,)))
        if plan.id:
            add(("plan_id", (e, plan.id)))
        for code in plan.drugs:
            add(("plan_drug", (e, code.strip().upper())))
        if plan.cycle is not None:
            add(("plan_cycle", (e, plan.cycle)))
        if plan.planned_cycles is not None:
            add(("plan_cycles", (e, plan.planned_cycles)))
        for code in plan.diagnoses:
            add(("plan_dx", (e, code)))
        for i, mod in enumerate(plan.modifications, start=1):
            add(("plan_modification", (e, i, yyyymmdd(mod.date) if mod.date else 0)))

    for i, ev in enumerate(enc.evidence, start=1):
        add(("evidence", (e, i, ev.kind, ev.name or "", ev.value or "")))
        if ev.outcome:
            add(("evidence_outcome", (e, i, ev.outcome)))

    for i, auth in enumerate(enc.authorizations, start=1):
        add(("auth", (e, i)))
        add(("auth_number", (e, i, auth.number)))
        for code in auth.codes:
            add(("auth_code", (e, i, code.strip().upper())))
        lo = yyyymmdd(auth.start) if auth.start else 0
        hi = yyyymmdd(auth.end) if auth.end else 99991231
        add(("auth_window", (e, i, lo, hi)))
        if auth.units is not None:
            add(("auth_units", (e, i, auth.units)))
        if auth.units_used is not None:
            add(("auth_used", (e, i, auth.units_used)))
    return out, ctx
