"""Property-based testing for oncologic and for your own rules: hypothesis strategies and
invariant checks (public API).

>>> from hypothesis import given
>>> from oncologic import testing as ot
>>> @given(ot.batches())
... def test_my_profile_keeps_the_invariants(docs):
...     claims = ot.solve_docs(docs, policy="my_payer")
...     ot.assert_invariants(docs, claims)

Strategies (all draw plain encounter *documents*, the dicts of the input contract, so a
failing example can be printed as a case file):

* :func:`encounters` - one valid, realistic encounter: real HCPCS drug codes with doses that
  are whole multiples (or not) of their billing unit, taken from the reference data in
  ``facts/`` (``hcpcs_unit``/``hcpcs_category``); real billable ICD-10-CM codes; plausible
  timelines (premedication, chemotherapy, hydration, pushes and injections) with concurrency,
  several access sites (a justified second site sometimes), both settings, start times late in
  the evening so that services cross midnight.
* :func:`batches` - a list of encounters with distinct ids (solve them in one batch).
* :func:`invalid_documents` - inputs that must be rejected with an ``InputError`` (a valid
  encounter with one thing broken, or not an encounter at all).

Invariant checks return a list of messages (empty = fine); :func:`assert_invariants` raises
with the failing encounter printed as a case file (see :func:`case_yaml`). Transformations
(:func:`shift_times`, :func:`reorder`, :func:`rename_ids`, :func:`add_kvo`) build the
metamorphic pairs the property suite in ``tests/properties`` compares.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable, Optional, Sequence

from hypothesis import note
from hypothesis import strategies as st

from . import refdata
from .regimens import REGIMEN_NAMES

__all__ = [
    "DrugSpec", "drug_catalog", "diagnosis_codes",
    "encounters", "batches", "invalid_documents", "regimen_encounters", "REGIMEN_NAMES",
    "solve_docs", "code_document",
    "check_one_initial_per_group", "check_addons_have_primary", "check_additional_hours",
    "check_clean_iff_no_error", "check_drug_units_cover_dose", "check_everything_accounted", "check_claim",
    "assert_invariants",
    "admin_signature", "claim_signature", "claim_dump",
    "shift_times", "reorder", "rename_ids", "add_kvo", "case_yaml",
    "INITIAL_CODES", "ADDON_CODES", "HOURLY_CODES", "DISTINCT_MODIFIERS",
]

# The IV administration codes the invariants talk about (domain-rules 1.2, 1.3, 2.3). These are
# test oracles, not coding rules: the engine decides codes in encodings/*.lp.
INITIAL_CODES = frozenset({"96360", "96365", "96374", "96409", "96413"})
ADDON_CODES = frozenset({"96361", "96366", "96367", "96368", "96375", "96376", "96411", "96415", "96417"})
HOURLY_CODES = frozenset({"96366", "96415"})  # each additional hour of a drug infusion (2.3, 2.4)
DISTINCT_MODIFIERS = frozenset({"XU", "59", "XE", "XS", "XP"})


# --------------------------------------------------------------------------------------------
# reference data


@dataclass(frozen=True)
class DrugSpec:
    code: str
    kind: str  # chemotherapy | hormonal_antineoplastic | therapeutic | hydration
    unit_amount: int  # one billing unit, in the engine's small unit
    dim: str  # mcg | ul | unit


_UNIT = re.compile(r'^hcpcs_unit\("[^"]*","([^"]+)",(\d+),(mcg|ul|unit)\)\.', re.M)
_CAT = re.compile(r'^hcpcs_category\("([^"]+)","((?:[^"\\]|\\.)*)"\)\.', re.M)
_TERM = re.compile(r'^hcpcs_term\("[^"]*","([^"]+)"', re.M)
_CATKIND = re.compile(r'^category_kind\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*([a-z_]+)\s*\)\.', re.M)
_OVERRIDE = re.compile(r'^code_kind_override\(\s*"([^"]+)"\s*,\s*([a-z_]+)\s*\)\.', re.M)
_ICD = re.compile(r'^icd10\("([A-Z][0-9A-Z.]+)",y\)\.', re.M)


@lru_cache(maxsize=1)
def drug_catalog() -> dict[str, tuple[DrugSpec, ...]]:
    """Drug codes by administration family, from ``facts/hcpcs_*.lp`` and the category map of
    ``encodings/admin/substance.lp``: only codes with a parsed billing unit, a family and no
    termination date."""
    units: dict[str, tuple[int, str]] = {}
    cats: dict[str, str] = {}
    ended: set[str] = set()
    for path in refdata.fact_files():
        text = path.read_text(encoding="utf-8")
        for code, amount, dim in _UNIT.findall(text):
            units.setdefault(code, (int(amount), dim))
        cats.update(dict(_CAT.findall(text)))
        ended.update(_TERM.findall(text))
    subst = (refdata.ENCODINGS / "admin" / "substance.lp").read_text(encoding="utf-8")
    cat_kind = dict(_CATKIND.findall(subst))
    override = dict(_OVERRIDE.findall(subst))
    out: dict[str, list[DrugSpec]] = {}
    for code in sorted(units):
        if code in ended:
            continue
        kind = override.get(code) or cat_kind.get(cats.get(code, ""))
        if kind is None:
            continue
        amount, dim = units[code]
        out.setdefault(kind, []).append(DrugSpec(code, kind, amount, dim))
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=1)
def diagnosis_codes() -> tuple[str, ...]:
    """Billable malignant-neoplasm codes (C00-C96) of ``facts/icd10cm_*.lp``."""
    out: list[str] = []
    for path in (p for p in refdata.fact_files() if p.name.startswith("icd10cm_")):
        out += [c for c in _ICD.findall(path.read_text(encoding="utf-8")) if c.startswith("C")]
    return tuple(sorted(set(out)))


# --------------------------------------------------------------------------------------------
# valid encounters


def _amount(value_small: int, dim: str) -> dict:
    """An amount in the engine's small unit as the input writes it."""
    if dim == "mcg":
        if value_small % 1000 == 0:
            return {"value": value_small // 1000, "unit": "mg"}
        return {"value": value_small, "unit": "mcg"}
    if dim == "ul":
        return {"value": format((Decimal(value_small) / 1000).normalize(), "f"), "unit": "mL"}
    return {"value": value_small, "unit": "units"}


@st.composite
def drugs(draw, kind: str) -> dict:
    """One drug of the given family with a dose: a whole number of billing units most of the
    time, sometimes a dose that is not (so rounding up shows)."""
    spec = draw(st.sampled_from(drug_catalog()[kind]))
    cap = {"mcg": 2_000_000, "ul": 1_000_000, "unit": 200_000}[spec.dim]
    max_units = max(1, min(400, cap // spec.unit_amount))
    n = draw(st.integers(1, max_units))
    dose = n * spec.unit_amount
    if draw(st.integers(0, 4)) == 0 and spec.unit_amount > 1:
        dose = max(1, dose - draw(st.integers(1, spec.unit_amount - 1)))
        if spec.dim == "mcg" and dose > 1000 and dose % 1000:
            dose = (dose // 1000 + 1) * 1000  # charted in whole mg
    return {"hcpcs": spec.code, "dose": _amount(dose, spec.dim)}


_TEMPLATES = (
    # (weight, kind, route choices, duration range in minutes, purpose)
    (5, "chemotherapy", ("iv_infusion",), (16, 300), None),
    (2, "chemotherapy", ("iv_push",), (1, 10), None),
    (4, "therapeutic", ("iv_infusion",), (10, 180), None),
    (3, "therapeutic", ("iv_push",), (1, 10), None),
    (2, "therapeutic", ("subcutaneous", "intramuscular"), (1, 5), None),
    (1, "hormonal_antineoplastic", ("subcutaneous", "intramuscular"), (1, 5), None),
    (3, "hydration", ("iv_infusion",), (10, 240), "hydration"),
    (1, "hydration", ("iv_infusion",), (10, 240), None),
)


@st.composite
def administrations(draw, ident: str, day_start: int, access_names: Sequence[str]) -> tuple[dict, int, int]:
    """(administration document without times, start minute, stop minute)."""
    weights = [t[0] for t in _TEMPLATES]
    idx = draw(st.sampled_from([i for i, w in enumerate(weights) for _ in range(w)]))
    _w, kind, routes, (lo, hi), purpose = _TEMPLATES[idx]
    route = draw(st.sampled_from(routes))
    start = day_start + draw(st.integers(0, 420))
    duration = draw(st.integers(lo, hi))
    doc: dict[str, Any] = {"id": ident, "route": route, "access": draw(st.sampled_from(access_names))}
    n_drugs = 1 if kind != "therapeutic" or route != "iv_infusion" else draw(st.integers(1, 2))
    doc["drugs"] = [draw(drugs(kind)) for _ in range(n_drugs)]
    if purpose:
        doc["purpose"] = purpose
    return doc, start, start + duration


def _time_text(dos: dt.date, minute: int) -> str:
    moment = dt.datetime.combine(dos, dt.time()) + dt.timedelta(minutes=minute)
    if moment.date() == dos:
        return moment.strftime("%H:%M")
    return moment.strftime("%Y-%m-%dT%H:%M")


_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz"


@st.composite
def encounters(draw, min_admins: int = 1, max_admins: int = 6, settings: Sequence[str] = ("office", "facility"),
               midnight: bool = True, encounter_id: Optional[str] = None) -> dict:
    """A valid, realistic encounter document (see the module docstring)."""
    setting = draw(st.sampled_from(tuple(settings)))
    dos = draw(st.dates(dt.date(2025, 10, 1), dt.date(2026, 9, 30)))
    latest = 23 * 60 if midnight else 13 * 60
    day_start = draw(st.integers(6 * 60, latest))
    n = draw(st.integers(min_admins, max_admins))
    second_site = draw(st.integers(0, 3)) == 0
    access_names = ["port", "left_arm"] if second_site else ["port"]
    suffixes = draw(st.lists(st.text(_ID_ALPHABET, min_size=2, max_size=3), min_size=n, max_size=n, unique=True))
    admins = []
    for sfx in suffixes:
        doc, start, stop = draw(administrations(f"adm_{sfx}", day_start, access_names))
        doc["start"] = _time_text(dos, start)
        doc["stop"] = _time_text(dos, stop)
        admins.append(doc)
    if second_site and draw(st.booleans()):
        for doc in admins:
            if doc["access"] == "left_arm":
                doc["separate_access_reason"] = "second line required by protocol"
    if setting == "office" and draw(st.booleans()):
        draw(st.sampled_from(admins))["primary_reason"] = True
    dx = draw(st.lists(st.sampled_from(diagnosis_codes()), min_size=1, max_size=2, unique=True))
    if draw(st.booleans()):
        dx = ["Z51.11", *dx]
    enc: dict[str, Any] = {
        "id": encounter_id or f"ENC-{draw(st.integers(1, 10**6)):06d}",
        "setting": setting,
        "date_of_service": dos.isoformat(),
        "diagnoses": dx,
        "administrations": admins,
    }
    payer = draw(st.sampled_from([None, "medicare", "commercial"]))
    if payer:
        enc["payer"] = {"type": payer, "member_id": "M123456"}
    return enc


@st.composite
def regimen_encounters(draw, regimen: Optional[str] = None, setting: Optional[str] = None,
                       payer_type: Optional[str] = None, payer_name: Optional[str] = None,
                       diagnoses: Optional[Sequence[str]] = None, date_of_service: Optional[dt.date] = None,
                       min_admins: int = 1, max_admins: int = 60, bad_rate: float = 0.0) -> dict:
    """A realistic encounter of a published regimen, drawn by the seeded generator of
    :mod:`oncologic.regimens` (the benchmark's): ``regimen`` one of :data:`REGIMEN_NAMES`
    (folfox, rchop, carbo_pacli, pembrolizumab, nivolumab, bevacizumab, support, cisplatin; None:
    drawn with the generator's shares), ``setting`` office | facility, ``payer_type`` medicare |
    medicare_advantage | medicaid | commercial, ``payer_name`` the payer's name as the claim gives
    it, ``diagnoses`` the cancer diagnoses to choose from, ``date_of_service``, and the number of
    administrations kept between ``min_admins`` and ``max_admins`` (encounters outside are drawn
    again; FOLFOX has 4-7, a pembrolizumab visit 1-2). ``bad_rate`` makes that share invalid."""
    import random

    from .regimens import encounter as _generate

    for _ in range(50):
        seed = draw(st.integers(0, 2**32 - 1))
        doc = _generate(random.Random(seed), draw(st.integers(1, 10**6)), bad_rate, regimen=regimen, setting=setting,
                        payer_type=payer_type, payer_name=payer_name,
                        diagnoses=list(diagnoses) if diagnoses else None, day=date_of_service)
        if min_admins <= len(doc["administrations"]) <= max_admins:
            return doc
    raise ValueError(f"regimen {regimen or 'any'}: no encounter with {min_admins}-{max_admins} administrations in 50 draws")


def batches(min_size: int = 1, max_size: int = 8, **kw) -> st.SearchStrategy[list[dict]]:
    """A list of valid encounters with distinct ids (made to be coded in one batch)."""

    @st.composite
    def _batch(draw):
        n = draw(st.integers(min_size, max_size))
        return [draw(encounters(encounter_id=f"ENC-{i + 1:03d}", **kw)) for i in range(n)]

    return _batch()


# --------------------------------------------------------------------------------------------
# invalid input


def _set(doc: dict, path: Sequence[Any], value: Any) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


@st.composite
def invalid_documents(draw) -> Any:
    """An input the loader must reject (an ``InputError`` naming a field), never a traceback."""
    doc = draw(encounters(max_admins=3))
    a = draw(st.integers(0, len(doc["administrations"]) - 1))
    adm = ("administrations", a)
    drug = adm + ("drugs", 0)
    junk = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )
    mutations = [
        lambda: _set(doc, ("id",), _DELETE),
        lambda: _set(doc, ("setting",), draw(st.sampled_from(["home", "", None, 3]))),
        lambda: _set(doc, ("date_of_service",), draw(st.sampled_from(["2026-02-30", "yesterday", None]))),
        lambda: _set(doc, ("diagnoses",), draw(st.sampled_from([[], ["not a code"], "C34.11", [None]]))),
        lambda: _set(doc, adm + ("id",), _DELETE),
        lambda: _set(doc, adm + ("route",), draw(st.sampled_from(["iv_drip", "", "IV"]))),
        lambda: _set(doc, adm + ("start",), draw(st.sampled_from(["25:61", "noon", "9", ""]))),
        lambda: _set(doc, adm + ("stop",), "00:00" if doc[adm[0]][a]["start"] != "00:00" else "23:59x"),
        lambda: _set(doc, drug + ("dose",), {"value": draw(st.sampled_from([-1, "ten", None])), "unit": "mg"}),
        lambda: _set(doc, drug + ("dose",), {"value": 10, "unit": draw(st.sampled_from(["mg/m2", "tablets", ""]))}),
        lambda: _set(doc, drug + ("dose",), {"value": 10**12, "unit": "g"}),  # too large
        lambda: _set(doc, drug + ("hcpcs",), draw(st.sampled_from(["XYZ", "J0000", "99999x"]))),
        lambda: _set(doc, drug + ("ndc",), draw(st.sampled_from(["12345", "1234567890", "abcd-efgh-ij"]))),
        lambda: _set(doc, ("administrations",), doc["administrations"] + [copy.deepcopy(doc["administrations"][a])]),
        lambda: _set(doc, ("administrations",), draw(junk.filter(lambda v: not isinstance(v, list) or v))),
        lambda: _set(doc, adm, draw(junk)),
        lambda: draw(junk.filter(lambda v: not isinstance(v, dict))),
    ]
    return draw(st.sampled_from(mutations))()


# --------------------------------------------------------------------------------------------
# solving


def solve_docs(docs: Sequence[dict], policy: Optional[str] = "medicare", rules: Sequence[str] = (),
               switches: Optional[Sequence[Sequence[str]]] = None):
    """Validate encounter documents and code them in one batch (raises ``InputError``)."""
    from .load import validate
    from .solver import code_encounters

    loaded = [validate(copy.deepcopy(d), f"encounter[{i}]") for i, d in enumerate(docs)]
    return code_encounters(loaded, policy=policy, rules=rules, policies=switches)


def code_document(doc: Any, policy: Optional[str] = "medicare", rules: Sequence[str] = (),
                  switches: Sequence[str] = ()):
    """Validate and code one document: the path a user's input takes (``InputError`` or a claim),
    under ``policy``, the rule files ``rules`` and the policy ``switches``."""
    from .load import validate
    from .solver import code_encounters

    return code_encounters([validate(doc)], policy=policy, rules=rules, policies=[tuple(switches)])[0]


# --------------------------------------------------------------------------------------------
# invariants


def claim_dump(claim) -> dict:
    return claim.model_dump(mode="json", by_alias=True)


def _distinct(line: dict) -> bool:
    return bool(DISTINCT_MODIFIERS & set(line["modifiers"]))


def _justified_sites(doc: dict) -> int:
    return len({a.get("access", "main") for a in doc.get("administrations", []) if a.get("separate_access_reason")})


def check_one_initial_per_group(doc: dict, claim) -> list[str]:
    """One IV initial service per access group: at most one in the main group (no distinct-
    service modifier), at most one per justified separate site (domain-rules 3.2, 3.3)."""
    lines = claim_dump(claim)["lines"]
    main = [ln for ln in lines if ln["code"] in INITIAL_CODES and not _distinct(ln)]
    other = [ln for ln in lines if ln["code"] in INITIAL_CODES and _distinct(ln)]
    out = []
    if sum(ln["units"] for ln in main) > 1:
        out.append(f"{sum(ln['units'] for ln in main)} initial services in the main access group: "
                   + ", ".join(f"{ln['code']} x{ln['units']}" for ln in main))
    if sum(ln["units"] for ln in other) > _justified_sites(doc):
        out.append(f"{len(other)} initial services on separate sites, but {_justified_sites(doc)} justified site(s)")
    return out


def check_addons_have_primary(doc: dict, claim) -> list[str]:
    """Every add-on code has an initial service in its access group (domain-rules 1.3), or the
    claim says it has not: an ADDON_WITHOUT_PRIMARY error about the add-on's administration (e.g.
    the trial's billing grid gave the initial service to the sponsor). Never a silent orphan."""
    dump = claim_dump(claim)
    lines = dump["lines"]
    flagged = {f["subject"] for f in dump["findings"] if f["code"] == "ADDON_WITHOUT_PRIMARY" and f["severity"] == "error"}
    out = []
    for ln in lines:
        if ln["code"] in ADDON_CODES:
            same = [x for x in lines if x["code"] in INITIAL_CODES and _distinct(x) == _distinct(ln)]
            if not same and not flagged.intersection(ln["why"]["from"]):
                out.append(f"add-on {ln['code']} (line {ln['line']}) has no initial service in its access group")
    return out


def _minutes(doc: dict) -> dict[str, int]:
    from .model import absolute_time

    dos = dt.date.fromisoformat(str(doc["date_of_service"]))
    out = {}
    for a in doc.get("administrations", []):
        if a.get("stop"):
            t0 = absolute_time(dos, str(a["start"]))
            t1 = absolute_time(dos, str(a["stop"]))
            out[a["id"]] = int((t1 - t0).total_seconds() // 60)
    return out


def _hours(m: int) -> int:
    return max(0, (m - 31) // 60)


def check_additional_hours(doc: dict, claim) -> list[str]:
    """Units of each-additional-hour drug lines (96415, 96366) match the minutes of the infusions
    they rest on: floor((minutes - 31) / 60) each (domain-rules 2.3, 2.4). Later bags of the same
    infusate may add their minutes to the first bag's (rule admin.additional_hour_repeats), so
    with such bags in the encounter the units lie between the bags' own hours and the hours of
    their added minutes; without them the check is exact."""
    mins = _minutes(doc)
    contents = {a["id"]: tuple(sorted(str(d.get("hcpcs")) for d in a.get("drugs", [])))
                for a in doc.get("administrations", []) if a.get("route") == "iv_infusion"}
    out = []
    for ln in claim_dump(claim)["lines"]:
        if ln["code"] not in HOURLY_CODES:
            continue
        ids = [r for r in ln["why"]["from"] if r in mins]
        low = sum(_hours(mins[r]) for r in ids)
        # upper bound: the bags of one infusate on the line, plus the other bags of that infusate,
        # timed as one infusion (the line may list all of them in its from, or only the first)
        pooled: dict[Any, int] = {}
        for r in ids:
            key = contents.get(r, r)
            pooled[key] = pooled.get(key, 0) + mins[r]
        for x, c in contents.items():
            if c in pooled and x not in ids and x in mins:
                pooled[c] += mins[x]
        high = sum(_hours(m) for m in pooled.values())
        if not low <= ln["units"] <= high:
            want = str(low) if low == high else f"{low} to {high}"
            out.append(f"{ln['code']} x{ln['units']} rests on {', '.join(f'{r} ({mins[r]} min)' for r in ids)}: "
                       f"the minutes give {want} additional hour(s)")
    return out


def check_clean_iff_no_error(doc: dict, claim) -> list[str]:
    errors = [f for f in claim.findings if f.severity == "error"]
    if claim.clean == bool(errors):
        return [f"clean is {claim.clean} with {len(errors)} error finding(s)"]
    return []


@lru_cache(maxsize=1)
def _unit_of() -> dict[str, tuple[int, str]]:
    return {s.code: (s.unit_amount, s.dim) for specs in drug_catalog().values() for s in specs}


def _small(amount: dict) -> tuple[Decimal, str]:
    from .facts import UNIT_SCALE

    dim, mult = UNIT_SCALE[amount["unit"]]
    return Decimal(str(amount["value"])) * mult, dim


def check_drug_units_cover_dose(doc: dict, claim) -> list[str]:
    """For every drug code billed on drug lines (without JW), units x unit size >= the dose
    given (domain-rules 7.1: round up, never down), not counting the drugs the claim lists as not
    billed. Codes without drug lines are not checked."""
    dump = claim_dump(claim)
    billed: dict[str, int] = {}
    for ln in dump["lines"]:
        if ln["code"] in _unit_of() and "JW" not in ln["modifiers"]:
            billed[ln["code"]] = billed.get(ln["code"], 0) + ln["units"]
    # drugs the claim says it leaves off (sponsor-supplied, the trial grid's, flushes...) carry no units
    left_off = {nb["subject"] for nb in dump["not_billed"]}
    given: dict[str, Decimal] = {}
    for a in doc.get("administrations", []):
        for j, d in enumerate(a.get("drugs", [])):
            code = d.get("hcpcs")
            if f"{a.get('id')}.drugs[{j}]" in left_off:
                continue
            if code in billed and d.get("dose") and d.get("supplied_by", "practice") != "sponsor":
                value, dim = _small(d["dose"])
                if dim == _unit_of()[code][1]:
                    given[code] = given.get(code, Decimal(0)) + value
    out = []
    for code, dose in given.items():
        unit, dim = _unit_of()[code]
        if billed[code] * unit < dose:
            out.append(f"{code}: {billed[code]} unit(s) x {unit} {dim} = {billed[code] * unit} {dim} < {dose} {dim} given")
    return out


def check_everything_accounted(doc: dict, claim) -> list[str]:
    """Nothing silently dropped (house rule 4): every administration and every drug of the input
    is named by the claim: in a line's ``why.from``, as a ``not_billed`` subject, or in a finding."""
    dump = claim_dump(claim)
    refs: set[str] = set()
    for ln in dump["lines"]:
        refs.update(ln["why"]["from"])
    for nb in dump["not_billed"]:
        refs.add(nb["subject"])
        refs.update(nb["why"]["from"])
    for f in dump["findings"]:
        refs.add(f["subject"])
        refs.update(f["why"]["from"])
    out = []
    for a in doc.get("administrations", []):
        aid = str(a.get("id"))
        drugs = [f"{aid}.drugs[{j}]" for j in range(len(a.get("drugs", [])))]
        if aid not in refs and not any(r in refs for r in drugs):
            out.append(f"administration {aid} is named nowhere on the claim")
        out += [f"drug {r} is named nowhere on the claim" for r in drugs if r not in refs]
    return out


CLAIM_CHECKS = (check_one_initial_per_group, check_addons_have_primary, check_additional_hours,
                check_clean_iff_no_error, check_drug_units_cover_dose, check_everything_accounted)


def check_claim(doc: dict, claim) -> list[str]:
    """Every single-claim invariant of this module."""
    return [m for check in CLAIM_CHECKS for m in check(doc, claim)]


def assert_invariants(docs: Sequence[dict], claims: Sequence[Any], policy: Optional[str] = None,
                      rules: Sequence[str] = (), switches: Sequence[str] = ()) -> None:
    """Check every claim; on a violation, print the encounter as a pasteable case file
    (hypothesis ``note``), with the policy, rule files and switches it was coded under, and fail."""
    bad = []
    for doc, claim in zip(docs, claims):
        problems = check_claim(doc, claim)
        if problems:
            note(case_yaml(doc, claim, name=f"invariant: {problems[0]}", problems=problems, policy=policy,
                           rules=rules, switches=switches))
            bad.append(f"{doc.get('id')}: " + "; ".join(problems))
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------------------------
# signatures and transformations


def admin_signature(claim) -> list[tuple]:
    """(code, modifiers, total units) of the administration lines (CPT 96xxx). Units of the same
    code are added over dates: a service after midnight is its own line on the next date, so
    moving the clock across midnight may split a line without changing any code."""
    total: dict[tuple, int] = {}
    for ln in claim.lines:
        if ln.code.startswith("96"):
            key = (ln.code, tuple(ln.modifiers))
            total[key] = total.get(key, 0) + ln.units
    return sorted((code, mods, units) for (code, mods), units in total.items())


def claim_signature(claim) -> dict:
    """What must not move when only the clock moves: administration lines, the set of drug
    codes billed, rejected candidates and findings (codes and subjects)."""
    return {
        "admin": admin_signature(claim),
        "drug_codes": sorted({ln.code for ln in claim.lines if not ln.code.startswith("96")}),
        "not_billed": sorted((nb.subject, nb.candidate, nb.why.rule) for nb in claim.not_billed),
        "findings": sorted((f.code, f.severity, f.subject) for f in claim.findings),
    }


def shift_times(doc: dict, minutes: int) -> dict:
    """Every start and stop moved by the same number of minutes (date of service unchanged),
    written as HH:MM on the date of service and as ISO datetimes on other days."""
    from .model import absolute_time

    out = copy.deepcopy(doc)
    dos = dt.date.fromisoformat(str(out["date_of_service"]))
    origin = dt.datetime.combine(dos, dt.time())
    for a in out.get("administrations", []):
        for key in ("start", "stop"):
            if a.get(key):
                moment = absolute_time(dos, str(a[key])) + dt.timedelta(minutes=minutes)
                a[key] = _time_text(dos, int((moment - origin).total_seconds() // 60))
    return out


def reorder(doc: dict, order: Sequence[int]) -> dict:
    out = copy.deepcopy(doc)
    adms = out.get("administrations", [])
    out["administrations"] = [adms[i] for i in order]
    return out


def rename_ids(doc: dict, prefix: str = "zz") -> tuple[dict, dict[str, str]]:
    """Administration ids renamed in the same sort order (so ties break the same way); returns
    the new document and the map new id -> old id."""
    out = copy.deepcopy(doc)
    adms = out.get("administrations", [])
    old = sorted(a["id"] for a in adms)
    new = {o: f"{prefix}_{i:03d}" for i, o in enumerate(old)}
    for a in adms:
        a["id"] = new[a["id"]]
    return out, {v: k for k, v in new.items()}


def unrename(dump: Any, back: dict[str, str]) -> Any:
    """A claim dump with renamed ids put back (whole-word replacement in every string)."""
    if not back:
        return dump
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(back, key=len, reverse=True)) + r")\b")
    if isinstance(dump, dict):
        return {k: unrename(v, back) for k, v in dump.items()}
    if isinstance(dump, list):
        return [unrename(v, back) for v in dump]
    if isinstance(dump, str):
        return pattern.sub(lambda m: back[m.group(1)], dump)
    return dump


def add_kvo(doc: dict, start_offset: int = 0, minutes: int = 120, with_bag: bool = True, access: Optional[str] = None) -> dict:
    """The encounter plus a keep-vein-open fluid through an existing access (domain-rules 5.5)."""
    from .model import absolute_time

    out = copy.deepcopy(doc)
    dos = dt.date.fromisoformat(str(out["date_of_service"]))
    origin = dt.datetime.combine(dos, dt.time())
    adms = out.setdefault("administrations", [])
    first = min((absolute_time(dos, str(a["start"])) for a in adms), default=origin + dt.timedelta(hours=8))
    t0 = int((first - origin).total_seconds() // 60) + start_offset
    kvo: dict[str, Any] = {
        "id": "kvo_line",
        "route": "iv_infusion",
        "access": access or (adms[0].get("access", "main") if adms else "main"),
        "start": _time_text(dos, t0),
        "stop": _time_text(dos, t0 + minutes),
        "purpose": "kvo",
        "drugs": [{"hcpcs": "J7050", "dose": {"value": 250, "unit": "mL"}}] if with_bag else [],
    }
    adms.append(kvo)
    return out


def case_yaml(doc: Any, claim=None, name: str = "generated case", problems: Iterable[str] = (),
              policy: Optional[str] = None, rules: Sequence[str] = (), switches: Sequence[str] = ()) -> str:
    """A case file (a one-case YAML list) a rule author can paste into tests/cases/: the
    encounter, the policy, rule files (absolute paths, plus their text as comments so the case
    still says what ran when the files move) and switches it was coded under, and as ``expect``
    what the engine produced now, to be corrected by hand."""
    from pathlib import Path

    import yaml

    case: dict[str, Any] = {"name": name}
    if problems:
        case["description"] = "found by a property test: " + "; ".join(problems)
    if policy and policy != "medicare":
        case["policy"] = policy
    if switches:
        case["switches"] = list(switches)
    if rules:
        case["rules_files"] = [str(Path(r).resolve()) for r in rules]
    case["encounter"] = doc
    if claim is not None:
        d = claim_dump(claim)
        case["expect"] = {
            "lines": [{"code": ln["code"], "units": ln["units"], "modifiers": ln["modifiers"], "rule": ln["why"]["rule"]}
                      for ln in d["lines"]],
            "clean": d["clean"],
        }
    text = yaml.safe_dump([case], sort_keys=False, allow_unicode=True, width=110)
    head = "# Paste into tests/cases/<topic>.yaml and correct expect: to what the rules should give.\n"
    for r in rules:
        try:
            body = Path(r).read_text(encoding="utf-8")
        except OSError:
            continue
        head += f"# rules file {Path(r).resolve()} as it was:\n" + "".join(f"#   {ln}\n" for ln in body.splitlines())
    return head + text
