"""What the reference data costs a batch: index build, selection, and a small solve.

    PYTHONPATH=. python benchmarks/refselect.py            # 1, 20 and 200 generated encounters
    PYTHONPATH=. python benchmarks/refselect.py --n 1 50
    PYTHONPATH=. python benchmarks/refselect.py --needed-quarters   # only the 2025 Q4 and 2026 Q1 ASP files and crosswalks

The generated encounters are dated 2025-10-01 to 2026-01-01 (2025 Q4 and the first day of 2026
Q1). ``--needed-quarters`` hides the other eight pricing files and seven crosswalks (as if only
the quarters of the batch had been imported): the batch solve with ten quarters present must
cost the same as with the two it uses (issue 12).

For each batch size: the number of reference rows the batch loads (refdata.select_facts over the
codes of the batch and of the rules), the time to select them, and the wall time of coding the
batch (code_encounters, one process). The fact index is built once without its disk cache (cold)
and once with it. Run it on two checkouts to compare (docs/reference-data.md, "Size and speed").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 20, 200])
    ap.add_argument("--needed-quarters", action="store_true",
                    help="load only the 2025 Q4 and 2026 Q1 ASP pricing files and crosswalks")
    args = ap.parse_args(argv)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # a cold index cache
    from generator import generate

    from oncologic import engine, refdata, solver

    if args.needed_quarters:
        every = refdata.fact_files

        def needed() -> list[Path]:
            return [p for p in every() if not p.name.startswith(("asp_", "ndc_")) or p.stem.endswith(("2025q4", "2026q1"))]

        refdata.fact_files = needed
        refdata.reset()
    from oncologic.facts import encounter_facts
    from oncologic.load import validate

    files = refdata.fact_files()
    size = sum(p.stat().st_size for p in files)
    t0 = time.perf_counter()
    lines, _index, always = refdata.fact_index()
    cold = time.perf_counter() - t0
    refdata.fact_index.cache_clear()
    t0 = time.perf_counter()
    refdata.fact_index()
    warm = time.perf_counter() - t0
    print(f"{len(files)} fact files, {size / 1e6:.1f} MB, {len(lines)} indexed rows + {len(always)} always loaded")
    print(f"fact index: cold build {cold:.2f} s, from disk cache {warm * 1000:.0f} ms")
    prog = engine.load_program(solver.rule_paths("medicare"))
    for n in args.n:
        loaded = [validate(e) for e in generate(n, seed=7, bad_rate=0.0)]
        facts = [f for i, item in enumerate(loaded) for f in encounter_facts(item, i)[0]]
        t0 = time.perf_counter()
        rows = engine.reference_text(facts, prog).count("\n")
        sel = time.perf_counter() - t0
        t0 = time.perf_counter()
        solver.code_encounters(loaded, policy="medicare")
        wall = time.perf_counter() - t0
        print(f"n={n:>4}: {rows:>6} reference rows selected in {sel * 1000:.0f} ms; coded in {wall:.2f} s ({wall / n * 1000:.0f} ms/encounter)")


if __name__ == "__main__":
    main()
