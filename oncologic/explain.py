"""Reasons: turn provenance records into the ``why`` of lines, rejected candidates and findings.

The encodings say *which* rule fired with *which* values (``_why`` atoms); this module says it
in words, filling the rule's ``%@text`` template. Placeholders: ``{X}`` prints the value,
``{X:fmt}`` formats it with one of :data:`FORMATS`, and ``{A,D:drug}`` passes two values.
"""

from __future__ import annotations

import re
from decimal import Decimal
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


# the description of an administration is asked for by many reasons of the same claim: kept for
# the context last asked about (one claim is rendered at a time; speed only). The pair is read and
# replaced as one tuple, so concurrent threads never share a memo across contexts.
_ADMIN_MEMO: tuple[Any, dict] = (None, {})


def describe_admin(ctx: Context, a: int) -> str:
    global _ADMIN_MEMO
    last = _ADMIN_MEMO
    if last[0] is not ctx:
        last = _ADMIN_MEMO = (ctx, {})
    memo = last[1]
    key = (type(a), a)
    text = memo.get(key)
    if text is None:
        text = memo[key] = _describe_admin(ctx, a)
    return text


def _describe_admin(ctx: Context, a: int) -> str:
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
    # a per-unit price in mills: 3 decimals when the table gives them ($58.123), else 2
    "price": lambda ctx, m: (f"${m / 1000:,.3f}" if m % 10 else f"${m / 1000:,.2f}") if isinstance(m, int) else plain(m),
    # a percentage in thousandths of a percent (17508 -> 17.508 %, 20000 -> 20 %)
    "pct": lambda ctx, p: f"{format((Decimal(p) / 1000).normalize(), 'f')} %" if isinstance(p, int) else plain(p),
    "": lambda ctx, *v: ", ".join(plain(x) for x in v),
}


# Performance (docs/performance.md): a template is split once per process into literal parts and
# formatter calls over the positions of the rule's variables, so rendering a sentence is a loop
# over ready parts instead of a regular-expression substitution per call.
_COMPILED: dict[tuple[str, tuple[str, ...]], tuple[tuple[Any, ...], tuple[tuple[str, tuple], ...]]] = {}


def _compile(rule: TaggedRule) -> tuple[tuple[Any, ...], tuple[tuple[str, tuple], ...]]:
    key = (rule.tag.text, rule.variables)
    done = _COMPILED.get(key)
    if done is not None:
        return done
    index = {name: i for i, name in enumerate(rule.variables)}  # as dict(zip(variables, values))
    text = rule.tag.text
    parts: list[Any] = []
    slots: list[tuple[str, tuple]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        fmt = m.group(2) or ""
        where = tuple(index.get(n) for n in m.group(1).split(","))
        parts.append((FORMATS.get(fmt), where))
        slots.append((fmt, where))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    done = _COMPILED[key] = (tuple(parts), tuple(slots))
    return done


def _args(values: tuple, where: tuple) -> list:
    n = len(values)
    return [values[i] if i is not None and i < n else None for i in where]


def render_text(rule: TaggedRule, values: tuple, ctx: Context) -> str:
    parts, _slots = _compile(rule)
    out: list[str] = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        fn, where = part
        args = _args(values, where)
        try:
            out.append(fn(ctx, *args))  # type: ignore[misc]
        except Exception:  # a template must never crash a claim; show the raw values
            out.append(", ".join(plain(a) for a in args))
    return "".join(out)


def refs_in(values: tuple, rule: TaggedRule, ctx: Context) -> list[str]:
    """Input ids named by the rule's placeholders (admins, drugs, services)."""
    out: list[str] = []
    for fmt, where in _compile(rule)[1]:
        if fmt not in _REF_FORMATS:
            continue
        args = _args(values, where)
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


_REF_FORMATS = frozenset({"adm", "drug", "svc", "ref"})


def _record_key(prog: Program):
    rules = prog.rules
    return lambda r: (rules[r[0]].tag.id, r[0], repr(r[1]))


def reasons(prog: Program, records: list[tuple[int, tuple]], ctx: Context) -> list[tuple[str, str, list[str]]]:
    """(rule id, sentence, input ids) for each provenance record of one atom, in a stable order."""
    if len(records) > 1:
        records = sorted(records, key=_record_key(prog))
    out = []
    rules = prog.rules
    for number, values in records:
        rule = rules[number]
        out.append((rule.tag.id, render_text(rule, values, ctx), refs_in(values, rule, ctx)))
    return out
