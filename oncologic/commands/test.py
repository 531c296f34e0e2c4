"""``oncologic test``: run YAML case files and print each failure as a readable diff."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import limit_options, make_limits


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("-k", "keywords", multiple=True, metavar="NAME",
              help="Run only cases whose 'file.yaml::name' contains NAME (case-insensitive; repeatable; 'not NAME' excludes).")
@click.option("-v", "--verbose", is_flag=True, help="List every case with its result.")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="After the run, list which rule ids the cases exercise and which none does.")
@click.option("--coverage-json", "coverage_json", type=click.Path(dir_okay=False), default=None,
              help="Write the rule coverage (every rule id, its places, the cases that fired it) as JSON to this file.")
@limit_options
def test(paths: tuple[str, ...], keywords: tuple[str, ...], verbose: bool, show_coverage: bool = False,
         coverage_json: str | None = None, time_limit=None, memory_limit=None) -> None:
    """Run YAML case files (default: tests/cases); exit status 1 when a case fails, 2 when a case
    file is broken, 3 when a solve reached the time or memory limit (each group of cases that
    share a policy and rule files is one solve).

    The same files run under pytest through the plugin oncologic installs."""
    from ..cases import CaseFileError, discover, load_cases, report, run_cases, select
    from ..limits import EXIT_LIMIT
    from ..load import safe_text

    roots = [Path(p) for p in paths] or [Path("tests/cases")]
    if not paths and not roots[0].is_dir():
        click.echo("error: no PATHS given and no tests/cases folder here", err=True)
        sys.exit(2)
    files = discover(roots)
    cases = []
    problems = []
    for f in files:
        try:
            cases += load_cases(f)
        except CaseFileError as exc:
            problems.append(str(exc))
    for p in problems:
        click.echo(f"error: {safe_text(p)}", err=True)
    chosen = select(cases, keywords)
    if not chosen:
        click.echo("no cases selected" + (f" by -k {' '.join(keywords)}" if keywords else ""), err=True)
        sys.exit(2 if problems or not cases else 5)
    outcomes = run_cases(chosen, limits=make_limits(time_limit, memory_limit))
    failed = [o for o in outcomes if o.failures]
    skipped = [o for o in outcomes if o.skipped and not o.failures]
    limits = list(dict.fromkeys(o.limit for o in outcomes if o.limit))
    for o in outcomes:
        if o.limit:
            continue
        if o.failures:
            click.echo(safe_text(report(o)))
            click.echo("")
        elif verbose:
            status = f"SKIP ({o.skipped})" if o.skipped else "PASS"
            click.echo(safe_text(f"{status} {o.case.id}"))
    if show_coverage or coverage_json:
        import json

        from ..cases import coverage

        cov = coverage(outcomes)
        if show_coverage:
            click.echo(cov.render())
        if coverage_json:
            Path(coverage_json).write_text(json.dumps(cov.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    passed = len(outcomes) - len(failed) - len(skipped)
    summary = f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped ({len(files)} file(s))"
    click.echo(("FAILED: " if failed or problems else "OK: ") + summary)
    for message in limits:
        click.echo(f"error: {message}", err=True)
    if limits:
        sys.exit(EXIT_LIMIT)
    if problems:
        sys.exit(2)
    sys.exit(1 if failed else 0)
