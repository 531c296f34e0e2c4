"""The invariants of oncologic.testing over the benchmark's realistic encounters.

hypothesis's strategies (tests/properties/test_invariants.py) explore odd shapes; the seeded
benchmark generator (benchmarks/generator.py) gives regimens as practices run them: FOLFOX with
its pump, R-CHOP, trials with billing grids, prior authorizations. Coding 3,000 of them found two
things the strategies had not: an add-on left on the payer's claim after the trial grid gave its
initial service to the sponsor (now the guard.addon_primary_to_sponsor error), and an oracle that
counted the dose of a drug the claim does not bill.
"""

from __future__ import annotations

import os

import generator  # benchmarks/generator.py (pytest pythonpath)
import pytest

from oncologic import testing as ot
from oncologic.load import validate
from oncologic.solver import code_encounters

N = int(os.environ.get("ONCOLOGIC_GENERATED_N", "400"))


@pytest.mark.parametrize("seed", [99, 2026])
def test_generated_encounters_keep_the_invariants(seed):
    docs = list(generator.generate(N, seed=seed, bad_rate=0.0))
    bad = []
    for start in range(0, len(docs), 100):
        chunk = docs[start : start + 100]
        for doc, claim in zip(chunk, code_encounters([validate(d) for d in chunk])):
            bad += [f"{doc['id']}: {m}" for m in ot.check_claim(doc, claim)]
    assert not bad, "\n".join(bad[:20])
