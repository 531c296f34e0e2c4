"""Ground size of one encounter with many administrations (issue #16, "Also").

    python benchmarks/admin_scaling.py                       # n = 100 200 400 800, office and facility
    python benchmarks/admin_scaling.py --sizes 1000 --time   # also the CPU time of ground + solve
    python benchmarks/admin_scaling.py --top 8               # the largest predicates at each n

For ``oncologic.regimens.pathological(n)`` (n pushes of one drug through one port, starts
spread over 900 minutes) it prints the number of ground atoms (clingo's symbolic atoms) and the
ground program's rules (``ctl.statistics``, with ``--time``), deterministic numbers that do not depend on the load
of the machine. The rules must keep them linear in n (tests/test_admin_scaling.py).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def ground_size(n: int, setting: str, policy: str = "medicare", solve: bool = False) -> dict:
    """Atoms (total and per predicate) and ground rules of pathological(n) in one Control."""
    import clingo
    from clingo import ast

    from oncologic import engine, solver
    from oncologic.facts import encounter_facts
    from oncologic.load import validate
    from oncologic.regimens import pathological

    doc = pathological(n)
    doc["setting"] = setting
    loaded = validate(doc)
    facts = encounter_facts(loaded, 1, ())[0]
    prog = engine.load_program(solver.rule_paths(policy))
    t0 = time.process_time()
    ctl = clingo.Control(["--warn=none"])
    with ast.ProgramBuilder(ctl) as builder:
        for stm in prog.statements:
            builder.add(stm)
    ctl.add("base", [], engine.reference_text(facts, prog))
    engine._add_facts(ctl, facts)
    ctl.ground([("base", [])])
    if solve:
        ctl.solve()
    cpu = time.process_time() - t0
    per = collections.Counter()
    for sa in ctl.symbolic_atoms:
        sym = sa.symbol
        per[(sym.name, len(sym.arguments))] += 1
    lp = ctl.statistics["problem"]["lp"]
    return {"atoms": sum(per.values()), "rules": int(lp["rules"]), "per": per, "cpu": cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 200, 400, 800])
    ap.add_argument("--settings", nargs="*", default=["office", "facility"])
    ap.add_argument("--top", type=int, default=0, help="print the N largest predicates at each size")
    ap.add_argument("--time", action="store_true", help="also ground and solve, and print the CPU seconds")
    args = ap.parse_args(argv)
    for setting in args.settings:
        prev = None
        for n in args.sizes:
            r = ground_size(n, setting, solve=args.time)
            ratio = f"  x{r['atoms'] / prev:.2f}" if prev else ""
            cpu = f"  {r['cpu']:.2f} s CPU (ground{'+solve' if args.time else ''})"
            rules = f"  rules {r['rules']:>9,}" if args.time else ""  # lp statistics exist after a solve
            print(f"{setting:<9} n={n:<5} atoms {r['atoms']:>9,}{rules}{ratio}{cpu}")
            for (name, ar), k in r["per"].most_common(args.top):
                print(f"    {name}/{ar}: {k:,}")
            prev = r["atoms"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
