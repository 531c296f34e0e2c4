"""Where the Dask runner's CPU goes, by process, after the cluster has started (issue #16).

    python benchmarks/dask_split.py IN.jsonl N      # N = the number of records in IN.jsonl

Starts a local cluster of one quiet worker (oncologic.dask_runner.local_cluster), then codes the
file and prints the CPU per encounter of the client process (client, scheduler, nanny), of the
worker process itself, and of the children it forked per chunk, plus the children's minor page
faults. Compare with ``oncologic batch IN.jsonl --workers 1`` (parent and children). Numbers go
to docs/performance.md; nothing here is a test.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker_times() -> tuple[float, float, int]:
    """In the worker: its own CPU, its reaped children's CPU and their minor page faults."""
    import os
    import resource

    t = os.times()
    return t.user + t.system, t.children_user + t.children_system, resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt


def main() -> int:
    from distributed import Client

    from oncologic.batch import BatchOptions
    from oncologic.dask_runner import local_cluster, run_dask

    src, n = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp, \
            local_cluster(1, dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        t0 = _cpu_self()
        (a0, c0, f0), = client.run(_worker_times).values()
        run_dask(src, Path(tmp) / "out.jsonl", client, BatchOptions(chunk_size=250), progress=False)
        (a1, c1, f1), = client.run(_worker_times).values()
        t1 = _cpu_self()
    print(f"CPU ms/enc: client+scheduler+nanny {1000 * (t1 - t0) / n:.2f}; worker {1000 * (a1 - a0) / n:.2f}; "
          f"forked children {1000 * (c1 - c0) / n:.2f}; children's minor faults/enc {(f1 - f0) / n:.0f}")
    return 0


if __name__ == "__main__":  # the local cluster spawns processes that import this file
    sys.exit(main())
