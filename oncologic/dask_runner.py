"""Batch coding on a Dask cluster: the same records, in the same order, as the local run.

    oncologic batch claims-2025.jsonl -o coded.jsonl --dask tcp://scheduler:8786

or from Python::

    from distributed import Client
    from oncologic.batch import BatchOptions
    from oncologic.dask_runner import run_dask

    summary = run_dask("claims-2025.jsonl", "coded.jsonl", Client("tcp://scheduler:8786"), BatchOptions())

The client process reads the input as a stream, cuts it into chunks of ``chunk_size`` records and
submits each chunk as one task (:func:`oncologic.batch.code_records_forked`: on Linux the worker
loads the engine once and codes each chunk in a child process forked for it, as the local runner
does, so a long-lived worker never accumulates clingo's interned symbols; in it: validate, build
facts, one ground program, render; a chunk that raises is split down to the encounter at fault). At most
two tasks per worker thread are in flight, so the client's memory stays flat. Results are written
in input order with the local run's writer (fsync per write, ``resume``, the summary), so the
output is byte-identical to ``oncologic batch`` without ``--dask``.

What differs from local worker processes: a Dask task cannot be killed on a deadline, so
``time_limit`` is not enforced (``max_administrations`` still is); a task whose worker dies
(``KilledWorker``, e.g. past the worker's memory limit) is split like a local crash, down to a
``crash`` record for the encounter at fault. Start workers with one thread each
(``--nthreads 1``): each chunk is forked from the worker process.

Dask's own background work costs CPU for every second a worker lives, whatever it codes: the
worker's statistical profiler samples every thread each 10 ms, the event-loop tick runs every
20 ms, the memory and system monitors every 100 / 500 ms. On a local cluster of one worker this
was about a third of the Dask runner's CPU over the local batch (benchmarks/dask_scaling.py,
docs/performance.md). :data:`QUIET_WORKER_CONFIG` turns the profiler off and slows the monitors;
set it before a local cluster starts (``dask.config.set(QUIET_WORKER_CONFIG)``, as
:func:`local_cluster` does), or on remote workers through the environment::

    DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False \
    DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=200ms \
    DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=2s \
    DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL=1s \
    dask worker tcp://head:8786 --nthreads 1

Requires the ``dask`` extra (``pip install 'oncologic[dask]'``) on the client and every worker,
and the same oncologic version (encodings and facts) everywhere.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Optional

from .batch import BatchOptions, Executor, Item, Summary, code_records_forked, run_batch


#: Dask settings that cut the workers' background CPU (see the module docstring); the memory
#: limit and the nanny still work, only their sampling is slower. The profiler only feeds the
#: dashboard's profile page.
QUIET_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def local_cluster(n_workers: int, **kw: Any) -> Any:
    """A ``distributed.LocalCluster`` of one-thread worker processes with :data:`QUIET_WORKER_CONFIG`."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(QUIET_WORKER_CONFIG):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, **kw)


class DaskExecutor(Executor):
    """Runs chunks as Dask tasks through a ``distributed.Client``."""

    def __init__(self, client: Any, opts: BatchOptions, slots: int):
        self.client = client
        self.opts = opts
        self.slots = max(1, slots)
        self.futures: dict[Any, int] = {}
        self.prefix = f"oncologic-batch-{uuid.uuid4().hex[:12]}"

    def capacity(self) -> int:
        return self.slots - len(self.futures)

    def submit(self, task_id: int, items: list[Item]) -> None:
        future = self.client.submit(code_records_forked, items, self.opts, key=f"{self.prefix}-{task_id}", pure=False)
        self.futures[future] = task_id

    def poll(self, timeout: float) -> list[tuple[int, str, Any]]:
        from distributed import wait

        if not self.futures:
            return []
        if not any(f.done() for f in self.futures):
            try:
                wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED")
            except Exception:  # noqa: BLE001 - a timeout here only means "nothing finished yet"
                pass
        out = []
        for future in [f for f in self.futures if f.done()]:
            task_id = self.futures.pop(future)
            if future.status == "finished":
                out.append((task_id, "ok", future.result()))
            else:
                exc = future.exception()
                out.append((task_id, "crash", f"the Dask task failed: {type(exc).__name__}: {exc}"))
            future.release()
        return out

    def close(self) -> None:
        for future in list(self.futures):
            future.cancel()
        self.futures.clear()


def run_dask(
    source: str | Path,
    out: Optional[str | Path],
    scheduler: Any,
    opts: BatchOptions = BatchOptions(),
    resume: bool = False,
    progress: Optional[bool] = None,
    slots: Optional[int] = None,
) -> Summary:
    """Code ``source`` into ``out`` on the cluster at ``scheduler`` (an address or a Client)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the extra
        from .batch import BatchError

        raise BatchError("the Dask runner needs the dask extra: pip install 'oncologic[dask]'") from None
    own = not hasattr(scheduler, "submit")
    client = Client(scheduler) if own else scheduler
    try:
        if slots is None:
            threads = sum(client.nthreads().values()) or 1
            slots = 2 * threads
        executor = DaskExecutor(client, opts, slots)
        return run_batch(
            source, out, opts, resume=resume, progress=progress, executor=executor,
            max_inflight_records=opts.chunk_size * (slots + 2),
        )
    finally:
        if own:
            client.close()
