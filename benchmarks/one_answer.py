"""The cost of checking for a second answer set: ``python benchmarks/one_answer.py [N] [--reps R]``.

The engine asks clingo for two models (engine.ONE_ANSWER_MODELS = 2) so that a program with more
than one answer is an error instead of an arbitrary claim. This script codes one batch of N
generated encounters (benchmarks/generator.py, seeded) with 1 and with 2 models, interleaved R
times, and prints the CPU seconds (process time, less sensitive to other load on a shared machine
than wall time) of the whole engine.solve call (grounding, solving, decoding) and of the solve
step alone (clingo's own statistics: summary.times.solve). docs/performance.md records the result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()

    import generator

    from oncologic import engine
    from oncologic.facts import encounter_facts
    from oncologic.load import InputError, validate
    from oncologic.solver import rule_paths

    facts = []
    e = 0
    for doc in generator.generate(args.n, seed=args.seed, bad_rate=0.0):
        try:
            loaded = validate(doc)
        except InputError:
            continue
        e += 1
        fs, _ctx = encounter_facts(loaded, e, ())
        facts.extend(fs)
    extra = rule_paths("medicare")
    engine.solve(facts, extra)  # warm: parse the program, read the reference data
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.reps):
        for models in (1, 2):
            engine.ONE_ANSWER_MODELS = models
            t0 = time.process_time()
            _prog, answers = engine.solve(facts, extra)
            times[models].append(time.process_time() - t0)
            assert len(answers) == e
    for models, ts in times.items():
        print(f"models={models}: {e} encounters, engine.solve CPU median {statistics.median(ts):.3f} s "
              f"(min {min(ts):.3f}, max {max(ts):.3f}, {args.reps} runs)")
    m1, m2 = statistics.median(times[1]), statistics.median(times[2])
    print(f"2 models cost {100 * (m2 - m1) / m1:+.1f} % CPU per batch ({1000 * (m2 - m1) / e:+.3f} ms per encounter)")

    # the solve step alone, on one ground program (same Control, solved again and again): what
    # asking for the second model adds, free of grounding and of the noise of other load
    import clingo

    prog = engine.load_program(extra)
    ctl = clingo.Control(["--warn=none"])
    with clingo.ast.ProgramBuilder(ctl) as builder:
        for stm in prog.statements:
            builder.add(stm)
    ctl.add("base", [], engine.reference_text(facts, prog))
    engine._add_facts(ctl, facts)
    t0 = time.process_time()
    ctl.ground([("base", [])])
    ground = time.process_time() - t0
    solve_t: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.reps * 4):
        for models in (1, 2):
            ctl.configuration.solve.models = models
            found = 0
            t0 = time.process_time()
            with ctl.solve(yield_=True) as handle:
                for model in handle:
                    found += 1
                    model.symbols(shown=True)
            solve_t[models].append(time.process_time() - t0)
            assert found == 1
    s1, s2 = statistics.median(solve_t[1]), statistics.median(solve_t[2])
    print(f"solve step alone (grounding {ground:.3f} s CPU once): models=1 {1000 * s1:.2f} ms, models=2 {1000 * s2:.2f} ms "
          f"median of {len(solve_t[1])}: {1000 * (s2 - s1):+.2f} ms per batch of {e} ({100 * (s2 - s1) / ground:+.2f} % of grounding)")


if __name__ == "__main__":
    main()
