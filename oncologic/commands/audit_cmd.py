"""``oncologic audit``: compare a posted claim with what the documentation supports."""

from __future__ import annotations

import sys

import click

from ..cli import _fail_input


@click.command("audit")
@click.argument("encounter", type=click.Path(allow_dash=True))
@click.option("--posted", "posted", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The posted claim: an X12 837P/837I interchange or the claim JSON of the contract.")
@click.option("--from", "source", type=click.Choice(["native", "fhir"]), default="native", show_default=True,
              help="Format of ENCOUNTER.")
@click.option("--policy", default="medicare", show_default=True, help="Payer policy profile.")
@click.option("--switch", "switches", multiple=True, help="Policy switch of decisions.md (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the gaps as JSON.")
@click.option("--no-fixes", is_flag=True, help="Skip the search for the smallest documentation fix.")
def audit(encounter: str, posted: str, source: str, policy: str, switches: tuple[str, ...], as_json: bool, no_fixes: bool) -> None:
    """List missed and unsupported charges of a posted claim, line by line, with reasons,
    the dollars at the ASP limit for drugs, and the smallest documentation fix.

    Exit status: 0 when the posted claim matches, 1 when there are gaps, 2 on bad input."""
    from ..audit import audit as run_audit
    from ..audit import audit_json, audit_table, read_posted
    from ..engine import EncodingError
    from ..load import InputError, load_file, read_text

    try:
        if source == "fhir":
            from ..formats.fhir import load_bundle

            loaded = load_bundle(encounter)
        else:
            loaded = load_file(encounter)
        text, name = read_text(posted)
        lines = read_posted(text, loaded.encounter.id, name)
    except InputError as exc:
        _fail_input(exc)
        sys.exit(2)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    try:
        result = run_audit(loaded, lines, policy=policy, switches=switches, search_fixes=not no_fixes)
    except InputError as exc:
        _fail_input(exc)
        sys.exit(2)
    except (EncodingError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(audit_json(result) if as_json else audit_table(result), nl=False)
    sys.exit(0 if result.clean else 1)
