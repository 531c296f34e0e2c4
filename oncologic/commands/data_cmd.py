"""``oncologic data``: import agency reference files, show what is loaded, verify it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

_DIR_HELP = "Data folder for imports (default: $ONCOLOGIC_DATA_DIR, else the per-user folder)."


def _folder(data_dir: str | None) -> Path:
    from ..refimport.store import default_data_dir

    return Path(data_dir) if data_dir else default_data_dir()


@click.group("data")
def data() -> None:
    """Import CMS/FDA reference files, show the loaded versions, verify them."""


@data.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--data-dir", default=None, help=_DIR_HELP)
@click.option("--effective", default=None, help="Effective date (YYYY-MM-DD) for files that do not state one (NCCI MUE/PTP copies).")
@click.option("--setting", type=click.Choice(["office", "facility"]), default=None, help="Setting of a PTP table that does not state it.")
def import_(paths: tuple[str, ...], data_dir: str | None, effective: str | None, setting: str | None) -> None:
    """Import files or folders exactly as downloaded; each file is recognised by its content."""
    from ..refimport.core import parse_iso
    from ..refimport.readers import Options
    from ..refimport.store import import_paths

    day = parse_iso(effective) if effective else None
    if effective and day is None:
        click.echo(f"--effective: {effective!r} is not a date YYYY-MM-DD", err=True)
        sys.exit(2)
    folder = _folder(data_dir)
    results, rejected = import_paths([Path(p) for p in paths], folder, Options(day, setting))
    for r in results:
        click.echo(f"{r['status']:<9} {r['kind']} {r['version'] or '-'} -> {folder / r['file']} ({r['facts']} facts, from {r['source']})")
    for exc in rejected:
        click.echo(f"rejected  {exc}", err=True)
    if rejected:
        sys.exit(2)


@data.command("status")
@click.option("--data-dir", default=None, help=_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(data_dir: str | None, as_json: bool) -> None:
    """Every table, its versions, the dates of service each covers, source and hash, and gaps."""
    from ..refimport.status import status_report, status_text

    report = status_report(_folder(data_dir))
    click.echo(json.dumps(report, indent=1, sort_keys=True) if as_json else status_text(report))


@data.command("verify")
@click.option("--data-dir", default=None, help=_DIR_HELP)
def verify(data_dir: str | None) -> None:
    """Check that every fact file still matches its manifest entry (hash and counts)."""
    from .. import refdata
    from ..refimport.store import verify as verify_folder

    problems = verify_folder(refdata.FACTS) + verify_folder(_folder(data_dir))
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(1)
    click.echo("ok: every fact file matches the manifest")
