"""The floor: how long clingo takes just to ground the rule set, per encounter.

    python benchmarks/floor.py                  # 600 generated encounters, chunks of 100 and 600
    python benchmarks/floor.py --n 1200 --chunks 100 300 1200

Only ``Control.ground`` is timed (CPU time, the minimum of ``--repeat`` runs): no JSON, no
validation, no facts crossing into clingo, no solving, decoding or rendering. It grounds

* the rules as shipped (every ``%@rule`` with its provenance twin ``_why(N,Head,Vars) :- Body.``), and
* the same rules without any provenance rule (no ``why`` could be rendered from that),

so that a throughput target can be compared with what the rule set itself costs
(docs/performance.md, "The floor").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _is_provenance(stm, ast) -> bool:
    if stm.ast_type != ast.ASTType.Rule:
        return False
    head = stm.head
    if head.ast_type != ast.ASTType.Literal or head.atom.ast_type != ast.ASTType.SymbolicAtom:
        return False
    term = head.atom.symbol
    return term.ast_type == ast.ASTType.Function and term.name == "_why"


VARIANTS = {
    "shipped": "rules as shipped (with provenance)",
    "no-provenance": "without provenance rules",
}


def measure(variant: str, n: int, seed: int, chunk: int, repeat: int, policy: str) -> tuple[int, float]:
    """(statements, CPU ms of grounding per encounter) for one variant in this process."""
    import clingo
    from clingo import ast

    import generator
    from oncologic import engine, solver
    from oncologic.facts import encounter_facts
    from oncologic.load import InputError, validate

    loaded = []
    for data in generator.generate(n, seed=seed, bad_rate=0.0):
        try:
            loaded.append(validate(data))
        except InputError:
            continue
    prog = engine.load_program(solver.rule_paths(policy))
    statements = list(prog.statements)
    if variant == "no-provenance":
        statements = [s for s in statements if not _is_provenance(s, ast)]
    best = float("inf")
    for _ in range(repeat):
        total = 0.0
        for start in range(0, len(loaded), chunk):
            facts = []
            for e, item in enumerate(loaded[start : start + chunk], start=1):
                facts.extend(encounter_facts(item, e, ())[0])
            ctl = clingo.Control(["--warn=none"])
            with ast.ProgramBuilder(ctl) as builder:
                for stm in statements:
                    builder.add(stm)
            ctl.add("base", [], engine.reference_text(facts, prog))
            engine._add_facts(ctl, facts)
            t0 = time.process_time()
            ctl.ground([("base", [])])
            total += time.process_time() - t0
        best = min(best, total)
    return len(statements), 1000 * best / len(loaded)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="generated encounters (default 600)")
    ap.add_argument("--chunks", type=int, nargs="*", default=[100, 600], help="encounters per ground program")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--policy", default="medicare")
    ap.add_argument("--one", nargs=2, metavar=("VARIANT", "CHUNK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        # one measurement in a fresh process: clingo's symbol table is process-wide, and a
        # variant grounded after another in the same process measures that table's growth too
        stms, ms = measure(args.one[0], args.n, args.seed, int(args.one[1]), args.repeat, args.policy)
        print(f"{stms} {ms:.4f}")
        return 0
    import clingo

    print(f"# {args.n} generated encounters (seed {args.seed}), policy {args.policy}, clingo {clingo.__version__}; "
          f"CPU ms of Control.ground per encounter, min of {args.repeat}, each cell a fresh process")
    print(f"{'program':<38} {'statements':>10} " + " ".join(f"{'chunk ' + str(c):>11}" for c in args.chunks))
    for variant, label in VARIANTS.items():
        cells, stms = [], 0
        for chunk in args.chunks:
            out = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--seed", str(args.seed), "--repeat",
                                  str(args.repeat), "--policy", args.policy, "--one", variant, str(chunk)],
                                 capture_output=True, text=True, check=True).stdout.split()
            stms, ms = int(out[0]), float(out[1])
            cells.append(ms)
        print(f"{label:<38} {stms:>10} " + " ".join(f"{c:>11.3f}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
