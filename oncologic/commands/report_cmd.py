"""``oncologic report``: a self-contained HTML report of one encounter or of a batch."""

from __future__ import annotations

import sys

import click

from ..cli import _fail_input, load_input, site_option, echo_err


@click.command("report")
@click.argument("infile", type=click.Path(allow_dash=True))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--from", "source", type=click.Choice(["native", "fhir"]), default="native", show_default=True,
              help="Format of a single encounter.")
@click.option("--batch/--single", "batch", default=None,
              help="Treat IN as JSON Lines (one encounter per line); default: by the .jsonl/.ndjson suffix.")
@click.option("--policy", default="medicare", show_default=True, help="Payer policy profile.")
@site_option
def report(infile: str, output: str, source: str, batch, policy: str, site=None) -> None:
    """Write a timeline of one encounter (IN: JSON/YAML, or a FHIR Bundle with --from fhir), or a
    summary page of a batch (IN: JSON Lines) with every encounter's timeline linked."""
    from ..cli import check_policy

    check_policy(policy)
    from ..engine import EncodingError
    from ..formats.site import load_site
    from ..load import InputError
    from ..report import batch_report, code_sessions, load_batch, single_report

    if batch is None:
        batch = infile.endswith((".jsonl", ".ndjson"))
    try:
        if batch:
            loaded = load_batch(infile, site=load_site(site))
        else:
            loaded = [load_input(infile, source, site)]
    except InputError as exc:
        _fail_input(exc)
        sys.exit(2)
    for item in loaded:
        for warning in item.warnings:
            echo_err(f"warning: {warning}")
    try:
        sessions = code_sessions(loaded, policy=policy)
    except (EncodingError, ValueError) as exc:
        echo_err(f"error: {exc}")
        sys.exit(2)
    text = batch_report(sessions) if batch else single_report(sessions[0])
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror}", err=True)
        sys.exit(2)
    click.echo(f"wrote {output} ({len(sessions)} encounter(s))", err=True)
