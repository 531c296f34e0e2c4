"""The public entry point: code encounters into claims, batch-first.

>>> from oncologic.solver import code_encounters
>>> claims = code_encounters([load_file("examples/seed_session.yaml")])

One batch is one ground program: every encounter of the batch gets a small integer number and
its own facts; the rules never join across encounters, so the claim of an encounter is the
same whether it is coded alone or with thousands of others (a property test checks this).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from . import refdata
from .facts import encounter_facts
from .load import Loaded
from .model import Claim


def rule_paths(policy: Optional[str] = "medicare", rules: Sequence[str | Path] = ()) -> list[Path]:
    """Extra rule files on top of the standard ones: a payer profile (or the files of a policy
    package, a directory) and a user's own files."""
    out: list[Path] = []
    if policy:
        out += refdata.policy_files(policy)
    out += [Path(r).resolve() for r in rules]
    return out


DEFAULT = "default"  # the limits of oncologic.limits.default_limits()


def code_encounters(
    batch: Sequence[Loaded],
    policy: Optional[str] = "medicare",
    rules: Sequence[str | Path] = (),
    policies: Optional[Sequence[Sequence[str]]] = None,
    strict: bool = True,
    limits: Any = DEFAULT,
) -> list[Claim]:
    """Claims for a batch of validated encounters, in input order.

    ``policy`` names a profile in ``encodings/policies`` or a policy package (a directory);
    ``rules`` adds user rule files; ``policies`` optionally gives per-encounter switches (one
    sequence per encounter). ``limits`` (:class:`oncologic.limits.Limits`; None = none) bounds
    the solve's time and memory: past one, :class:`oncologic.limits.LimitExceeded`.
    """
    from . import engine
    from .render import build_claim

    prog, answers, contexts = solve_batch(batch, policy, rules, policies, strict, limits)
    return [build_claim(prog, answers.get(ctx.number, engine.Answer()), ctx) for ctx in contexts]


def solve_batch(
    batch: Sequence[Loaded],
    policy: Optional[str] = "medicare",
    rules: Sequence[str | Path] = (),
    policies: Optional[Sequence[Sequence[str]]] = None,
    strict: bool = True,
    limits: Any = DEFAULT,
):
    """One solve for the batch: (program, answers by encounter number, contexts in input order).
    The raw answers serve the case runner's ``rules:`` checks and ``oncologic explain``.
    The solve runs under ``limits`` (see :func:`code_encounters`)."""
    from . import engine
    from .limits import default_limits, run_limited

    extra = rule_paths(policy, rules)
    facts = []
    contexts = []
    for e, loaded in enumerate(batch, start=1):
        switches = tuple(policies[e - 1]) if policies else ()
        fs, ctx = encounter_facts(loaded, e, switches)
        facts.extend(fs)
        contexts.append(ctx)
    facts += site_batch_facts(batch, facts, extra)
    lim = default_limits() if limits is DEFAULT else limits
    if lim is None or not lim.active:
        prog, answers = engine.solve(facts, extra, strict=strict)
        return prog, answers, contexts
    # parse and check the rule files here (their errors are named in this process, and the
    # parsed program is inherited by the forked child); a program read from the on-disk cache
    # is parsed here from its second solve on, as engine.solve does in one process
    prog = engine.load_program(extra)
    statements = prog.statements
    lazy = getattr(statements, "solved", None) is not None
    if lazy and statements.solved and not statements.parsed:
        len(statements)
    answers = run_limited(lambda: engine.solve(facts, extra, strict=strict)[1], lim, engine._user_files(prog))
    if lazy:
        statements.solved = True
    return prog, answers, contexts


def site_batch_facts(batch: Sequence[Loaded], facts: list, extra: Sequence[Path]) -> list:
    """The charge master and fee schedule rows of the batch's sites (facts.site_facts)."""
    if not any(getattr(getattr(b, "site", None), "has_charges", False) or getattr(getattr(b, "site", None), "has_fee_schedule", False)
               for b in batch):
        return []
    from . import engine
    from .facts import site_facts

    return site_facts(list(batch), facts, engine.program_codes(engine.load_program(extra)))


def code_one(loaded: Loaded, **kw) -> Claim:
    return code_encounters([loaded], **kw)[0]
