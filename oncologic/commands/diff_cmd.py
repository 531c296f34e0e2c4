"""``oncologic diff``: code a corpus under two rule sets and print the claims that changed.

Thin: parse options, call :func:`oncologic.diff.diff_corpus`, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("diff")
@click.argument("corpus", type=click.Path(exists=True))
@click.option("--base-rules", "base", default=None, metavar="SIDE",
              help="The rules before the change: git:REV, an encodings folder, a policy package or rule folder, "
                   "one .lp file; default the standard rules.")
@click.option("--rules", "new", default=None, metavar="SIDE", help="The rules after the change (same forms as --base-rules).")
@click.option("--policy", default=None, help="Payer policy profile for both sides.")
@click.option("--switch", "switches", multiple=True, help="A policy switch for both sides (repeatable).")
@click.option("--site", type=click.Path(exists=True, dir_okay=False), default=None, help="Site configuration for both sides.")
@click.option("--from", "source_format", type=click.Choice(["native", "fhir"]), default="native", show_default=True,
              help="Input format of the corpus.")
@click.option("--workers", type=int, default=None, help="Worker processes per side (default: the number of CPUs).")
@click.option("--json", "as_json", is_flag=True, help="Print the changes and the summary as JSON.")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep both sides' batch outputs (base.jsonl, new.jsonl) in this folder.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when some claim changed (for CI), 0 when none did.")
def diff(corpus, base, new, policy, switches, site, source_format, workers, as_json, keep, exit_code) -> None:
    """Code CORPUS (a JSON Lines file or a folder of encounters) under two rule sets and print, claim
    by claim, the lines and findings that changed, the rule ids responsible and a summary."""
    from ..diff import DiffError, diff_corpus

    if base is None and new is None:
        click.echo("error: give --base-rules, --rules or both (one side defaults to the standard rules)", err=True)
        sys.exit(2)
    args: list[str] = []
    if policy:
        args += ["--policy", policy]
    for s in switches:
        args += ["--switch", s]
    if site:
        args += ["--site", str(Path(site).resolve())]
    if workers is not None:
        args += ["--workers", str(workers)]
    args += ["--from", source_format]
    keep_dir = None
    if keep:
        keep_dir = Path(keep)
        keep_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = diff_corpus(corpus, base, new, args, keep=keep_dir)
    except DiffError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(result.to_json() if as_json else result.render(), nl=False)
    if exit_code and result.changes:
        sys.exit(1)
