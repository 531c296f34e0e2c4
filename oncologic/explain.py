"""Reasons: turn provenance records into the ``why`` of lines, rejected candidates and findings.

The encodings say *which* rule fired with *which* values (``_why`` atoms); this module says it
in words, filling the rule's ``%@text`` template. Placeholders: ``{X}`` prints the value,
``{X:fmt}`` formats it with one of :data:`FORMATS`, and ``{A,D:drug}`` passes two values.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .engine import Program, TaggedRule
from .facts import Const, Context, Fn

_PLACEHOLDER = re.compile(r"\{([A-Z][A-Za-z0-9_']*(?:,[A-Z][A-Za-z0-9_']*)*)(?::([a-z]+))?\}")

ROUTE_WORDS = {
    "iv_infusion": "IV infusion",
    "iv_push": "IV push",
    "subcutaneous": "SC injection",
    "intramuscular": "IM injection",
    "subcutaneous_infusion": "SC infusion",
    "intralesional": "intralesional injection",
    "intra_arterial_push": "intra-arterial push",
    "intra_arterial_infusion": "intra-arterial infusion",
    "intrathecal": "intrathecal injection",
    "intraperitoneal": "intraperitoneal instillation",
    "intrapleural": "intrapleural instillation",
    "on_body_injector": "on-body injector",
    "implant": "implant",
    "port_flush": "port flush",
    "pump_refill": "pump refill",
}


def plain(value: Any) -> str:
    if isinstance(value, Const):
        return value.name.replace("_", " ")
    if isinstance(value, Fn):
        return f"{value.name}({', '.join(plain(a) for a in value.args)})"
    if isinstance(value, tuple):
        return "(" + ", ".join(plain(a) for a in value) + ")"
    return str(value)


def drug_name(ctx: Context, a: int, d: int) -> str:
    adm = ctx.admin(a)
    drug = adm.drugs[d - 1]
    code = ctx.drug_codes.get((a, d))
    name = drug.name or ""
    if name and code:
        return f"{name} ({code})"
    return name or code or f"drug {d}"


def describe_admin(ctx: Context, a: int) -> str:
    adm = ctx.admin(a)
    what = ", ".join(drug_name(ctx, a, d) for d in range(1, len(adm.drugs) + 1))
    if not what:
        what = adm.purpose or "no drug listed"
    start, stop = ctx.admin_minutes[a]
    when = ctx.clock(start) + (f"-{ctx.clock(stop)}" if stop is not None else "")
    route = ROUTE_WORDS.get(adm.route, adm.route)
    return f"{adm.id} ({what}, {route} {when})"


def _fmt_adm(ctx: Context, a: Any) -> str:
    return describe_admin(ctx, a) if isinstance(a, int) else plain(a)


def _fmt_drug(ctx: Context, a: Any, d: Any) -> str:
    if isinstance(a, int) and isinstance(d, int):
        return f"{drug_name(ctx, a, d)} in {ctx.admin(a).id}"
    return plain((a, d))


def _fmt_svc(ctx: Context, i: Any) -> str:
    if isinstance(i, int):
        svc = ctx.encounter.services[i - 1]
        return f"Service {svc.code} (services[{i - 1}])"
    return plain(i)


def _fmt_amount(ctx: Context, value: Any, dim: Any = None) -> str:
    from .render import amount_text

    return amount_text(value, dim.name if isinstance(dim, Const) else str(dim or ""))


FORMATS: dict[str, Callable[..., str]] = {
    "adm": _fmt_adm,
    "drug": _fmt_drug,
    "svc": _fmt_svc,
    "time": lambda ctx, t: ctx.clock(t) if isinstance(t, int) else plain(t),
    "site": lambda ctx, s: ctx.access_names.get(s, plain(s)) if isinstance(s, int) else plain(s),
    "ref": lambda ctx, r: ctx.ref(r),
    "amount": _fmt_amount,
    "date": lambda ctx, d: f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" if isinstance(d, int) else plain(d),
    "money": lambda ctx, m: f"${m / 1000:,.2f}" if isinstance(m, int) else plain(m),
    "": lambda ctx, *v: ", ".join(plain(x) for x in v),
}


def render_text(rule: TaggedRule, values: tuple, ctx: Context) -> str:
    binding = dict(zip(rule.variables, values))

    def sub(match: re.Match) -> str:
        names = match.group(1).split(",")
        fmt = match.group(2) or ""
        args = [binding.get(n) for n in names]
        try:
            return FORMATS[fmt](ctx, *args)
        except Exception:  # a template must never crash a claim; show the raw values
            return ", ".join(plain(a) for a in args)

    return _PLACEHOLDER.sub(sub, rule.tag.text)


def refs_in(values: tuple, rule: TaggedRule, ctx: Context) -> list[str]:
    """Input ids named by the rule's placeholders (admins, drugs, services)."""
    binding = dict(zip(rule.variables, values))
    out: list[str] = []
    for names, fmt in rule.tag.placeholders():
        args = [binding.get(n) for n in names]
        try:
            if fmt == "adm" and isinstance(args[0], int):
                out.append(ctx.ref(args[0]))
            elif fmt == "drug" and all(isinstance(x, int) for x in args):
                out.append(ctx.ref(Fn("d", tuple(args))))
            elif fmt == "svc" and isinstance(args[0], int):
                out.append(ctx.ref(Fn("s", (args[0],))))
            elif fmt == "ref":
                out.append(ctx.ref(args[0]))
        except (KeyError, IndexError):
            continue
    return out


def reasons(prog: Program, records: list[tuple[int, tuple]], ctx: Context) -> list[tuple[str, str, list[str]]]:
    """(rule id, sentence, input ids) for each provenance record of one atom, in a stable order."""
    out = []
    for number, values in sorted(records, key=lambda r: (prog.rules[r[0]].tag.id, r[0], repr(r[1]))):
        rule = prog.rules[number]
        out.append((rule.tag.id, render_text(rule, values, ctx), refs_in(values, rule, ctx)))
    return out
