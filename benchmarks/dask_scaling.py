"""Dask scaling run: the same generated corpus coded by ``oncologic batch`` with local worker
processes and by the Dask runner on a local cluster, for 1 and 2 workers (or a list you give).

    python benchmarks/dask_scaling.py                      # N = 2,000; 1 and 2 workers
    python benchmarks/dask_scaling.py --n 5000 --workers 1 2 --json out.json
    python benchmarks/dask_scaling.py --n 100000 --scheduler tcp://head:8786   # a real cluster

For each worker count it prints wall seconds, encounters per second, CPU milliseconds per
encounter (user + system of the whole process tree: client, scheduler, nannies, workers and the
children forked per chunk), the Dask run's CPU against the local batch's (issue #16: within 15 %),
and the scaling efficiency ``rate(k) / (k * rate(1))`` of each runner. Both outputs are compared
byte for byte.

On N machines: start ``dask scheduler`` on one, ``dask worker tcp://head:8786 --nthreads 1
--nworkers K`` on each (same oncologic version and Python everywhere), and pass
``--scheduler tcp://head:8786``: the script then times the client only (the workers' CPU is on
other machines), reports encounters per second and, over repeated runs with more machines
(``--label``), the efficiency against the first run recorded in ``--json``.

Speed is measured here, never asserted in tests; docs/performance.md records the numbers.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import generator  # noqa: E402
from run import measure, oncologic_cmd  # noqa: E402

DASK_CHILD = r"""
import sys
from distributed import Client
from oncologic.batch import BatchOptions
from oncologic.dask_runner import local_cluster, run_dask

src, dst, workers, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
scheduler = sys.argv[5] if len(sys.argv) > 5 else ""
if scheduler:
    run_dask(src, dst, scheduler, BatchOptions(chunk_size=chunk), progress=False)
else:
    # one-thread worker processes, the profiler off and the monitors slowed (QUIET_WORKER_CONFIG)
    with local_cluster(workers, dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        run_dask(src, dst, client, BatchOptions(chunk_size=chunk), progress=False)
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chunk-size", type=int, default=250)
    ap.add_argument("--scheduler", default="", help="a running Dask scheduler (tcp://host:8786) instead of a local cluster")
    ap.add_argument("--label", default="", help="a name for this run in --json (e.g. '4 machines')")
    ap.add_argument("--json", default=None, help="append the results to this JSON file")
    args = ap.parse_args(argv)
    generator.check_codes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    results = []
    with tempfile.TemporaryDirectory(prefix="oncologic-dask-") as tmp:
        src = generator.write_jsonl(Path(tmp) / "in.jsonl", args.n, seed=args.seed)
        for k in args.workers:
            row = {"n": args.n, "workers": k, "label": args.label}
            if not args.scheduler:
                local_out = Path(tmp) / f"local-{k}.jsonl"
                m = measure([*oncologic_cmd(), "batch", str(src), "-o", str(local_out), "--workers", str(k),
                             "--chunk-size", str(args.chunk_size), "--no-progress"], env=env)
                if m["status"] != 0:
                    print(m["stderr"], file=sys.stderr)
                    return 1
                row["local"] = {"wall": m["wall"], "rate": args.n / m["wall"], "cpu_ms": 1000 * m["cpu"] / args.n,
                                "peak_pss_mb": m["peak_mb"]}
            dask_out = Path(tmp) / f"dask-{k}.jsonl"
            cmd = [sys.executable, "-c", DASK_CHILD, str(src), str(dask_out), str(k), str(args.chunk_size)]
            if args.scheduler:
                cmd.append(args.scheduler)
            m = measure(cmd, env=env)
            if m["status"] != 0:
                print(m["stderr"], file=sys.stderr)
                return 1
            row["dask"] = {"wall": m["wall"], "rate": args.n / m["wall"], "cpu_ms": 1000 * m["cpu"] / args.n,
                           "peak_pss_mb": m["peak_mb"]}
            if not args.scheduler:
                row["identical"] = filecmp.cmp(Path(tmp) / f"local-{k}.jsonl", dask_out, shallow=False)
            results.append(row)
    base = {r: results[0][r]["rate"] for r in ("local", "dask") if r in results[0]}
    print(f"N = {args.n}, chunks of {args.chunk_size}" + (f", scheduler {args.scheduler}" if args.scheduler else ", local cluster"))
    print(f"{'workers':>7}  {'runner':<6} {'wall s':>8} {'enc/s':>8} {'CPU ms/enc':>10} {'PSS MB':>7} {'efficiency':>10}")
    for row in results:
        k = row["workers"] / results[0]["workers"]
        for runner in ("local", "dask"):
            if runner not in row:
                continue
            r = row[runner]
            eff = r["rate"] / (k * base[runner])
            r["efficiency"] = eff
            print(f"{row['workers']:>7}  {runner:<6} {r['wall']:>8.1f} {r['rate']:>8.0f} {r['cpu_ms']:>10.2f} "
                  f"{r['peak_pss_mb']:>7.0f} {eff:>10.2f}")
        if "local" in row:
            over = 100 * (row["dask"]["cpu_ms"] / row["local"]["cpu_ms"] - 1)
            row["dask_cpu_over_local_pct"] = over
            verdict = "met" if over <= 15 else "NOT met"
            print(f"         Dask CPU per encounter vs local: {over:+.1f} % (target within 15 %: {verdict}); "
                  f"outputs byte-identical: {row['identical']}")
    try:
        load = os.getloadavg()
        print(f"load average before the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (other work on the machine inflates every figure)")
    except OSError:
        pass
    if args.json:
        path = Path(args.json)
        old = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(old + results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
