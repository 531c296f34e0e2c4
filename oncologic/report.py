"""HTML report: the session as a picture, or a batch as a summary. One self-contained file (inline
CSS and SVG, no script, no network).

One encounter -> a timeline: each access site is a lane; each administration is a bar from start
to stop, coloured by the family the encodings gave it (chemotherapy, therapeutic, hydration);
administrations that overlap in one lane are stacked so concurrency is visible; the codes each
bar produced are written on it; time the rules did not count is shaded (hatched) with the
reason in a tooltip and in the list under the picture. Then the claim lines, the candidates not
billed and the findings, each with its reason.

A batch (JSON Lines, one encounter per line) -> a summary: clean-claim rate, findings by code,
dollars at risk (ASP-limit totals of the drug lines on claims that are not clean), the worst
encounters linked to their timelines, which follow in the same file.

Nothing here decides a code: families, billed codes, excluded time and reasons are atoms of the
one answer set. The report solves with a small display-only program on top of the standard
rules that #shows the family of each administration and the time segments the rules did not
count (see ``_SHOW``); if the rules ever stop deriving those predicates, the bars are drawn grey
and unshaded rather than guessed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Sequence

from .load import InputError, Loaded, read_text, validate
from .model import Claim

# display-only: show what the rules derived; decides nothing
_SHOW = """\
% oncologic report: display-only view of derived atoms (no coding decision here).
report_family(E,A,F) :- family(E,A,F).
report_tail(E,A,P) :- dur(E,A,M), remainder(M,P).
report_busy(E,T1,T2) :- nxt(E,T1,T2), drug_busy(E,T1).
#show report_family/3.
#show report_tail/3.
#show report_busy/3.
"""

FAMILY_COLOURS = {"chemo": "#c0392b", "ther": "#2e6fd8", "hydr": "#27ae60"}
FAMILY_NAMES = {"chemo": "chemotherapy", "ther": "therapeutic", "hydr": "hydration"}
UNKNOWN_COLOUR = "#8a8a8a"


def _show_file() -> Path:
    digest = hashlib.sha1(_SHOW.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"oncologic-report-show-{digest}.lp"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(_SHOW, encoding="utf-8")
        tmp.replace(path)
    return path


@dataclass
class Bar:
    admin: str
    access: str
    start: int  # minutes from the encounter origin
    stop: Optional[int]
    family: Optional[str]
    label: str
    codes: list[str] = field(default_factory=list)
    excluded: list[tuple[int, int, str]] = field(default_factory=list)  # (from, to, reason)
    whole_excluded: Optional[str] = None
    row: int = 0


@dataclass
class Session:
    """One encounter of a report: its claim, and (when the encounter itself was read) the input and
    the timeline; a claim read from `oncologic batch` output has neither (``loaded`` is None)."""

    claim: Claim
    loaded: Optional[Loaded]
    origin: Optional[dt.datetime] = None
    bars: list[Bar] = field(default_factory=list)
    lanes: list[str] = field(default_factory=list)


def code_sessions(batch: Sequence[Loaded], policy: Optional[str] = "medicare", rules: Sequence[str] = ()) -> list[Session]:
    """Solve the batch once, with the display view on top; one Session per encounter."""
    from . import engine
    from .facts import encounter_facts
    from .render import build_claim
    from .solver import rule_paths, site_batch_facts

    facts, contexts = [], []
    for e, loaded in enumerate(batch, start=1):
        fs, ctx = encounter_facts(loaded, e, ())
        facts.extend(fs)
        contexts.append(ctx)
    extra = rule_paths(policy, rules)
    facts += site_batch_facts(batch, facts, extra)
    try:
        prog, answers = engine.solve(facts, [*extra, _show_file()])
    except engine.EncodingError:
        prog, answers = engine.solve(facts, extra)
    sessions = []
    for loaded, ctx in zip(batch, contexts):
        ans = answers.get(ctx.number, engine.Answer())
        claim = build_claim(prog, ans, ctx)
        sessions.append(_session(loaded, ctx, ans, claim))
    return sessions


def _session(loaded: Loaded, ctx: Any, ans: Any, claim: Claim) -> Session:
    family = {a: f.name if hasattr(f, "name") else str(f) for a, f in ans.atoms.get("report_family", [])}
    tails = {a: p for a, p in ans.atoms.get("report_tail", [])}
    busy = [(t1, t2) for t1, t2 in ans.atoms.get("report_busy", [])]
    codes_of: dict[int, list[str]] = {}
    units: dict[tuple[int, str], int] = {}
    for _key, code, n, source in ans.atoms.get("charge", []):
        a = source if isinstance(source, int) else (source.args[0] if hasattr(source, "args") and source.name == "d" else None)
        if a is None:
            continue
        units[(a, code)] = units.get((a, code), 0) + n
        if code not in codes_of.setdefault(a, []):
            codes_of[a].append(code)
    nb_by_admin: dict[str, list[str]] = {}
    for nb in claim.not_billed:
        nb_by_admin.setdefault(nb.subject.split(".")[0], []).append(f"{nb.candidate} not billed: {nb.why.text}")
    billed_admins = set(codes_of)
    bars: list[Bar] = []
    for a, (start, stop) in sorted(ctx.admin_minutes.items(), key=lambda kv: (kv[1][0], kv[0])):
        adm = ctx.admin(a)
        label_codes = [c if units[(a, c)] == 1 else f"{c}×{units[(a, c)]}" for c in codes_of.get(a, [])]
        bar = Bar(admin=adm.id, access=adm.access, start=start, stop=stop, family=family.get(a),
                  label=adm.id, codes=label_codes)
        reasons = nb_by_admin.get(adm.id, [])
        if stop is not None and a in tails and reasons:
            bar.excluded.append((stop - tails[a], stop, " ".join(reasons)))
        if family.get(a) == "hydr" and stop is not None:
            for t1, t2 in busy:
                lo, hi = max(t1, start), min(t2, stop)
                if lo < hi:
                    bar.excluded.append((lo, hi, "a drug was running: hydration concurrent with another administration is not counted"))
        if a not in billed_admins and reasons:
            bar.whole_excluded = " ".join(reasons)
        bars.append(bar)
    lanes: list[str] = []
    for b in bars:
        if b.access not in lanes:
            lanes.append(b.access)
    for lane in lanes:  # stack overlapping bars of one lane in rows
        ends: list[int] = []
        for b in [x for x in bars if x.access == lane]:
            end = b.stop if b.stop is not None and b.stop > b.start else b.start + 5
            for r, e in enumerate(ends):
                if e <= b.start:
                    b.row = r
                    ends[r] = end
                    break
            else:
                b.row = len(ends)
                ends.append(end)
    return Session(claim=claim, loaded=loaded, origin=ctx.origin, bars=bars, lanes=lanes)


# ---------------------------------------------------------------------------------------------
# HTML

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d2733;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.meta{color:#556;font-size:13px;margin-bottom:12px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.clean{background:#27ae60}.notclean{background:#c0392b}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;width:100%}
th,td{border-bottom:1px solid #e6eaef;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.why{color:#445;font-size:12px}.rule{font-family:ui-monospace,monospace;font-size:11px;color:#6b5}
.sev-error{color:#c0392b;font-weight:600}.sev-warning{color:#b9770e;font-weight:600}.sev-info{color:#2e6fd8}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
.kpi{display:inline-block;margin:0 18px 12px 0;padding:10px 14px;border:1px solid #dde3ea;border-radius:8px}
.kpi b{display:block;font-size:22px}.kpi span{font-size:12px;color:#556}
section.enc{margin-top:36px;padding-top:8px;border-top:3px solid #dde3ea}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
"""

PX_PER_MIN = 4.0
LANE_LABEL = 110
ROW_H = 34
LANE_GAP = 14
TOP = 28
PLOT_W = 1100  # pixels of time axis the page aims at
GAP_MIN = 240  # a stretch of more than 4 hours with no start or stop is cut out of the axis...
BREAK_PAD = 30  # ...keeping 30 minutes on either side of it...
BREAK_W = 56  # ...and drawn as a break of this many pixels, labelled with the time it stands for
LABEL_H = 13  # height of one line of labels written above the bars
CHAR_W = {10: 6.0, 11: 6.6, 12: 7.2}  # about how wide one character is at each font size (px)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _clock(origin: dt.datetime, minutes: float) -> str:
    return (origin + dt.timedelta(minutes=minutes)).strftime("%H:%M")


def _day_clock(origin: dt.datetime, minutes: float) -> str:
    """The clock time, with the day after the first one (``09:10 +2d``)."""
    moment = origin + dt.timedelta(minutes=minutes)
    days = (moment.date() - origin.date()).days
    return moment.strftime("%H:%M") + (f" +{days}d" if days else "")


def _duration(minutes: int) -> str:
    h, m = divmod(int(minutes), 60)
    return f"{h} h {m:02d} min" if m else f"{h} h"


class TimeAxis:
    """Minutes -> x, with the long idle stretches cut out (a broken axis). A stretch of more than
    GAP_MIN minutes in which nothing starts or stops (a 46-hour pump running after a two-hour
    chair session) keeps BREAK_PAD minutes at each end and the rest becomes a break of BREAK_W
    pixels, so the chair session keeps a readable scale."""

    def __init__(self, bars: Sequence["Bar"]):
        events = sorted({t for b in bars for t in (b.start, b.stop if b.stop is not None else b.start + 5)})
        self.t0 = (events[0] // 30) * 30 - 15
        self.t1 = -(-events[-1] // 30) * 30 + 15
        self.breaks: list[tuple[int, int]] = []
        for a, b in zip(events, events[1:]):
            if b - a > GAP_MIN:
                self.breaks.append((a + BREAK_PAD, b - BREAK_PAD))
        shown = (self.t1 - self.t0) - sum(hi - lo for lo, hi in self.breaks)
        shown = max(shown, 60)
        self.scale = min(PX_PER_MIN, (PLOT_W - BREAK_W * len(self.breaks)) / shown)
        self.segments: list[tuple[int, int]] = []
        lo = self.t0
        for b0, b1 in self.breaks:
            self.segments.append((lo, b0))
            lo = b1
        self.segments.append((lo, self.t1))
        self.width = LANE_LABEL + shown * self.scale + BREAK_W * len(self.breaks) + 20

    def x(self, t: float) -> float:
        pos = LANE_LABEL
        for i, (lo, hi) in enumerate(self.segments):
            if t <= hi or i == len(self.segments) - 1:
                return pos + (max(t, lo) - lo) * self.scale
            pos += (hi - lo) * self.scale
            b0, b1 = self.breaks[i]
            if t < b1:  # inside the break: proportionally across it
                return pos + (t - b0) / (b1 - b0) * BREAK_W
            pos += BREAK_W
        return pos

    def ticks(self, origin: dt.datetime) -> list[tuple[float, str, bool]]:
        """(x, label or "", major) of the grid lines; labels never overlap (a label that would is
        left off, its line kept)."""
        need = max(len(_day_clock(origin, t)) for t in (self.t0, self.t1)) * CHAR_W[11] + 10
        step = next((m for m in (15, 30, 60, 120, 180, 240, 360, 720) if m * self.scale >= need), 1440)
        out: list[tuple[float, str, bool]] = []
        right = -1e9
        for lo, hi in self.segments:
            t = (lo // step + 1) * step
            while t < hi:
                xt = self.x(t)
                label = _day_clock(origin, t)
                half = len(label) * CHAR_W[11] / 2
                if xt - half >= right + 6 and xt + half <= self.width:
                    out.append((xt, label, True))
                    right = xt + half
                else:
                    out.append((xt, "", False))
                t += step
        return out


def _text_w(text: str, size: int) -> float:
    return len(text) * CHAR_W[size]


def _place_labels(bars: Sequence["Bar"], axis: TimeAxis) -> dict[int, tuple[str, int, float]]:
    """Where each bar's label goes: (inside | above, level, x). A label that does not fit inside
    its bar is written above it, on the first line (level) of its row where it overlaps no other
    label; the row grows by one line per level used."""
    placed: dict[int, tuple[str, int, float]] = {}
    taken: dict[tuple[str, int], list[list[tuple[float, float]]]] = {}
    for i, b in sorted(enumerate(bars), key=lambda ib: (ib[1].start, ib[0])):
        x0 = axis.x(b.start)
        x1 = max(axis.x(b.stop if b.stop is not None else b.start), x0 + 8)
        full = _bar_label(b)
        if _text_w(full, 12) + 12 <= x1 - x0:
            placed[i] = ("inside", 0, x0 + 6)
            continue
        w = _text_w(full, 10)
        lx = min(x0, axis.width - w - 4)
        levels = taken.setdefault((b.access, b.row), [])
        for level, spans in enumerate(levels):
            if all(lx + w + 6 <= a or lx >= c + 6 for a, c in spans):
                spans.append((lx, lx + w))
                placed[i] = ("above", level, lx)
                break
        else:
            levels.append([(lx, lx + w)])
            placed[i] = ("above", len(levels) - 1, lx)
    return placed


def _bar_label(b: "Bar") -> str:
    return f"{b.admin}: {' '.join(b.codes)}" if b.codes else f"{b.admin}: not billed" if b.whole_excluded else b.admin


def timeline_svg(s: Session) -> str:
    if not s.bars:
        return '<p class="why">No administrations.</p>'
    axis = TimeAxis(s.bars)
    width = axis.width
    x = axis.x
    labels = _place_labels(s.bars, axis)
    # each row of a lane is as tall as its bars plus the label lines written above them
    extra: dict[tuple[str, int], int] = {}
    for i, b in enumerate(s.bars):
        kind, level, _lx = labels[i]
        if kind == "above":
            extra[(b.access, b.row)] = max(extra.get((b.access, b.row), 0), level + 1)
    row_y: dict[tuple[str, int], float] = {}
    lane_y: dict[str, tuple[float, float]] = {}
    y = TOP + 4
    for lane in s.lanes:
        top = y
        for r in range(1 + max(b.row for b in s.bars if b.access == lane)):
            y += extra.get((lane, r), 0) * LABEL_H
            row_y[(lane, r)] = y
            y += ROW_H
        lane_y[lane] = (top, y - top)
        y += LANE_GAP
    height = y + 10

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="session timeline">',
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
           '<rect width="6" height="6" fill="#ffffff" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#1d2733" stroke-width="2" stroke-opacity="0.55"/></pattern></defs>']
    for lane, (ly, lh) in lane_y.items():
        out.append(f'<rect x="0" y="{ly - 3}" width="{width:.0f}" height="{lh + 6}" fill="#f6f8fb"/>')
        out.append(f'<text class="lane" x="8" y="{ly + 20}" font-size="12" font-weight="600" fill="#1d2733">{_e(lane)}</text>')
    for xt, label, major in axis.ticks(s.origin):
        out.append(f'<line x1="{xt:.1f}" y1="{TOP - 6}" x2="{xt:.1f}" y2="{height - 8}" stroke="{"#c9d1db" if major else "#eef1f5"}" stroke-width="1"/>')
        if label:
            out.append(f'<text class="tick" x="{xt:.1f}" y="{TOP - 10}" font-size="11" text-anchor="middle" fill="#556">{_e(label)}</text>')
    for b in s.bars:
        by = row_y[(b.access, b.row)]
        colour = FAMILY_COLOURS.get(b.family or "", UNKNOWN_COLOUR)
        stop = b.stop if b.stop is not None else b.start
        x0, x1 = x(b.start), max(x(stop), x(b.start) + 8)
        fam = FAMILY_NAMES.get(b.family or "", "family not derived")
        span_text = (f"{_day_clock(s.origin, b.start)}-{_day_clock(s.origin, b.stop)} ({_duration(b.stop - b.start)})"
                     if b.stop is not None else f"{_day_clock(s.origin, b.start)} (no stop time)")
        tip = f"{b.admin}: {fam}, {span_text}; codes: {', '.join(b.codes) or 'none'}"
        out.append(f'<g class="bar" data-admin="{_e(b.admin)}" data-family="{_e(b.family or "")}" data-codes="{_e(" ".join(b.codes))}">')
        out.append(f'<rect class="bar-body" x="{x0:.1f}" y="{by + 2}" width="{x1 - x0:.1f}" height="{ROW_H - 6}" rx="4" fill="{colour}"><title>{_e(tip)}</title></rect>')
        for lo, hi, reason in b.excluded:
            out.append(f'<rect class="excluded" x="{x(lo):.1f}" y="{by + 2}" width="{max(x(hi) - x(lo), 2):.1f}" height="{ROW_H - 6}" rx="2" fill="url(#hatch)"><title>{_e(reason)}</title></rect>')
        if b.whole_excluded:
            out.append(f'<rect class="excluded" x="{x0:.1f}" y="{by + 2}" width="{x1 - x0:.1f}" height="{ROW_H - 6}" rx="4" fill="url(#hatch)"><title>{_e(b.whole_excluded)}</title></rect>')
        full = _bar_label(b)
        kind, level, lx = labels[s.bars.index(b)]
        if kind == "inside":
            out.append(f'<text class="codes" x="{lx:.1f}" y="{by + ROW_H / 2 + 3}" font-size="12" font-weight="600" fill="#ffffff">'
                       f'{_e(full)}<title>{_e(full)}</title></text>')
        else:  # a push or a short bar: the label goes on a line of its own above the bar
            ty = by - level * LABEL_H - 1
            out.append(f'<line x1="{x0 + 1:.1f}" y1="{ty + 2:.1f}" x2="{x0 + 1:.1f}" y2="{by + 2}" stroke="#1d2733" stroke-opacity="0.35"/>'
                       if level else "")
            out.append(f'<text class="codes" x="{lx:.1f}" y="{ty:.1f}" font-size="10" fill="#1d2733">{_e(full)}<title>{_e(full)}</title></text>')
        out.append("</g>")
    # the breaks: a white band with two slanted strokes over every lane, the time it stands for on top
    for b0, b1 in axis.breaks:
        xa, xb = x(b0) + 6, x(b0) + BREAK_W - 6
        out.append(f'<g class="axis-break" data-minutes="{b1 - b0}">')
        out.append(f'<rect x="{xa:.1f}" y="{TOP - 4}" width="{xb - xa:.1f}" height="{height - TOP - 6}" fill="#ffffff" fill-opacity="0.82"/>')
        for xs in (xa, xb - 8):
            out.append(f'<line x1="{xs:.1f}" y1="{height - 8}" x2="{xs + 8:.1f}" y2="{TOP - 4}" stroke="#556" stroke-width="1.5"/>')
        out.append(f'<text class="tick break" x="{(xa + xb) / 2:.1f}" y="{height - 1}" font-size="10" text-anchor="middle" fill="#556">'
                   f'{_e(_duration(b1 - b0))}<title>{_e(_duration(b1 - b0))} cut out of the time axis (nothing starts or stops)</title></text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(x for x in out if x)


def _legend() -> str:
    items = "".join(f'<span><i style="background:{c}"></i>{_e(FAMILY_NAMES[f])}</span>' for f, c in FAMILY_COLOURS.items())
    items += f'<span><i style="background:{UNKNOWN_COLOUR}"></i>family not derived</span>'
    items += ('<span><svg width="14" height="10" style="vertical-align:middle;margin-right:4px"><rect width="14" height="10" fill="#888"/>'
              '<rect width="14" height="10" fill="url(#hatch)"/></svg>time not counted (reason on hover and below)</span>')
    return f'<div class="legend">{items}</div>'


def session_html(s: Session, anchor: str = "") -> str:
    c = s.claim
    enc = s.loaded.encounter if s.loaded is not None else None
    status = '<span class="badge clean">clean</span>' if c.clean else '<span class="badge notclean">not clean</span>'
    out = [f'<section class="enc" id="{_e(anchor)}">' if anchor else "<section>",
           f"<h1>Encounter {_e(c.encounter)} {status}</h1>"]
    if enc is not None:
        payer = f" · {_e(enc.payer.name or enc.payer.type)}" if enc.payer else ""
        out += [f'<div class="meta">{_e(enc.setting)} · {_e(enc.date_of_service.isoformat())}{payer} · diagnoses {_e(", ".join(enc.diagnoses))}</div>',
                "<h2>Timeline</h2>", _legend(), timeline_svg(s)]
    else:
        dates = sorted({ln.date.isoformat() for ln in c.lines})
        out += [f'<div class="meta">{_e(c.setting)} · {_e(", ".join(dates) or "no lines")} · from the claim in the oncologic batch output '
                '(the timeline needs the encounter itself: <code>oncologic report ENCOUNTER</code>)</div>']
    out.append(money_html(c))
    excluded = [(b.admin, r) for b in s.bars for _lo, _hi, r in b.excluded] + [(b.admin, b.whole_excluded) for b in s.bars if b.whole_excluded]
    if excluded:
        out.append("<h2>Time not counted</h2><table><tr><th>administration</th><th>reason</th></tr>")
        out += [f'<tr><td>{_e(a)}</td><td class="why">{_e(r)}</td></tr>' for a, r in excluded]
        out.append("</table>")
    out.append('<h2>Claim lines</h2><table class="lines"><tr><th>#</th><th>code</th><th>mods</th><th>units</th><th>NDC</th><th>ASP limit</th>'
               '<th>charge</th><th>expected Medicare payment</th><th>why</th></tr>')
    for ln in c.lines:
        asp = f"${ln.asp_limit.total}" if ln.asp_limit else ""
        charge = f"${Decimal(ln.charge):,.2f}" if ln.charge else "—"
        pay = ln.payment
        if pay is not None and pay.program_payment is not None:
            paid = (f'<b>${Decimal(pay.program_payment):,.2f}</b><div class="why">allowed ${Decimal(pay.allowed):,.2f}, coinsurance '
                    f'${Decimal(pay.coinsurance):,.2f}, sequestration ${Decimal(pay.sequestration):,.2f}</div>')
        else:
            paid = "not computed"
        basis = f'<div class="why basis">{_e(pay.basis)}</div>' if pay is not None else ""
        out.append(f'<tr><td class="num">{ln.line}</td><td><b>{_e(ln.code)}</b></td><td>{_e(" ".join(ln.modifiers))}</td>'
                   f'<td class="num">{ln.units}</td><td>{_e(ln.ndc or "")}</td><td class="num">{_e(asp)}</td>'
                   f'<td class="num charge">{_e(charge)}</td><td class="pay">{paid}{basis}</td>'
                   f'<td class="why">{_e(ln.why.text)} <span class="rule">{_e(ln.why.rule)}</span></td></tr>')
    out.append("</table>")
    if c.not_billed:
        out.append("<h2>Considered and not billed</h2><table><tr><th>candidate</th><th>for</th><th>why</th></tr>")
        out += [f'<tr><td>{_e(nb.candidate)}</td><td>{_e(nb.subject)}</td><td class="why">{_e(nb.why.text)} <span class="rule">{_e(nb.why.rule)}</span></td></tr>'
                for nb in c.not_billed]
        out.append("</table>")
    if c.findings:
        out.append("<h2>Findings</h2><table><tr><th>severity</th><th>code</th><th>subject</th><th>message</th></tr>")
        out += [f'<tr><td class="sev-{_e(f.severity)}">{_e(f.severity)}</td><td>{_e(f.code)}</td><td>{_e(f.subject)}</td>'
                f'<td class="why">{_e(f.message)} <span class="rule">{_e(f.why.rule)}</span></td></tr>' for f in c.findings]
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out)


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
            '<svg width="0" height="0" style="position:absolute"><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            '<rect width="6" height="6" fill="#ffffff" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#1d2733" stroke-width="2" stroke-opacity="0.55"/></pattern></defs></svg>\n'
            f"{body}\n</body></html>\n")


def dollars_at_risk(claim: Claim) -> Decimal:
    """Money at stake: the expected allowed amount of the lines an error finding rests on (the
    claim's ``at_stake``; a finding about the whole claim puts every line at stake); 0 for a claim
    without errors."""
    if claim.at_stake is None:
        return Decimal(0)
    return Decimal(claim.at_stake.allowed)


def expected_payment(claim: Claim) -> Optional[Decimal]:
    """The claim's expected Medicare payment (its priced lines), or None."""
    if claim.payment is None or claim.payment.program_payment is None:
        return None
    return Decimal(claim.payment.program_payment)


def money_html(c: Claim) -> str:
    """The claim's money: total charge, expected Medicare payment, money at stake."""
    charge = f"${Decimal(c.total_charge):,.2f}" if c.total_charge else "not known"
    pay = expected_payment(c)
    paid = f"${pay:,.2f}" if pay is not None else "not computed"
    basis = _e(c.payment.basis) if c.payment else "no payment basis"
    stake = c.at_stake
    stake_text = (f"lines {', '.join(map(str, stake.lines))} ({_e(', '.join(stake.findings))})" if stake and stake.lines else "no line has an error")
    if stake and stake.unpriced:
        stake_text += f"; lines {', '.join(map(str, stake.unpriced))} have no expected payment, so their value is not in the amount"
    return ('<div class="money">'
            f'<div class="kpi total-charge"><b>{charge}</b><span>total charge</span></div>'
            f'<div class="kpi expected-payment"><b>{paid}</b><span>expected Medicare payment ({basis})</span></div>'
            f'<div class="kpi at-stake"><b>${dollars_at_risk(c):,.2f}</b><span>at stake: {stake_text}</span></div></div>')


def single_report(s: Session) -> str:
    return _page(f"oncologic - {s.loaded.encounter.id}", session_html(s))


def batch_report(sessions: Sequence[Session], errors: Sequence[dict] = ()) -> str:
    """The summary page of a batch (``errors``: the records of `oncologic batch` output that were
    not coded, listed with their problems)."""
    n = len(sessions)
    clean = sum(1 for s in sessions if s.claim.clean)
    by_code: dict[tuple[str, str], int] = {}
    for s in sessions:
        for f in s.claim.findings:
            by_code[(f.code, f.severity)] = by_code.get((f.code, f.severity), 0) + 1
    risk = [dollars_at_risk(s.claim) for s in sessions]
    total_risk = sum(risk, Decimal(0))
    pays = [expected_payment(s.claim) for s in sessions]
    total_pay = sum((p for p in pays if p is not None), Decimal(0))
    priced = sum(1 for p in pays if p is not None)
    order = sorted(range(n), key=lambda i: (-sum(1 for f in sessions[i].claim.findings if f.severity == "error"), -risk[i],
                                            -len(sessions[i].claim.findings), i))
    body = ["<h1>Batch summary</h1>",
            f'<div class="meta">{n} encounter(s)' + (f", {len(errors)} record(s) not coded" if errors else "") + "</div>",
            f'<div class="kpi" id="clean-rate"><b>{(100 * clean / n if n else 0):.0f}%</b><span>clean claims ({clean} of {n})</span></div>',
            f'<div class="kpi" id="findings-total"><b>{sum(by_code.values())}</b><span>findings</span></div>',
            f'<div class="kpi" id="expected-payment"><b>${total_pay:,.2f}</b><span>expected Medicare payment ({priced} of {n} claims '
            'with priced lines; unpriced lines say why)</span></div>',
            f'<div class="kpi" id="dollars-at-risk"><b>${total_risk:.2f}</b><span>money at stake (expected allowed amount of lines with errors, '
            'denied as the claims stand)</span></div>',
            "<h2>Findings by code</h2><table id=\"findings-by-code\"><tr><th>code</th><th>severity</th><th>encounters</th></tr>"]
    for (code, sev), count in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0])):
        body.append(f'<tr><td>{_e(code)}</td><td class="sev-{_e(sev)}">{_e(sev)}</td><td class="num">{count}</td></tr>')
    body.append("</table><h2>Worst encounters</h2><table id=\"worst\"><tr><th>encounter</th><th>errors</th><th>warnings</th>"
                "<th>expected Medicare payment</th><th>at stake</th><th>status</th></tr>")
    for i in order[:20]:
        c = sessions[i].claim
        nerr = sum(1 for f in c.findings if f.severity == "error")
        warns = sum(1 for f in c.findings if f.severity == "warning")
        paid = f"${pays[i]:,.2f}" if pays[i] is not None else "not computed"
        st = c.at_stake
        extra = f" + {len(st.unpriced)} unpriced line(s)" if st and st.unpriced else ""
        body.append(f'<tr><td><a href="#enc-{i + 1}">{_e(c.encounter)}</a></td><td class="num">{nerr}</td><td class="num">{warns}</td>'
                    f'<td class="num">{paid}</td><td class="num">${risk[i]:.2f}{extra}</td><td>{"clean" if c.clean else "not clean"}</td></tr>')
    body.append("</table>")
    if errors:
        body.append("<h2>Records not coded</h2><table id=\"not-coded\"><tr><th>record</th><th>encounter</th><th>kind</th><th>problems</th></tr>")
        for rec in errors:
            err = rec.get("error") or {}
            probs = "; ".join(f"{p.get('path', '')}: {p.get('message', '')}" if isinstance(p, dict) else str(p) for p in err.get("problems", []))
            body.append(f'<tr><td class="num">{_e(rec.get("record", ""))}</td><td>{_e(rec.get("encounter") or "")}</td>'
                        f'<td>{_e(err.get("kind", ""))}</td><td class="why">{_e(probs)}</td></tr>')
        body.append("</table>")
    body.append("</table>")
    for i, s in enumerate(sessions):
        body.append(session_html(s, anchor=f"enc-{i + 1}"))
    return _page("oncologic - batch summary", "\n".join(body))


def load_batch(path: str, site: Any = None) -> list[Loaded]:
    """Encounters of a JSON Lines file (one encounter document per non-empty line)."""
    text, source = read_text(path)
    out = []
    problems: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((f"line {number}", f"invalid JSON: {exc.msg}"))
            continue
        try:
            out.append(validate(doc, f"{source}:{number}", site))
        except InputError as exc:
            problems += [(f"line {number}: {p}", m) for p, m in exc.problems]
    if problems:
        raise InputError(problems, source)
    if not out:
        raise InputError([("(document)", "no encounter in the file")], source)
    return out


def is_batch_output(path: str) -> bool:
    """True when the first record of a JSON Lines file is `oncologic batch` output (a ``claim`` or
    ``error`` with its ``record`` number) rather than an encounter document."""
    try:
        text, _source = read_text(path)
    except InputError:
        return False
    for line in text.splitlines():
        if line.strip():
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                return False
            return isinstance(first, dict) and "record" in first and ("claim" in first or "error" in first)
    return False


def load_batch_output(path: str) -> tuple[list[Session], list[dict]]:
    """The claims of an `oncologic batch` output file as sessions (no timeline: the output holds
    claims, not encounters), and the records that were not coded. A line that is not a batch
    record is an error naming the line."""
    from pydantic import ValidationError

    text, source = read_text(path)
    sessions: list[Session] = []
    errors: list[dict] = []
    problems: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((f"line {number}", f"invalid JSON: {exc.msg}"))
            continue
        if not isinstance(rec, dict) or not ("claim" in rec or "error" in rec):
            problems.append((f"line {number}", "not a record of `oncologic batch` output (a claim or an error)"))
            continue
        if "error" in rec:
            errors.append(rec)
            continue
        try:
            sessions.append(Session(claim=Claim.model_validate(rec["claim"]), loaded=None))
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            problems.append((f"line {number}: claim.{where}", first.get("msg", "invalid")))
    if problems:
        raise InputError(problems, source)
    if not sessions and not errors:
        raise InputError([("(document)", "no record in the file")], source)
    return sessions, errors
