"""``oncologic rules``: every rule id with its family, source reference and file:line."""

from __future__ import annotations

import json

import click


@click.command("rules")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (id, family, text, ref, places, effective).")
@click.option("--family", "family", default=None, help="Only the rules of this family (e.g. admin, hydration).")
@click.option("--policy", default=None, help="Also list the rules of this payer profile (encodings/policies/NAME.lp).")
@click.option("--rules", "extra", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Also list the rules of this file (repeatable).")
def rules(as_json: bool, family: str | None, policy: str | None, extra: tuple[str, ...]) -> None:
    """List every rule id with its family, source reference and file:line."""
    import sys

    from ..engine import EncodingError, load_program
    from ..solver import rule_paths

    try:
        prog = load_program(rule_paths(policy, extra))
    except (EncodingError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    seen: dict[str, dict] = {}
    for r in prog.rules:
        entry = seen.setdefault(r.tag.id, {"id": r.tag.id, "family": r.tag.family, "text": r.tag.text,
                                           "ref": r.tag.ref, "places": [], "effective": []})
        entry["places"].append(f"{r.tag.file}:{r.tag.line}")
        if r.tag.effective and r.tag.effective not in entry["effective"]:
            entry["effective"].append(r.tag.effective)
    items = sorted(seen.values(), key=lambda x: x["id"])
    if family:
        items = [it for it in items if it["family"] == family]
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    current = None
    for it in items:
        if it["family"] != current:
            current = it["family"]
            click.echo(f"[{current}]")
        click.echo(f"  {it['id']:<42} {', '.join(it['places'])}")
        if it["ref"]:
            click.echo(f"  {'':<42} source: {it['ref']}")
        if it["effective"]:
            click.echo(f"  {'':<42} effective (dates of service): {', '.join(it['effective'])}")
    click.echo(f"{len(items)} rule id(s)")
