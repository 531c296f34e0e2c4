"""``oncologic report``: a self-contained HTML report of one encounter or of a batch."""

from __future__ import annotations

import sys

import click

from ..cli import _fail_input, load_input, site_option


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
    summary page of a batch (IN: JSON Lines of encounters, with every encounter's timeline linked,
    or the output of `oncologic batch`, whose claims are shown as they are)."""
    from ..engine import EncodingError
    from ..formats.site import load_site
    from ..load import InputError
    from ..report import batch_report, code_sessions, is_batch_output, load_batch, load_batch_output, single_report

    if batch is None:
        batch = infile.endswith((".jsonl", ".ndjson"))
    if batch and infile != "-" and is_batch_output(infile):
        # the output of `oncologic batch`: its claims are reported as they are (no re-coding)
        try:
            sessions, errors = load_batch_output(infile)
        except InputError as exc:
            _fail_input(exc)
            sys.exit(2)
        _write(output, batch_report(sessions, errors))
        click.echo(f"wrote {output} ({len(sessions)} claim(s) from batch output, {len(errors)} record(s) not coded)", err=True)
        return
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
            click.echo(f"warning: {warning}", err=True)
    try:
        sessions = code_sessions(loaded, policy=policy)
    except (EncodingError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _write(output, batch_report(sessions) if batch else single_report(sessions[0]))
    click.echo(f"wrote {output} ({len(sessions)} encounter(s))", err=True)


def _write(output: str, text: str) -> None:
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror}", err=True)
        sys.exit(2)
