"""``oncologic data status``: the loaded tables by kind, the dates of service each version covers,
where it came from, and the gaps between versions."""

from __future__ import annotations

from pathlib import Path

from .store import read_manifest


def _layers(user: Path) -> list[tuple[str, Path, dict]]:
    from .. import refdata

    out = [("shipped", refdata.FACTS, read_manifest(refdata.FACTS))]
    if user.is_dir() and user.resolve() != refdata.FACTS.resolve():
        out.append(("user", user, read_manifest(user)))
    return out


def _names(path: Path) -> list[str]:
    """The table names a fact file declares (mue(office), mue(facility), ...)."""
    import re

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return sorted(set(re.findall(r'^table\("[^"]*",([a-z_0-9()]+),', text, re.M)))


def status_report(user: Path) -> dict:
    """{"tables": {kind: [version rows]}, "gaps": {kind: [...]}, "layers": {...}}."""
    rows: dict[str, dict[str, dict]] = {}
    layers = {}
    for layer, folder, manifest in _layers(user):
        layers[layer] = str(folder)
        for name, e in manifest.get("tables", {}).items():
            row = {"file": name, "layer": layer, "version": e["version"], "part": e["part"],
                   "from": e["effective_from"], "to": e["effective_to"], "source": e["source"]["file"],
                   "source_sha256": e["source"]["sha256"], "facts": e["facts_total"], "title": e["title"],
                   "tables": _names(folder / name)}
            rows.setdefault(e["kind"], {})[name] = row  # a user file replaces the shipped one of that name
    tables = {k: sorted(v.values(), key=lambda r: (r["from"], r["file"])) for k, v in sorted(rows.items())}
    return {"layers": layers, "tables": tables, "gaps": {k: _setting_gaps(k, v) for k, v in tables.items()}}


def _setting_gaps(kind: str, rows: list[dict]) -> list[str]:
    """The gaps of a table; an MUE or PTP table per setting (mue(office), ncci(facility), ...):
    a setting whose first version starts later than the others', or that has none at all."""
    if kind not in ("mue", "ncci"):
        return _gaps(rows)
    names = {f"{kind}(office)", f"{kind}(facility)"} | {n for r in rows for n in r["tables"] if n.startswith(kind + "(")}
    starts = [r["from"] for r in rows if r["from"] != "none"]
    out = []
    for name in sorted(names):
        sub = [r for r in rows if name in r["tables"]]
        if not sub:
            out.append(f"{name}: no version loaded")
            continue
        first = min(r["from"] for r in sub)
        if starts and first > min(starts):
            out.append(f"{name}: before {first}")
        out += [f"{name}: {gap}" for gap in _gaps(sub)]
    return out


def _gaps(rows: list[dict]) -> list[str]:
    """Dates of service between the end of one version and the start of the next (quarterly tables)."""
    import datetime as dt

    spans = sorted({(r["from"], r["to"]) for r in rows if r["from"] not in ("none",)})
    out = []
    for (f1, t1), (f2, _t2) in zip(spans, spans[1:]):
        if t1 == "open":
            continue
        nxt = dt.date.fromisoformat(t1) + dt.timedelta(days=1)
        if nxt < dt.date.fromisoformat(f2):
            out.append(f"{nxt.isoformat()} .. {(dt.date.fromisoformat(f2) - dt.timedelta(days=1)).isoformat()}")
    if spans and spans[-1][1] not in ("open",):
        out.append(f"after {spans[-1][1]}")
    return out


def status_text(report: dict) -> str:
    lines = [f"{layer}: {folder}" for layer, folder in report["layers"].items()]
    for kind, rows in report["tables"].items():
        lines.append("")
        lines.append(f"{kind}:")
        for r in rows:
            part = f" [{r['part']}]" if r["part"] else ""
            names = [n for n in r["tables"] if "(" in n]
            part += f" {' '.join(names)}" if names else ""
            lines.append(f"  {r['version'] or '-':<8}{part:<12} {r['from']} .. {r['to']:<10} {r['facts']:>7} facts  "
                         f"{r['layer']:<7} {r['source']} (sha256 {r['source_sha256'][:12]})")
        for gap in report["gaps"][kind]:
            lines.append(f"  no version covers: {gap}")
    return "\n".join(lines)
