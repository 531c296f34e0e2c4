"""Answers -> claims: merge charge contributions into lines, attach reasons, order, and print.

Nothing here decides a code. The encodings say what is billed (``charge/5``), with which
modifiers, what was rejected and what is at risk; this module groups contributions that share
a line key and a date, puts lines in claim order, and writes JSON or a readable table.
"""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable

from .engine import Answer, Program
from .explain import plain, reasons
from .facts import Const, Context, Fn
from .model import Claim, Finding, Line, NdcQuantity, NotBilled, Why

# Claim order of modifiers: pricing (25, 53) and distinct-service modifiers before the
# informational ones (waste, 340B, clinical trial). Unknown modifiers follow, alphabetically.
MODIFIER_ORDER = ["25", "53", "59", "XE", "XP", "XS", "XU", "JW", "JZ", "JG", "TB", "Q0", "Q1"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_DIM_WORDS = {"mcg": "mcg", "ul": "mL", "unit": "units", "uci": "uCi", "each": "each"}


@lru_cache(maxsize=4096, typed=True)  # pure; amounts repeat across a batch (speed only)
def amount_text(value: Any, dim: str) -> str:
    """An integer amount in the engine's small unit, in the unit a coder reads."""
    if not isinstance(value, int):
        return plain(value)
    if dim == "mcg" and value >= 1000:
        return f"{_num(Decimal(value) / 1000)} mg"
    if dim == "ul":
        return f"{_num(Decimal(value) / 1000)} mL"
    return f"{value} {_DIM_WORDS.get(dim, dim)}"


def _num(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text


def _sort_key(value: Any) -> tuple:
    t = type(value)  # fast paths for the exact types; subclasses take the checks below
    if t is int:
        return (0, value)
    if t is str:
        return (1, value)
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, Const):
        return (2, value.name)
    if isinstance(value, Fn):
        return (3, value.name, tuple(_sort_key(a) for a in value.args))
    if isinstance(value, tuple):
        return (4, tuple(_sort_key(a) for a in value))
    return (5, repr(value))


def _mod_key(mod: str) -> tuple:
    return (MODIFIER_ORDER.index(mod), "") if mod in MODIFIER_ORDER else (len(MODIFIER_ORDER), mod)


def _merge_why(parts: list[tuple[str, str, list[str]]], extra_refs: Iterable[str]) -> Why:
    if not parts:
        return Why(rule="engine.unexplained", text="(no tagged rule explains this item)", **{"from": sorted(set(extra_refs))})
    rule = parts[0][0]
    texts: list[str] = []
    refs: list[str] = []
    for _rid, text, rrefs in parts:
        if text not in texts:
            texts.append(text)
        for r in rrefs:
            if r not in refs:
                refs.append(r)
    for r in extra_refs:
        if r not in refs:
            refs.append(r)
    return Why(rule=rule, text=" ".join(texts), **{"from": refs})


def build_claim(prog: Program, ans: Answer, ctx: Context) -> Claim:
    # Speed only (docs/performance.md): the claim is many small objects and no reference cycles;
    # with the cyclic garbage collector running, a batch re-scanned every live object of the chunk
    # (its answers and the claims already built) several times per claim, more than half of the
    # rendering time. It is paused while one claim is built and restored after.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_claim(prog, ans, ctx)
    finally:
        if enabled:
            gc.enable()


def _build_claim(prog: Program, ans: Answer, ctx: Context) -> Claim:
    enc = ctx.encounter
    why = ans.why

    # --- lines ------------------------------------------------------------------------------
    # lines the trial's billing grid gives to the sponsor are not billed to the payer: they leave
    # the claim (their not_billed entry, citing the grid, says why)
    withheld = {key for (key,) in ans.atoms.get("withheld", [])}
    withheld_parts = set(ans.atoms.get("withheld_part", []))  # (key, source): one part of a line
    groups: dict[tuple, dict[str, Any]] = {}
    for key, code, units, source in ans.atoms.get("charge", []):
        if key in withheld or (key, source) in withheld_parts:
            continue
        date = ctx.date_of(source)
        gk = (key, date)
        g = groups.setdefault(gk, {"code": code, "units": 0, "sources": [], "parts": []})
        g["units"] += units
        g["sources"].append(source)
        g["parts"].append(reasons(prog, why.get(("charge", (key, code, units, source)), []), ctx))
    mods: dict[Any, list[str]] = {}
    mod_parts: dict[Any, list] = {}
    for key, mod in ans.atoms.get("charge_mod", []):
        mods.setdefault(key, []).append(mod)
        mod_parts.setdefault(key, []).extend(reasons(prog, why.get(("charge_mod", (key, mod)), []), ctx))
    extra_from: dict[Any, list[str]] = {}
    for key, ref in ans.atoms.get("line_from", []):
        extra_from.setdefault(key, []).append(ctx.ref(ref))
    notes: dict[Any, list[str]] = {}
    for key, note in ans.atoms.get("line_note", []):
        notes.setdefault(key, []).append(plain(note))
    items: dict[Any, list[tuple]] = {}
    for key, order, value in ans.atoms.get("line_note_item", []):
        items.setdefault(key, []).append((_sort_key(order), plain(value)))
    for key, parts in items.items():
        notes.setdefault(key, []).append(" ".join(v for _o, v in sorted(parts)))
    ndcs: dict[Any, str] = {}
    for key, ndc in ans.atoms.get("line_ndc", []):
        ndcs.setdefault(key, ndc)
    qtys: dict[Any, tuple[int, str]] = {}
    for key, qty, unit in ans.atoms.get("line_ndc_qty", []):
        qtys.setdefault(key, (qty, unit.name if isinstance(unit, Const) else str(unit)))
    amounts: dict[Any, tuple[int, str]] = {}
    for key, per_unit, version in ans.atoms.get("line_amount", []):
        amounts.setdefault(key, (per_unit, version))
    line_dx: dict[Any, list[tuple[int, str]]] = {}
    for key, pos, dx in ans.atoms.get("line_dx", []):
        line_dx.setdefault(key, []).append((pos, dx))

    lines: list[Line] = []
    ordered = sorted(groups.items(), key=lambda kv: (_sort_key(kv[0][0]), kv[0][1]))
    for number, ((key, date), g) in enumerate(ordered, start=1):
        sources_sorted = sorted(g["sources"], key=_sort_key)
        parts_in_order = [p for _s, ps in sorted(zip(g["sources"], g["parts"]), key=lambda sp: _sort_key(sp[0])) for p in ps]
        refs = [ctx.ref(s) for s in sources_sorted] + extra_from.get(key, [])
        parts = parts_in_order + mod_parts.get(key, [])
        qty = qtys.get(key)
        dx = [c for _p, c in sorted(line_dx[key])] if key in line_dx else list(enc.diagnoses)
        lines.append(
            Line(
                line=number,
                code=g["code"],
                modifiers=sorted(set(mods.get(key, [])), key=_mod_key),
                units=g["units"],
                date=date,
                diagnoses=dx,
                ndc=ndcs.get(key),
                ndc_quantity=NdcQuantity(value=_qty_value(qty[0]), unit=qty[1]) if qty else None,
                note="; ".join(sorted(set(notes[key]))) if key in notes else None,
                asp_limit=_asp(amounts.get(key), g["units"]),
                why=_merge_why(parts, refs),
            )
        )

    # --- rejected candidates -------------------------------------------------------------------
    not_billed = []
    for subject, candidate in sorted(ans.atoms.get("not_billed", []), key=lambda a: (_sort_key(a[0]), a[1])):
        # a payer rule's payer_drop/3 (encodings/claim/payer_drop.lp): its own sentence is the reason
        parts = reasons(prog, why.get(("not_billed", (subject, candidate))) or why.get(("payer_drop", (subject, candidate)), []), ctx)
        not_billed.append(NotBilled(subject=ctx.ref(subject), candidate=candidate, why=_merge_why(parts, [ctx.ref(subject)])))

    # --- findings ---------------------------------------------------------------------------
    findings = []
    raw = ans.atoms.get("finding", [])
    for fcode, sev, subject in sorted(raw, key=lambda a: (SEVERITY_ORDER.get(_name(a[1]), 9), a[0], _sort_key(a[2]))):
        parts = reasons(prog, why.get(("finding", (fcode, sev, subject)), []), ctx)
        w = _merge_why(parts, [ctx.ref(subject)])
        findings.append(Finding(code=fcode, severity=_name(sev), subject=ctx.ref(subject), message=w.text, why=w))

    claim_data: dict[str, list[str]] = {}
    for name, value in ans.atoms.get("claim_info", []):
        claim_data.setdefault(_name(name), []).append(plain(value))
    claim_data = {k: sorted(set(v)) for k, v in sorted(claim_data.items())}

    clean = not any(f.severity == "error" for f in findings)
    return Claim(
        encounter=enc.id,
        setting=enc.setting,
        lines=lines,
        not_billed=not_billed,
        findings=findings,
        claim_data=claim_data,
        clean=clean,
    )


def _asp(amount, units: int):
    from .model import AspLimit

    if amount is None:
        return None
    per_unit, version = amount
    per = Decimal(per_unit) / 1000
    total = (per * units).quantize(Decimal("0.01"))
    return AspLimit(per_unit=f"{per:.3f}", total=f"{total:.2f}", quarter=plain(version))


def _name(value: Any) -> str:
    return value.name if isinstance(value, Const) else str(value)


def _qty_value(thousandths: int):
    d = Decimal(thousandths) / 1000
    return int(d) if d == d.to_integral_value() else float(d)


# --------------------------------------------------------------------------------------------
# output


def claim_json(claim: Claim) -> str:
    data = claim.model_dump(mode="json", by_alias=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _wrap(text: str, width: int, indent: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent) or [indent]


def claim_table(claim: Claim, width: int = 100) -> str:
    out: list[str] = []
    status = "clean" if claim.clean else "NOT clean (errors below)"
    out.append(f"Claim for encounter {claim.encounter} ({claim.setting}) - {status}")
    out.append("")
    if claim.lines:
        out.append(f"{'#':>3}  {'code':<7} {'mods':<8} {'units':>5}  {'date':<10}  {'NDC / qty':<24} rule")
        out.append("-" * min(width, 100))
        for ln in claim.lines:
            ndc = ""
            if ln.ndc:
                ndc = ln.ndc + (f" {ln.ndc_quantity.unit}{ln.ndc_quantity.value}" if ln.ndc_quantity else "")
            out.append(
                f"{ln.line:>3}  {ln.code:<7} {' '.join(ln.modifiers):<8} {ln.units:>5}  {ln.date.isoformat():<10}  {ndc:<24} {ln.why.rule}"
            )
            out += _wrap(ln.why.text, width, "       ")
            if ln.note:
                out += _wrap(f"note: {ln.note}", width, "       ")
    else:
        out.append("(no billable lines)")
    if claim.not_billed:
        out.append("")
        out.append("Considered and not billed:")
        for nb in claim.not_billed:
            out.append(f"  - {nb.candidate} for {nb.subject} [{nb.why.rule}]")
            out += _wrap(nb.why.text, width, "      ")
    if claim.findings:
        out.append("")
        out.append("Findings:")
        for f in claim.findings:
            out.append(f"  - {f.severity.upper():<7} {f.code} ({f.subject}) [{f.why.rule}]")
            out += _wrap(f.message, width, "      ")
    return "\n".join(out) + "\n"
