"""The public entry point: code encounters into claims, batch-first.

>>> from oncologic.solver import code_encounters
>>> claims = code_encounters([load_file("examples/seed_session.yaml")])

One batch is one ground program: every encounter of the batch gets a small integer number and
its own facts; the rules never join across encounters, so the claim of an encounter is the
same whether it is coded alone or with thousands of others (a property test checks this).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from . import refdata
from .facts import encounter_facts
from .load import Loaded
from .model import Claim


def rule_paths(policy: Optional[str] = "medicare", rules: Sequence[str | Path] = ()) -> list[Path]:
    """Extra rule files on top of the standard ones: a payer profile and a user's own files."""
    out: list[Path] = []
    if policy:
        out.append(refdata.policy_file(policy))
    out += [Path(r).resolve() for r in rules]
    return out


def code_encounters(
    batch: Sequence[Loaded],
    policy: Optional[str] = "medicare",
    rules: Sequence[str | Path] = (),
    policies: Optional[Sequence[Sequence[str]]] = None,
    strict: bool = True,
) -> list[Claim]:
    """Claims for a batch of validated encounters, in input order.

    ``policy`` names a profile in ``encodings/policies``; ``rules`` adds user rule files;
    ``policies`` optionally gives per-encounter switches (one sequence per encounter).
    """
    from . import engine
    from .render import build_claim

    prog, answers, contexts = solve_batch(batch, policy, rules, policies, strict)
    return [build_claim(prog, answers.get(ctx.number, engine.Answer()), ctx) for ctx in contexts]


def solve_batch(
    batch: Sequence[Loaded],
    policy: Optional[str] = "medicare",
    rules: Sequence[str | Path] = (),
    policies: Optional[Sequence[Sequence[str]]] = None,
    strict: bool = True,
):
    """One solve for the batch: (program, answers by encounter number, contexts in input order).
    The raw answers serve the case runner's ``rules:`` checks and ``oncologic explain``."""
    from . import engine

    extra = rule_paths(policy, rules)
    facts = []
    contexts = []
    for e, loaded in enumerate(batch, start=1):
        switches = tuple(policies[e - 1]) if policies else ()
        fs, ctx = encounter_facts(loaded, e, switches)
        facts.extend(fs)
        contexts.append(ctx)
    facts += site_batch_facts(batch, facts, extra)
    prog, answers = engine.solve(facts, extra, strict=strict)
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
