"""Encounters -> input facts, as plain Python values (the engine turns them into clingo symbols).

No user string is ever pasted into program text: each fact is ``(predicate, args)`` where an
argument is an ``int``, a ``str`` (becomes a clingo *string*), a :class:`Const` (a constant
from a closed set the model already validated, e.g. a route) or an :class:`Fn` term.

Numbering is batch-first: encounter ``E`` is 1..N in the batch; administrations are numbered
1..n in a canonical order (start, stop, route, contents, id) so that the order of the input
list never changes a code; drugs keep their position in the bag; access sites are numbered by
name. Times are integer minutes from the encounter's first start; amounts are integers in a
fixed small unit (mcg, ul, unit, uci; for a drug code whose amounts need it, a thousandth of
mcg, unit or uci: ng, munit, nci).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
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


# a dimension whose input unit is the small unit itself (mcg, units, uCi) gets a finer grid, one
# thousandth of it, for the drug codes whose amounts need it (issue #13: 118.9 uCi, 157.5 mcg):
# any amount written with up to three decimals is then exact. encodings/drugs/precision.lp scales
# the reference amounts (billing units, crosswalk item amounts) of those codes to the finer grid.
FINE_DIM: dict[str, str] = {"mcg": "ng", "unit": "munit", "uci": "nci"}


def scaled(amount: Amount, path: tuple, fine: bool = False, direction: str = "exact") -> tuple[int, str, bool]:
    """An input amount as (integer in the small unit, dimension, rounded?). ``fine`` uses the
    dimension's finer grid (FINE_DIM). An amount finer than the grid is never rejected: it is
    rounded in ``direction`` ("up" for doses, "down" for discarded amounts and container sizes;
    units are rounded up and waste down anyway, so the billing units do not change) and the
    caller reports it."""
    dim, mult = UNIT_SCALE[amount.unit]
    if fine and dim in FINE_DIM:
        dim, mult = FINE_DIM[dim], mult * 1000
    value = amount.value * mult
    whole = value.to_integral_value(rounding="ROUND_CEILING" if direction == "up" else "ROUND_FLOOR")
    rounded = whole != value
    out = int(whole)
    if out > MAX_INT:
        raise InputError([(fmt_path(path), f"{amount.value} {amount.unit} is too large")])
    return out, dim, rounded


def _needs_fine(amount: Amount) -> bool:
    dim, mult = UNIT_SCALE[amount.unit]
    value = amount.value * mult
    return dim in FINE_DIM and value != value.to_integral_value()


def _fine_keys(enc: Encounter, loaded: Loaded) -> set[tuple[str, str]]:
    """(drug key, dimension) pairs whose amounts use the finer grid: some amount of that code in
    that dimension is not a whole number of the small unit, and all of them (and the sum of the
    doses) still fit the solver's integers on the finer grid."""
    amounts: dict[tuple[str, str], list] = {}
    for idx, adm in enumerate(enc.administrations):
        for d, drug in enumerate(adm.drugs):
            key = drug.hcpcs or loaded.resolved.get((idx, d)) or drug.ndc or ""
            parts = [drug.dose, drug.discarded, drug.container.size if drug.container else None]
            for part in parts:
                if part is not None:
                    amounts.setdefault((key, UNIT_SCALE[part.unit][0]), []).append(part)
    fine = set()
    for (key, dim), parts in amounts.items():
        if dim not in FINE_DIM or not any(_needs_fine(p) for p in parts):
            continue
        if sum(p.value * UNIT_SCALE[p.unit][1] * 1000 for p in parts) <= MAX_INT:
            fine.add((key, dim))
    return fine


def _amount(add, grids: set, fine_keys: set, e: int, a: int, d: int, code, fkey: str, part: Amount,
            path: tuple, direction: str, what: str) -> tuple[int, str]:
    """One amount of a drug as an integer fact value; records the finer grid of its code
    (amount_grid/4) and an amount that had to be rounded (amount_rounded/5)."""
    base = UNIT_SCALE[part.unit][0]
    fine = (fkey, base) in fine_keys
    amt, dim, rounded = scaled(part, path, fine, direction)
    if fine and code and (code, base) not in grids:
        grids.add((code, base))
        add(("amount_grid", (e, code, Const(base), Const(dim))))
    if rounded:
        add(("amount_rounded", (e, a, d, Const(what), f"{part.value} {part.unit}")))
    return amt, dim


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
        if row.charge_per_unit is not None:
            mills = row.charge_per_unit * 1000
            if mills == mills.to_integral_value() and 0 <= mills <= MAX_INT:
                add(("drug_charge", (e, a, d, int(mills), row.row)))
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


# laboratory results an ESA claim reports (encodings/drugs/esa.lp): the analyte named by the
# evidence kind or name (LOINC codes of the FHIR reader included), the value in thousandths of the
# reporting unit (g/dL for hemoglobin, % for hematocrit), converted only where exact
LAB_NAMES = {
    "hemoglobin": "hemoglobin", "haemoglobin": "hemoglobin", "hgb": "hemoglobin", "hb": "hemoglobin",
    "718-7": "hemoglobin", "20509-6": "hemoglobin", "30313-1": "hemoglobin",
    "hematocrit": "hematocrit", "haematocrit": "hematocrit", "hct": "hematocrit",
    "4544-3": "hematocrit", "20570-8": "hematocrit", "31100-1": "hematocrit",
}
_LAB_NOT = ("a1c", "glyc", "fetal", "urine", "plasma free")
LAB_UNITS = {  # analyte -> unit (lower case) -> multiplier to the reporting unit
    "hemoglobin": {"g/dl": 1, "g/l": Decimal("0.1")},
    "hematocrit": {"%": 1, "l/l": 100, "fraction": 100},
}


def lab_analyte(kind: str, name: Optional[str]) -> Optional[str]:
    """hemoglobin | hematocrit when an evidence item is one of these results, else None."""
    k = kind.strip().lower()
    if k in LAB_NAMES:
        return LAB_NAMES[k]
    if k not in ("lab", "laboratory", "observation") or not name:
        return None
    text = name.strip().lower()
    if any(x in text for x in _LAB_NOT):
        return None
    first = re.split(r"[\s\[(,]+", text)[0]
    return LAB_NAMES.get(first) or LAB_NAMES.get(text)


def _lab_facts(add, ctx: "Context", e: int, i: int, ev) -> None:
    analyte = lab_analyte(ev.kind, ev.name)
    if analyte is None:
        return
    add(("lab", (e, i, Const(analyte))))
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(\S*)\s*", ev.value or "")
    unit = (ev.unit or (match.group(2) if match else "") or "").strip().lower()
    mult = LAB_UNITS[analyte].get(unit)
    if match is None or mult is None:
        add(("lab_unreadable", (e, i)))
        return
    milli = int((Decimal(match.group(1)) * mult * 1000).to_integral_value(rounding=ROUND_DOWN))
    if ev.date is None:
        add(("lab_undated", (e, i)))
        return
    add(("lab_result", (e, i, milli, yyyymmdd(ev.date))))
    if ev.time is not None:
        moment = dt.datetime.combine(ev.date, dt.time(int(ev.time[:2]), int(ev.time[3:5])))
        add(("lab_time", (e, i, int((moment - ctx.origin).total_seconds() // 60))))


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
    fine_keys = _fine_keys(enc, loaded)
    grids: set = set()

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
        if adm.site is not None and adm.site.strip():
            # compared as text: case and runs of blanks do not make two sites different
            add(("adm_site", (e, a, " ".join(adm.site.lower().split()))))
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
            fkey = code or drug.ndc or ""
            if drug.dose is not None:
                amt, dim = _amount(add, grids, fine_keys, e, a, d, code, fkey, drug.dose, dpath + ("dose",), "up", "dose")
                add(("dose", (e, a, d, amt, Const(dim))))
            if drug.container is not None:
                add(("container", (e, a, d, Const(drug.container.type))))
                if drug.container.size is not None:
                    amt, dim = _amount(add, grids, fine_keys, e, a, d, code, fkey, drug.container.size, dpath + ("container", "size"), "down", "container_size")
                    add(("container_size", (e, a, d, amt, Const(dim))))
                if drug.container.count is not None:
                    add(("container_count", (e, a, d, drug.container.count)))
                    if drug.container.size is not None and amt * drug.container.count > MAX_INT:
                        raise InputError([(fmt_path(dpath + ("container",)), f"{drug.container.count} containers of "
                                           f"{drug.container.size.value} {drug.container.size.unit} is more than the engine "
                                           "can count (the amount opened must stay below 2,147 kg, 2,147 L or 2.1e9 units)")])
            if drug.discarded is not None:
                amt, dim = _amount(add, grids, fine_keys, e, a, d, code, fkey, drug.discarded, dpath + ("discarded",), "down", "discarded")
                add(("discarded", (e, a, d, amt, Const(dim))))
            add(("supplied_by", (e, a, d, Const(drug.supplied_by))))
            if drug.acquired_340b is not None:
                add(("acquired_340b", (e, a, d, Const("yes" if drug.acquired_340b else "no"))))
            key = (code or drug.ndc or "", (drug.name or "").strip().lower())
            sid = substance_ids.setdefault(key, len(substance_ids) + 1)
            add(("substance", (e, a, d, sid)))

    if loaded.site is not None and loaded.site.has_formulary:
        add(("site_formulary", (e,)))
    site_340b = getattr(loaded.site, "acquired_340b", None)
    if site_340b is not None:
        add(("site_340b", (e, Const("yes" if site_340b else "no"))))
    provider_type = getattr(loaded.site, "provider_type", None)
    if provider_type is not None:
        add(("site_provider_type", (e, Const(provider_type))))
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
        _lab_facts(add, ctx, e, i, ev)

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


def _strings(args: Any, out: set) -> None:
    for a in args:
        if isinstance(a, str):
            out.add(a)
        elif isinstance(a, Fn):
            _strings(a.args, out)


def site_facts(batch: list, facts: list[Fact], rule_codes: frozenset) -> list[Fact]:
    """The site facts of a batch: ``site_of(E,N)`` per encounter read with a site that has a
    charge master or fee schedule, and that site's rows (``site_charge/4``, ``site_fee/4``) of the
    codes the batch's facts or the rules name (a claim line's code is always one of them: the
    rules' own codes, or a drug or service code of the input). Numbers are per batch."""
    sites: dict[int, Any] = {}
    out: list[Fact] = []
    for e, loaded in enumerate(batch, start=1):
        site = getattr(loaded, "site", None)
        if site is None or not (getattr(site, "has_charges", False) or getattr(site, "has_fee_schedule", False)):
            continue
        n = sites.setdefault(id(site), len(sites) + 1)
        out.append(("site_of", (e, n)))
    if not sites:
        return out
    codes: set = set(rule_codes)
    for _name, args in facts:
        _strings(args, codes)
    done: set[int] = set()
    for loaded in batch:
        site = getattr(loaded, "site", None)
        if site is None or id(site) not in sites or id(site) in done:
            continue
        done.add(id(site))
        n = sites[id(site)]
        if site.has_charges:
            out.append(("site_has_charges", (n,)))
            out += [("site_charge", (n, c, r.mills, r.row)) for c, r in sorted(site.charge_rows.items()) if c in codes]
        if site.has_fee_schedule:
            out.append(("site_has_fees", (n,)))
            out += [("site_fee", (n, c, r.mills, r.row)) for c, r in sorted(site.fee_rows.items()) if c in codes]
    return out
