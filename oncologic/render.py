"""Answers -> claims: merge charge contributions into lines, attach reasons, order, and print.

Nothing here decides a code. The encodings say what is billed (``charge/5``), with which
modifiers, what was rejected and what is at risk; this module groups contributions that share
a line key and a date, puts lines in claim order, and writes JSON or a readable table.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable, Optional

from .engine import Answer, Program
from .explain import plain, reasons
from .facts import Const, Context, Fn
from .model import AtStake, Claim, Finding, Line, NdcItem, NdcQuantity, NotBilled, Payment, TestResult, Why

# Claim order of modifiers: pricing (25, 53) and distinct-service modifiers before the
# informational ones (waste, 340B, clinical trial). Unknown modifiers follow, alphabetically.
MODIFIER_ORDER = ["25", "53", "59", "XE", "XP", "XS", "XU", "JW", "JZ", "JG", "TB", "Q0", "Q1"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_DIM_WORDS = {"mcg": "mcg", "ul": "mL", "unit": "units", "uci": "uCi", "each": "each"}
_FINE_WORDS = {"ng": "mcg", "munit": "units", "nci": "uCi"}


@lru_cache(maxsize=4096, typed=True)  # pure; amounts repeat across a batch (speed only)
def amount_text(value: Any, dim: str) -> str:
    """An integer amount in the engine's small unit, in the unit a coder reads."""
    if not isinstance(value, int):
        return plain(value)
    if dim == "mcg" and value >= 1000:
        return f"{_num(Decimal(value) / 1000)} mg"
    if dim == "ul":
        return f"{_num(Decimal(value) / 1000)} mL"
    if dim == "uci" and value >= 1000:
        return f"{_num(Decimal(value) / 1000)} mCi"
    if dim == "nci" and value >= 1_000_000:
        return f"{_num(Decimal(value) / 1_000_000)} mCi"
    if dim in _FINE_WORDS:  # a thousandth of mcg, unit, uCi (decimal doses, facts.FINE_DIM)
        if dim == "ng" and value >= 1_000_000:
            return f"{_num(Decimal(value) / 1_000_000)} mg"
        return f"{_num(Decimal(value) / 1000)} {_FINE_WORDS[dim]}"
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


def _test_result(code: str, milli: int, day: int, ref: str) -> "TestResult":
    """An ESA line's hemoglobin/hematocrit result: the value cut to one decimal (NN.N; Palmetto,
    26.25 is reported 26.2), the date of the sample."""
    tenths = milli // 100
    return TestResult(code=code, value=f"{tenths // 10}.{tenths % 10}", unit="g/dL" if code == "R1" else "%",
                      date=dt.date(day // 10000, day // 100 % 100, day % 100), evidence=ref)


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
    for key, name in ans.atoms.get("line_reason", []):  # sentences rules add to a line's why
        mod_parts.setdefault(key, []).extend(reasons(prog, why.get(("line_reason", (key, name)), []), ctx))
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
    ndc_items: dict[Any, list[tuple]] = {}
    for key, ndc, share, qty, unit in ans.atoms.get("line_ndc_item", []):
        ndc_items.setdefault(key, []).append((ndc, share, qty, unit.name if isinstance(unit, Const) else str(unit)))
    amounts: dict[Any, tuple[int, str]] = {}
    for key, per_unit, version in ans.atoms.get("line_amount", []):
        amounts.setdefault(key, (per_unit, version))
    tests: dict[Any, TestResult] = {}
    for key, tcode, milli, day, ref in sorted(ans.atoms.get("line_test", []), key=lambda a: (_sort_key(a[0]), a[1])):
        tests.setdefault(key, _test_result(tcode, milli, day, ctx.ref(ref)))
    line_dx: dict[Any, list[tuple[int, str]]] = {}
    for key, pos, dx in ans.atoms.get("line_dx", []):
        line_dx.setdefault(key, []).append((pos, dx))
    money = _Money(prog, ans, ctx)

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
                ndc_items=_ndc_items(ndc_items.get(key), ndcs.get(key)),
                note="; ".join(sorted(set(notes[key]))) if key in notes else None,
                asp_limit=_asp(amounts.get(key), g["units"]),
                test_result=tests.get(key),
                charge=money.charge(key, g["units"]),
                payment=money.payment(key, g["units"]),
                why=_merge_why(parts, refs),
            )
        )
        money.keys.append(key)

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
        total_charge=_total_charge(lines),
        payment=_claim_payment(lines),
        at_stake=money.at_stake(lines),
        clean=clean,
    )


# --------------------------------------------------------------------------------------------
# money (docs/formats.md, "Money on the claim"): the rules of encodings/claim/payment.lp choose
# every per-unit amount and percentage; here they are multiplied by the line's units and rounded
# once to the cent, half up.

_CENT = Decimal("0.01")


def _cents(mills: Decimal) -> Decimal:
    """Mills (1/1000 dollar, possibly fractional) -> dollars rounded half up to the cent."""
    from decimal import ROUND_HALF_UP

    return (Decimal(mills) / 1000).quantize(_CENT, rounding=ROUND_HALF_UP)


def _pct_of(amount: Decimal, pct: int) -> Decimal:
    """``pct`` thousandths of a percent of a dollar amount, rounded half up to the cent."""
    from decimal import ROUND_HALF_UP

    return (amount * Decimal(pct) / 100000).quantize(_CENT, rounding=ROUND_HALF_UP)


class _Money:
    """The money atoms of one answer, by line key."""

    def __init__(self, prog: Program, ans: Answer, ctx: Context):
        atoms, why = ans.atoms, ans.why
        self.keys: list[Any] = []  # line keys in claim order (filled by the caller)

        def text(name: str, args: tuple) -> str:
            return " ".join(dict.fromkeys(t for _r, t, _f in reasons(prog, why.get((name, args), []), ctx)))

        self.charges: dict[Any, tuple[int, str]] = {}
        for key, mills, how in atoms.get("line_charge", []):
            self.charges.setdefault(key, (mills, _name(how)))
        self.allowed: dict[Any, tuple[int, str]] = {}
        for key, mills in sorted(atoms.get("pay_allowed", []), key=_sort_key):
            self.allowed.setdefault(key, (mills, text("pay_allowed", (key, mills))))
        self.coins: dict[Any, tuple[str, int, str]] = {}
        for key, kind, x in sorted(atoms.get("pay_coins", []), key=_sort_key):
            self.coins.setdefault(key, (_name(kind), x, text("pay_coins", (key, kind, x))))
        self.zero = {key: text("pay_zero", (key,)) for (key,) in atoms.get("pay_zero", [])}
        self.none = {key: text("pay_none", (key,)) for (key,) in atoms.get("pay_none", [])}
        seq = sorted(atoms.get("pay_seq", []))
        self.seq: Optional[tuple[int, str]] = (seq[0][0], text("pay_seq", seq[0])) if seq else None
        self.stake: dict[Any, set[str]] = {}
        for key, code in atoms.get("line_at_stake", []):
            self.stake.setdefault(key, set()).add(code)

    def charge(self, key: Any, units: int) -> Optional[str]:
        hit = self.charges.get(key)
        if hit is None:
            return None
        mills, how = hit
        return f"{_cents(Decimal(mills) * (units if how == 'unit' else 1)):.2f}"

    def payment(self, key: Any, units: int) -> Optional[Payment]:
        if key in self.none:
            return Payment(basis=self.none[key])
        if key in self.zero:
            z = "0.00"
            return Payment(allowed=z, coinsurance=z, program_payment=z, sequestration=z, basis=self.zero[key])
        if key not in self.allowed:
            if not (self.none or self.zero or self.allowed):
                return None  # the money rules are not loaded (a custom rule set)
            return Payment(basis="no payment rule applies to this line (encodings/claim/payment.lp)")
        per_unit, basis = self.allowed[key]
        allowed = _cents(Decimal(per_unit) * units)
        coins = self.coins.get(key)
        if coins is None:
            return Payment(allowed=f"{allowed:.2f}", basis=f"{basis} No coinsurance is known for the line: the program's share is not computed.")
        kind, x, ctext = coins
        share = _pct_of(allowed, x) if kind == "pct" else _cents(Decimal(x) * units)
        share = min(share, allowed)
        seq_pct, stext = self.seq if self.seq else (0, "")
        seq = _pct_of(allowed - share, seq_pct)
        words = " ".join(t for t in (basis, ctext, stext) if t)
        return Payment(allowed=f"{allowed:.2f}", coinsurance=f"{share:.2f}", program_payment=f"{allowed - share - seq:.2f}",
                       sequestration=f"{seq:.2f}", basis=words)

    def at_stake(self, lines: list[Line]) -> AtStake:
        hit = [(ln, self.stake[k]) for ln, k in zip(lines, self.keys) if k in self.stake]
        allowed = sum((Decimal(ln.payment.allowed) for ln, _c in hit if ln.payment and ln.payment.allowed), Decimal(0))
        charges = [ln.charge for ln, _c in hit]
        charge = f"{sum((Decimal(c) for c in charges if c), Decimal(0)):.2f}" if hit and all(charges) else None
        codes = sorted({c for _ln, cs in hit for c in cs})
        unpriced = [ln.line for ln, _c in hit if not (ln.payment and ln.payment.allowed)]
        return AtStake(lines=[ln.line for ln, _c in hit], allowed=f"{allowed:.2f}", unpriced=unpriced, charge=charge, findings=codes)


def _total_charge(lines: list[Line]) -> Optional[str]:
    if not lines or any(ln.charge is None for ln in lines):
        return None
    return f"{sum((Decimal(ln.charge) for ln in lines if ln.charge), Decimal(0)):.2f}"


def _claim_payment(lines: list[Line]) -> Optional[Payment]:
    pays = [ln.payment for ln in lines if ln.payment is not None]
    if not pays:
        return None
    priced = [p for p in pays if p.allowed is not None and p.program_payment is not None]
    open_ = len(lines) - len(priced)
    basis = f"{len(priced)} of {len(lines)} line(s) priced"
    if open_:
        basis += f"; {open_} line(s) without an expected payment (see each line's basis): the totals cover the priced lines only"
    if not priced:
        return Payment(basis=basis)

    def total(field: str) -> str:
        return f"{sum((Decimal(getattr(p, field)) for p in priced), Decimal(0)):.2f}"

    return Payment(allowed=total("allowed"), coinsurance=total("coinsurance"), program_payment=total("program_payment"),
                   sequestration=total("sequestration"), basis=basis)


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


def _ndc_items(items, first) -> Optional[list[NdcItem]]:
    """The NDCs of a line that draws on several: the line's own NDC first, then by NDC."""
    if not items:
        return None
    ordered = sorted(items, key=lambda it: (it[0] != first, it[0]))
    return [NdcItem(ndc=n, units=share, quantity=NdcQuantity(value=_qty_value(q), unit=u) if q >= 0 else None)
            for n, share, q, u in ordered]


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


def _usd(text: Optional[str]) -> str:
    return "-" if text is None else f"${Decimal(text):,.2f}"


def money_words(charge: Optional[str], payment: Optional[Payment]) -> str:
    """One line's charge and expected Medicare payment in words (table and HTML report)."""
    parts = [f"charge {_usd(charge)}" if charge is not None else "charge: none"]
    if payment is not None:
        if payment.allowed is not None and payment.program_payment is not None:
            parts.append(f"expected Medicare payment {_usd(payment.program_payment)} (allowed {_usd(payment.allowed)}, "
                         f"coinsurance {_usd(payment.coinsurance)}, sequestration {_usd(payment.sequestration)})")
        else:
            parts.append("expected Medicare payment: not computed")
        parts.append(f"basis: {payment.basis}")
    return "; ".join(parts)


def _money_summary(claim: Claim) -> list[str]:
    out = [""]
    out.append(f"Total charge: {_usd(claim.total_charge) if claim.total_charge else 'not known (a line has no charge)'}")
    p = claim.payment
    if p is not None:
        if p.program_payment is not None:
            out.append(f"Expected Medicare payment: {_usd(p.program_payment)} (allowed {_usd(p.allowed)}, coinsurance "
                       f"{_usd(p.coinsurance)}, sequestration {_usd(p.sequestration)}; {p.basis})")
        else:
            out.append(f"Expected Medicare payment: not computed ({p.basis})")
    st = claim.at_stake
    if st is not None and st.lines:
        charge = f", charge {_usd(st.charge)}" if st.charge else ""
        unpriced = f"; not priced: lines {', '.join(map(str, st.unpriced))}" if st.unpriced else ""
        out.append(f"At stake (lines with errors, denied as the claim stands): lines {', '.join(map(str, st.lines))}: "
                   f"allowed {_usd(st.allowed)}{charge}{unpriced} ({', '.join(st.findings)})")
    return out


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
            money = money_words(ln.charge, ln.payment)
            if money:
                out += _wrap(money, width, "       ")
    else:
        out.append("(no billable lines)")
    out += _money_summary(claim)
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
