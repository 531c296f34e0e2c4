"""``oncologic batch``: code a JSON Lines file (or a folder of encounter files) into JSON Lines.

Thin: parse options, call :func:`oncologic.batch.run_batch` (or the Dask runner), print the summary.
"""

from __future__ import annotations

import os
import sys

import click

from ..cli import check_policy, check_switches, policy_option, switch_option, echo_err


@click.command("batch")
@click.argument("infile", type=click.Path(allow_dash=True))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="The JSON Lines file to write (default: standard output).")
@click.option("--workers", type=int, default=None,
              help="Worker processes (default: the number of CPUs; 0 codes in this process, without time limit).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run: keep the complete records of OUT, code the rest.")
@policy_option()
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Extra rule file on top of the standard rules (repeatable).")
@switch_option("Turn on one policy switch for every encounter (repeatable).")
@click.option("--chunk-size", type=click.IntRange(1, 100_000), default=250, show_default=True,
              help="Encounters per ground program.")
@click.option("--time-limit", type=click.FloatRange(0.1), default=10.0, show_default=True,
              help="Seconds one encounter may take alone before it becomes a timeout record.")
@click.option("--max-administrations", type=click.IntRange(1), default=None,
              help="Encounters with more administrations become too_large records (default: "
                   "ONCOLOGIC_MAX_ADMINISTRATIONS, else 1000; the other limits: docs/encounter-format.md, Limits).")
@click.option("--dask", "dask_address", default=None, metavar="SCHEDULER_ADDRESS",
              help="Code on a Dask cluster (tcp://host:8786) instead of local worker processes.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on standard error (default: on a terminal).")
@click.option("--site", "site", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Site configuration (TOML): time zone, formulary, payers, locations; see docs/site.md.")
@click.option("--from", "source_format", type=click.Choice(["native", "fhir"]), default="native", show_default=True,
              help="Input format: encounters of the contract, or FHIR R4 (a Bundle, a folder of bundles, NDJSON of bundles or of a bulk export's resources).")
def batch(infile, output, workers, resume, policy, rules, switches, chunk_size, time_limit, max_administrations,
          dask_address, progress, site=None, source_format="native") -> None:
    """Code many encounters: one JSON Lines record per input record, in input order.

    IN is a JSON Lines file (one encounter per line), - for standard input, or a folder of
    .json/.yaml files. Each output line is {"record", "encounter", "claim"} or
    {"record", "encounter", "source", "error": {"kind", "problems": [{"path", "message"}]}}.
    A summary (records, clean rate, findings by code, time) goes to standard error.
    """
    from ..batch import BatchError, BatchOptions, run_batch

    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--workers")
    check_policy(policy)
    check_switches(switches, policy)
    try:
        from .. import refdata

        if policy:
            refdata.policy_files(policy)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    from ..formats.site import load_site
    from ..load import InputError

    try:
        load_site(site)  # a bad site file stops the batch before it starts
    except InputError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(2)
    opts = BatchOptions(
        policy=policy,
        rules=tuple(os.path.abspath(r) for r in rules),
        switches=tuple(switches),
        workers=workers,
        chunk_size=chunk_size,
        time_limit=time_limit,
        max_administrations=max_administrations,
        site=os.path.abspath(site) if site else None,
        source_format=source_format,
    )
    try:
        if dask_address:
            from ..dask_runner import run_dask

            summary = run_dask(infile, output, dask_address, opts, resume=resume, progress=progress)
        else:
            summary = run_batch(infile, output, opts, resume=resume, progress=progress)
    except BatchError as exc:
        echo_err(f"error: {exc}")
        sys.exit(2)
    click.echo(summary.render(), err=True, nl=False)
