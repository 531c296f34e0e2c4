"""The ``oncologic`` command. Thin: parse arguments, call the library, print. Imports lazily so
``oncologic --help`` does not load clingo or pydantic."""

from __future__ import annotations

import sys

import click

EXIT_BAD_INPUT = 2


def echo_err(text) -> None:
    """Print one message to standard error with its control characters escaped (untrusted input
    never reaches the terminal raw; oncologic.load.safe_text)."""
    from .load import safe_text

    click.echo(safe_text(text), err=True)


def _fail_input(exc) -> None:
    from .load import safe_text

    for warning in getattr(exc, "warnings", ()):
        click.echo(f"warning: {safe_text(warning)}", err=True)
    click.echo(exc.render(), err=True)
    sys.exit(EXIT_BAD_INPUT)


def check_output_flags(as_json: bool, fmt, config) -> str:
    """The output format of solve; exit 2 when flags contradict each other (--json with another
    --format, --config with an output that has no envelope)."""
    if as_json and fmt not in (None, "json"):
        click.echo(f"error: --json and --format {fmt} ask for two different outputs; give one of them", err=True)
        sys.exit(EXIT_BAD_INPUT)
    fmt = fmt or ("json" if as_json else "table")
    if config is not None and fmt not in ("x12-837p", "x12-837i", "fhir-claim"):
        click.echo(f"error: --config is the envelope of --format x12-837p, x12-837i or fhir-claim; the {fmt} output "
                   "does not read it (drop --config or choose one of those formats)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return fmt


# Commands that live in their own modules, loaded only when called (so --help stays instant).
# name -> ("module", "function", "one-line help")
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "test": (".commands.test", "test", "Run YAML case files; print each failure as a diff of claim lines."),
    "explain": (".commands.explain", "explain", "Show the derivation tree behind a claim line, rejected candidate or finding."),
    "rules": (".commands.rules", "rules", "List every rule id with its family, source reference and file:line."),
    "audit": (".commands.audit_cmd", "audit", "Compare a posted claim (X12 837 or claim JSON) with what the documentation supports."),
    "report": (".commands.report_cmd", "report", "Write a self-contained HTML report: a session timeline, or a batch summary."),
    "data": (".commands.data_cmd", "data", "Import CMS/FDA reference files (by content), show loaded versions and gaps, verify them."),
    "diff": (".commands.diff_cmd", "diff", "Code a corpus under two rule sets (git revisions, folders, files) and show the claims that changed."),
    "batch": (".commands.batch_cmd", "batch", "Code a JSON Lines file or folder of encounters into JSON Lines, in input order."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            import importlib

            module, attr, _help = LAZY_COMMANDS[name]
            return getattr(importlib.import_module(module, __package__), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][2]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def policy_names() -> list[str]:
    """The payer policy profiles shipped (encodings/policies/*.lp), without loading the engine."""
    from . import refdata  # paths only (the checkout, or the installed package's _data)

    return sorted(p.stem for p in refdata.POLICIES.glob("*.lp"))


def switch_names() -> list[str]:
    """The policy switches the standard rules test (``policy(E,name)``), read from the rule files."""
    from .cases import known_switches

    return sorted(known_switches())


class NamesOption(click.Option):
    """An option whose help ends with the valid names, computed only when help is shown (so
    that ``oncologic --help`` and every command stay instant)."""

    def __init__(self, *args, names=None, **kwargs):
        self._names = names
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx):
        record = super().get_help_record(ctx)
        if record is None or self._names is None:
            return record
        try:
            names = ", ".join(self._names())
        except Exception:  # noqa: BLE001 - help must print even from a broken install
            return record
        return record[0], f"{record[1]} Valid: {names}."


def policy_option(help_text: str = "Payer policy profile (encodings/policies/NAME.lp) or a policy package (a directory).",
                  default: str | None = "medicare"):
    return click.option("--policy", default=default, show_default=default is not None, cls=NamesOption,
                        names=policy_names, help=help_text)


def switch_option(help_text: str = "Turn on one policy switch of docs/decisions.md for this run (repeatable)."):
    return click.option("--switch", "switches", multiple=True, cls=NamesOption, names=switch_names, help=help_text)


def check_policy(policy: str | None, option: str = "--policy") -> None:
    """Exit 2 with a message when ``policy`` names no shipped profile (an empty name included)
    and is not a policy package (a directory of rule files)."""
    if policy is None:
        return
    import os

    if policy.strip() and os.path.isdir(policy):
        return
    known = policy_names()
    if policy not in known:
        what = "an empty name" if not policy.strip() else repr(policy)
        click.echo(f"error: {option}: unknown policy profile {what} (valid: {', '.join(known)})", err=True)
        sys.exit(EXIT_BAD_INPUT)


def check_switches(switches, policy=None) -> None:
    """Exit 2 with a message when a --switch names no policy switch: each must be tested by a
    standard rule or by the policy package's own files."""
    if not switches:
        return
    from .cases import known_switches

    try:
        known = set(known_switches(policy)) if policy else set(switch_names())
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    unknown = sorted(set(switches) - known)
    if unknown:
        from .load import safe_text

        click.echo(f"error: --switch: unknown policy switch {safe_text(', '.join(repr(u) for u in unknown))} "
                   f"(valid: {', '.join(sorted(known))})", err=True)
        sys.exit(EXIT_BAD_INPUT)


site_option = click.option(
    "--site", "site", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Site configuration (TOML): time zone, formulary, payers, locations; see docs/site.md.")


def limit_options(fn):
    """--time-limit and --memory-limit of one solve (oncologic.limits; past one: exit status 3)."""
    from .limits import DEFAULT_MEMORY_MB, DEFAULT_TIME_S

    fn = click.option("--memory-limit", "memory_limit", type=click.FloatRange(0), default=None, metavar="MB",
                      help=f"Memory the solve may use beyond the process's own, in MB (default {DEFAULT_MEMORY_MB}, "
                           "or ONCOLOGIC_MEMORY_LIMIT; 0 = none). Past it: exit status 3.")(fn)
    fn = click.option("--time-limit", "time_limit", type=click.FloatRange(0), default=None, metavar="SECONDS",
                      help=f"Wall-clock seconds the solve may take (default {DEFAULT_TIME_S:g}, or ONCOLOGIC_TIME_LIMIT; "
                           "0 = none). Past it: exit status 3.")(fn)
    return fn


def make_limits(time_limit, memory_limit):
    """The Limits of --time-limit/--memory-limit (each None: the default)."""
    from .limits import Limits, default_limits

    base = default_limits()
    return Limits(base.time_s if time_limit is None else time_limit,
                  base.memory_mb if memory_limit is None else memory_limit)


def fail_limit(exc) -> None:
    from .limits import EXIT_LIMIT

    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_LIMIT)


def load_input(file: str, source: str = "native", site_path=None):
    """One encounter as :class:`~oncologic.load.Loaded`: a native file or a FHIR bundle, read with
    the site configuration at ``site_path`` (None: none). Raises InputError."""
    from .formats.site import load_site
    from .load import load_file

    site = load_site(site_path)
    if source == "fhir":
        from .formats.fhir import load_bundle

        return load_bundle(file, site=site)
    return load_file(file, site=site)


def _gc_paused(fn):
    """Run a one-shot command with Python's cyclic garbage collector paused: its imports allocate
    many objects and create no garbage worth collecting (~3 % of `solve`'s start-up,
    docs/performance.md). Restored afterwards (commands also run in-process under tests)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import gc

        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()

    return wrapper


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oncologic")
def main() -> None:
    """Oncology infusion encounters in, claim lines out, with the reason for every line."""


@main.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the claim JSON of the contract.")
@policy_option()
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Extra rule file on top of the standard rules (repeatable).")
@switch_option()
@click.option("--from", "source", type=click.Choice(["native", "fhir"]), default="native", show_default=True, help="Input format: the contract's encounter, or a FHIR R4 Bundle (JSON).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "x12-837p", "x12-837i", "fhir-claim"]), default=None, help="Output format (default table; --json = json).")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False), default=None, help="Envelope config (TOML/YAML/JSON) for x12-837p/x12-837i/fhir-claim; see docs/formats.md.")
@click.option("--zero-charges", is_flag=True, default=False, help="x12: write 0.00 for lines without a charge (a test interchange) instead of refusing.")
@click.option("--placeholders", is_flag=True, default=False, help="x12: write the config's placeholder patient/provider when the encounter has none (a test interchange) instead of refusing.")
@click.option("--control-number", "control_number", type=click.IntRange(1, 999999999), default=None, help="x12: the interchange (ISA13) and group (GS06) control number (default: the config's, or its counter file).")
@click.option("--counter-file", "counter_file", type=click.Path(dir_okay=False), default=None, help="x12: a file holding the last control number used; each 837 takes the next one.")
@site_option
@limit_options
@_gc_paused
def solve(file: str, as_json: bool, policy: str, rules: tuple[str, ...], switches: tuple[str, ...], source: str = "native", fmt=None, config=None, site=None,
          zero_charges: bool = False, placeholders: bool = False, control_number=None, counter_file=None,
          time_limit=None, memory_limit=None) -> None:
    """Code one encounter (JSON or YAML; - for standard input).

    Exit status: 0 the claim was coded, 2 bad input or a rule file broken, 3 the time or memory
    limit was reached."""
    from .engine import EncodingError, StrictModeError
    from .limits import LimitExceeded
    from .load import InputError, safe_text
    from .render import claim_json, claim_table
    from .solver import code_encounters

    fmt = check_output_flags(as_json, fmt, config)
    check_policy(policy)
    check_switches(switches, policy)
    try:
        loaded = load_input(file, source, site)
    except InputError as exc:
        _fail_input(exc)
        return
    for warning in loaded.warnings:
        click.echo(f"warning: {safe_text(warning)}", err=True)
    try:
        claim = code_encounters([loaded], policy=policy, rules=rules, policies=[switches],
                                limits=make_limits(time_limit, memory_limit))[0]
    except InputError as exc:
        _fail_input(exc)
        return
    except LimitExceeded as exc:
        fail_limit(exc)
        return
    except (EncodingError, StrictModeError, ValueError) as exc:
        # a rule file that does not parse or breaks strict mode is bad input too (--rules, --policy)
        click.echo(f"error: {safe_text(exc)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if fmt in ("x12-837p", "x12-837i", "fhir-claim"):
        from .formats.x12 import X12Error, load_config

        try:
            cfg = load_config(config)
            if fmt == "fhir-claim":
                from .formats.fhir_claim import claim_resource_json

                text = claim_resource_json(claim, loaded.encounter, cfg)
            else:
                from .formats.x12 import next_control_number, to_837

                kind = "P" if fmt == "x12-837p" else "I"
                options = {"zero_charges": zero_charges, "placeholders": placeholders}
                text = to_837(claim, loaded.encounter, cfg, kind=kind, **options)  # refuses before a number is used
                counter = counter_file or cfg.counter_file
                if control_number is not None:
                    cfg.control_number = control_number
                elif counter:
                    cfg.control_number = next_control_number(counter, cfg.control_number)
                    text = to_837(claim, loaded.encounter, cfg, kind=kind, **options)
                if control_number is not None:
                    text = to_837(claim, loaded.encounter, cfg, kind=kind, **options)
        except X12Error as exc:
            click.echo(f"error: {safe_text(exc)}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        click.echo(text, nl=False)
        return
    # the table goes to a terminal: no input string reaches it raw (ids, names, notes)
    click.echo(claim_json(claim) if fmt == "json" else safe_text(claim_table(claim)), nl=False)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the encounter input and the claim output."""
    import json

    from .model import Claim, Encounter

    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "oncologic",
        "$defs": {
            "Encounter": Encounter.model_json_schema(ref_template="#/$defs/Encounter/$defs/{model}"),
            "Claim": Claim.model_json_schema(by_alias=True, ref_template="#/$defs/Claim/$defs/{model}"),
        },
    }
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


if __name__ == "__main__":  # pragma: no cover
    main()
