"""The batch benchmark: ``python benchmarks/run.py`` (or ``--quick``).

For N = 1, 1,000 and 100,000 generated encounters (benchmarks/generator.py, seeded) it runs

* ``oncologic batch IN -o OUT`` (worker processes, the full rule set) and
* the baseline: a process that only parses and validates every record (the same pydantic
  models) and writes it back as JSON Lines,

each as a fresh subprocess, and prints wall time, encounters per second, milliseconds per
encounter, CPU seconds (user + system of the whole process tree) and peak memory (the largest
sum of PSS over the process tree, ``/proc/PID/smaps_rollup``, sampled every 50 ms; the RSS sum,
which counts pages shared by forked processes once per process, is printed next to it). The headline is the ratio of the batch
throughput to the baseline's. It also times ``oncologic solve`` on one encounter, interpreter
start included (median of repeated runs).

    python benchmarks/run.py                 # N = 1, 1000, 100000
    python benchmarks/run.py --quick         # N = 1, 200, 1000
    python benchmarks/run.py --sizes 5000 --workers 2 --json out.json

Speed is measured here, never asserted in tests. docs/performance.md records the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import generator  # noqa: E402

BASELINE = r"""
import json, sys
from oncologic.load import InputError, validate
src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as fh, open(dst, "w", encoding="utf-8") as out:
    for n, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            enc = validate(json.loads(line)).encounter
            out.write('{"record":%d,"encounter":%s}\n' % (n, enc.model_dump_json()))
        except (InputError, ValueError) as exc:
            out.write(json.dumps({"record": n, "error": str(exc)}) + "\n")
"""


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pss_mb(pids: list[int]) -> float:
    """The proportional set size of the processes, summed (``/proc/PID/smaps_rollup``): a page
    shared by a parent and its forked children counts once in the sum, not once per process.
    Falls back to the RSS sum where the kernel has no smaps_rollup."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except FileNotFoundError:
            continue
        except OSError:
            return _rss_mb(pids)
    return total / 1024


def measure(cmd: list[str], env=None) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds of the tree, peak tree PSS and RSS (MB), exit status."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = peak_rss = 0.0
    while proc.poll() is None:
        pids = _tree(proc.pid)  # every sample: a child is forked for every chunk
        peak = max(peak, _pss_mb(pids))
        peak_rss = max(peak_rss, _rss_mb(pids))
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    after = os.times()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "peak_rss_mb": peak_rss, "status": proc.returncode, "stderr": err}


def oncologic_cmd() -> list[str]:
    script = Path(sys.executable).parent / "oncologic"
    return [str(script)] if script.exists() else [sys.executable, "-m", "oncologic.cli"]


def fresh_install(tmp: str) -> Optional[list[str]]:
    """``pip install .`` of this checkout into a new virtual environment, as the README's first
    command does for a newcomer (pip compiles the bytecode at install time); the command that
    runs its console script, or None when the install fails (no package index reachable)."""
    venv = Path(tmp) / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run(pip + [str(ROOT)], check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"# fresh install failed ({exc.__class__.__name__}); timing the installed command instead",
              file=sys.stderr)
        return None
    return [str(venv / "bin" / "oncologic")]


def time_solve(runs: int, cmd0: list[str]) -> dict:
    cmd = cmd0 + ["solve", str(ROOT / "examples" / "seed_session.yaml")]
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # first run: builds the caches
    first = time.perf_counter() - t0
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t0)
    return {"median": statistics.median(walls), "min": min(walls), "runs": runs, "first": first, "command": cmd0[0]}


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    import clingo

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1.0
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "clingo": clingo.__version__,
            "commit": commit + ("+dirty" if dirty else ""), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "load_before": round(load, 2)}


def row(name: str, n: int, m: dict) -> dict:
    return {"run": name, "n": n, "wall_s": round(m["wall"], 3), "per_s": round(n / m["wall"], 1),
            "ms_per_enc": round(1000 * m["wall"] / n, 3), "cpu_s": round(m["cpu"], 2),
            "cpu_ms_per_enc": round(1000 * m["cpu"] / n, 3), "peak_mb": round(m["peak_mb"], 1),
            "peak_rss_mb": round(m["peak_rss_mb"], 1)}


def verdicts(results: list[dict], solve: dict) -> list[str]:
    """The three targets, each with the measured figure and met / not met / not measured."""
    batch = [r for r in results if r["run"].startswith("batch") and r["n"] > 1]
    out = []
    if batch:
        big = max(batch, key=lambda r: r["n"])
        ok = "met" if big["per_s"] >= 1000 else "NOT met"
        out.append(f"throughput >= 1,000 encounters/s: {big['per_s']:,.0f}/s at N = {big['n']:,} -> {ok}")
    ok = "met" if solve["median"] < 0.3 else "NOT met"
    out.append(f"oncologic solve < 0.3 s: median {solve['median']:.3f} s ({solve['from']}) -> {ok}")
    at = [r for r in batch if r["n"] >= 100_000]
    if at:
        ok = "met" if at[0]["peak_mb"] < 300 else "NOT met"
        out.append(f"peak memory (PSS sum of the process tree) < 300 MB at N = 100,000: {at[0]['peak_mb']:.0f} MB "
                   f"(RSS sum {at[0]['peak_rss_mb']:.0f} MB) -> {ok}")
    else:
        out.append("peak memory < 300 MB at N = 100,000: not measured (run without --quick/--sizes)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="oncologic batch benchmark")
    ap.add_argument("--quick", action="store_true", help="small sizes (1, 200, 1000)")
    ap.add_argument("--sizes", type=int, nargs="*", help="explicit sizes")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--solve-runs", type=int, default=10)
    ap.add_argument("--solve-from", choices=["fresh", "installed"], default="fresh",
                    help="time `oncologic solve` from a fresh `pip install .` in a new venv (the README's "
                         "command; default) or from the oncologic installed next to this Python")
    ap.add_argument("--json", dest="json_out", help="also write the results here")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([1, 200, 1000] if args.quick else [1, 1000, 100_000])
    generator.check_codes()
    info = machine()
    print(f"# oncologic benchmark  {info['date']}  commit {info['commit']}")
    print(f"# {info['cpu']}, {info['cores']} cores, Python {info['python']}, clingo {info['clingo']}, "
          f"load average before {info['load_before']}")
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="oncologic-bench-") as tmp:
        fresh = fresh_install(tmp) if args.solve_from == "fresh" else None
        solve = time_solve(args.solve_runs, fresh or oncologic_cmd())
        solve["from"] = "fresh pip install . in a new venv" if fresh else "the installed command"
        print(f"oncologic solve (one encounter, interpreter start included; {solve['from']}): "
              f"median {solve['median']:.3f} s, min {solve['min']:.3f} s over {solve['runs']} runs "
              f"(the first run after install, which builds the caches: {solve['first']:.2f} s)")
        for n in sizes:
            src = generator.write_jsonl(Path(tmp) / f"in-{n}.jsonl", n, seed=args.seed)
            workers = 0 if n == 1 else args.workers
            cmd = oncologic_cmd() + ["batch", str(src), "-o", str(Path(tmp) / f"out-{n}.jsonl"), "--workers",
                                     str(workers), "--no-progress"]
            if args.chunk_size:
                cmd += ["--chunk-size", str(args.chunk_size)]
            m = measure(cmd)
            if m["status"] != 0:
                print(m["stderr"], file=sys.stderr)
                return 1
            got = sum(1 for _ in open(Path(tmp) / f"out-{n}.jsonl", encoding="utf-8"))
            assert got == n, f"{got} records for {n} inputs"
            b = measure([sys.executable, "-c", BASELINE, str(src), str(Path(tmp) / f"base-{n}.jsonl")])
            rb, rr = row(f"batch (workers={workers})", n, m), row("baseline (parse+validate+write)", n, b)
            rb["vs_baseline"] = round(rr["wall_s"] / rb["wall_s"], 4)
            results += [rb, rr]
            summary = [ln for ln in m["stderr"].splitlines() if "claims:" in ln]
            print(f"\nN = {n:,}  {summary[0].strip() if summary else ''}")
            print(f"  {'run':<34} {'wall s':>9} {'enc/s':>9} {'ms/enc':>8} {'CPU s':>8} {'CPU ms/enc':>10} {'PSS MB':>7} {'RSS MB':>7}")
            for r in (rb, rr):
                print(f"  {r['run']:<34} {r['wall_s']:>9.2f} {r['per_s']:>9,.0f} {r['ms_per_enc']:>8.2f} "
                      f"{r['cpu_s']:>8.1f} {r['cpu_ms_per_enc']:>10.2f} {r['peak_mb']:>7.0f} {r['peak_rss_mb']:>7.0f}")
            print(f"  headline: batch throughput is {rb['vs_baseline']:.3f} x the baseline's "
                  f"({rr['per_s'] / rb['per_s']:.1f} x slower)")
    print("\nTargets (issue #16, 2-core machine):")
    for line in verdicts(results, solve):
        print("  " + line)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": info, "solve": solve, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
