"""``oncologic audit``: compare a posted claim with what the documentation supports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import _fail_input, echo_err


@click.command("audit")
@click.argument("encounter", type=click.Path(allow_dash=True))
@click.option("--posted", "posted", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The posted claim(s): an X12 837P/837I interchange (one or many claims) or the claim JSON of the contract.")
@click.option("--claim", "claim_id", default=None,
              help="Audit the posted claim with this CLM01 (default: the claim for the encounter's member id and date of service).")
@click.option("--from", "source", type=click.Choice(["native", "fhir"]), default="native", show_default=True,
              help="Format of ENCOUNTER.")
@click.option("--policy", default="medicare", show_default=True, help="Payer policy profile.")
@click.option("--switch", "switches", multiple=True, help="Policy switch of decisions.md (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the gaps as JSON.")
@click.option("--no-fixes", is_flag=True, help="Skip the search for the smallest documentation fix.")
def audit(encounter: str, posted: str, claim_id, source: str, policy: str, switches: tuple[str, ...], as_json: bool,
          no_fixes: bool) -> None:
    """List missed and unsupported charges of a posted claim, line by line, with reasons,
    their dollar value (ASP limit for drugs, else the posted charge), and the smallest
    documentation fix.

    ENCOUNTER is one encounter file, or a folder of encounters / a JSON Lines file: then every
    encounter is paired with its posted claim by member id and date of service, and a summary
    of the money by rule ("patterns of error") comes first.

    Exit status: 0 when the posted claim matches, 1 when there are gaps (or a claim belongs to
    another patient or date), 2 on bad input."""
    from ..cli import check_policy, check_switches

    check_policy(policy)
    check_switches(switches)
    if Path(encounter).is_dir() or encounter.endswith((".jsonl", ".ndjson")):
        _audit_folder(encounter, posted, policy, as_json, no_fixes)
        return
    from ..audit import audit as run_audit
    from ..audit import audit_json, audit_table, read_posted_claim
    from ..engine import EncodingError
    from ..load import InputError, load_file, read_text

    try:
        if source == "fhir":
            from ..formats.fhir import load_bundle

            loaded = load_bundle(encounter)
        else:
            loaded = load_file(encounter)
        text, name = read_text(posted)
        lines, selection = read_posted_claim(text, loaded.encounter, name, claim_id)
    except InputError as exc:
        _fail_input(exc)
        sys.exit(2)
    for warning in loaded.warnings:
        echo_err(f"warning: {warning}")
    try:
        result = run_audit(loaded, lines, policy=policy, switches=switches, search_fixes=not no_fixes, selection=selection)
    except InputError as exc:
        _fail_input(exc)
        sys.exit(2)
    except (EncodingError, ValueError) as exc:
        echo_err(f"error: {exc}")
        sys.exit(2)
    click.echo(audit_json(result) if as_json else audit_table(result), nl=False)
    sys.exit(0 if result.clean else 1)


def _audit_folder(encounters: str, posted: str, policy: str, as_json: bool, no_fixes: bool) -> None:
    from ..audit_batch import audit_batch, batch_json, batch_table, load_encounters
    from ..engine import EncodingError
    from ..load import InputError, read_text
    from ..posted import PostedError, read_837

    try:
        loaded = load_encounters(encounters)
        text, name = read_text(posted)
        try:
            claims = read_837(text)
        except PostedError as exc:
            raise InputError([("(posted)", str(exc))], name) from None
    except InputError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(2)
    try:
        result = audit_batch(loaded, claims, policy=policy, search_fixes=not no_fixes)
    except (EncodingError, ValueError) as exc:
        echo_err(f"error: {exc}")
        sys.exit(2)
    click.echo(batch_json(result) if as_json else batch_table(result), nl=False)
    clean = all(r.clean for r in result.results) and not result.unmatched_encounters and not result.ambiguous
    sys.exit(0 if clean else 1)
