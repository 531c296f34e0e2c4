"""Time and memory limits for one solve (``oncologic solve``, ``test``, ``explain``, the Python
API and the pytest plugin).

A rule such as ``n(X+1) :- n(X).`` grounds forever, and clingo cannot be interrupted while it
grounds. So a limited solve runs in a forked child process: the child lowers its own
address-space limit (``RLIMIT_AS``: the size it was forked at plus ``memory_mb``) and codes the
batch; the parent waits at most ``time_s`` seconds for the answer and kills the child past it.
Either limit ends in :class:`LimitExceeded`, a one-line message naming the limit and the rule
files in play; the CLI exits with status 3 (:data:`EXIT_LIMIT`). The parent's memory and the
machine are never at risk.

Defaults: :data:`DEFAULT_TIME_S` seconds and :data:`DEFAULT_MEMORY_MB` MB, or the environment
variables ``ONCOLOGIC_TIME_LIMIT`` / ``ONCOLOGIC_MEMORY_LIMIT`` (0 = no limit). The batch command
has its own per-encounter deadlines and worker memory limit (``--time-limit``,
``--memory-limit``; oncologic/batch.py) and codes without this wrapper.

The fork costs a few milliseconds per solve (docs/performance.md). On a platform without
``os.fork`` the solve runs in the calling process without limits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

EXIT_LIMIT = 3
DEFAULT_TIME_S = 120.0
DEFAULT_MEMORY_MB = 4096


class LimitExceeded(Exception):
    """A solve went past its time or memory limit."""

    def __init__(self, limit: str, value: float, files: Sequence[str], detail: str = "") -> None:
        self.limit = limit  # "time" | "memory"
        self.value = value
        self.files = tuple(files)
        what = f"time limit of {value:g} s" if limit == "time" else f"memory limit of {value:g} MB"
        flag = "--time-limit" if limit == "time" else "--memory-limit"
        rules = ", ".join(self.files) or "the standard rules only"
        super().__init__(f"the {what} was reached ({flag}{'; ' + detail if detail else ''}); rule files in play: {rules}")


@dataclass(frozen=True)
class Limits:
    """Limits of one solve: ``time_s`` seconds (wall clock), ``memory_mb`` MB of address space
    beyond the process's own size; None or 0 = no limit."""

    time_s: Optional[float] = DEFAULT_TIME_S
    memory_mb: Optional[float] = DEFAULT_MEMORY_MB

    @property
    def active(self) -> bool:
        return bool(self.time_s) or bool(self.memory_mb)


def _env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: a number (0 = no limit)") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r}: 0 or more")
    return value


def default_limits() -> Limits:
    """The documented defaults, or ONCOLOGIC_TIME_LIMIT / ONCOLOGIC_MEMORY_LIMIT."""
    return Limits(_env("ONCOLOGIC_TIME_LIMIT", DEFAULT_TIME_S), _env("ONCOLOGIC_MEMORY_LIMIT", DEFAULT_MEMORY_MB))


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def can_fork() -> bool:
    # forked even when other threads run (a test runner's, a pool's helper thread): the child runs
    # only the solve, and a lock another thread held at the fork can at worst stall the child
    # until the time limit ends it (oncologic.engine re-creates its own locks in a forked child).
    # Running in-process instead would drop the limits: an unbounded rule would take the machine.
    return hasattr(os, "fork")


def run_limited(fn: Callable[[], Any], limits: Optional[Limits], files: Sequence[str]) -> Any:
    """``fn()`` under ``limits``: its result, or the exception it raised, or LimitExceeded.
    The result and exceptions cross from the child by pickle."""
    if limits is None or not limits.active or not can_fork():
        return fn()
    import pickle
    import select
    import signal

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(rfd)
            if limits.memory_mb:
                import resource

                cap = _vm_size() + int(limits.memory_mb * 2**20)
                soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                if hard != resource.RLIM_INFINITY:
                    cap = min(cap, hard)
                resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
            try:
                payload = pickle.dumps(("ok", fn()), protocol=pickle.HIGHEST_PROTOCOL)
            except MemoryError:
                payload = b"M"
            except BaseException as exc:  # noqa: BLE001 - handed to the parent
                try:
                    payload = pickle.dumps(("err", exc), protocol=pickle.HIGHEST_PROTOCOL)
                    pickle.loads(payload)
                except MemoryError:
                    payload = b"M"
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    payload = pickle.dumps(("err", RuntimeError(f"{type(exc).__name__}: {exc}")))
            view = memoryview(payload)
            while view:
                n = os.write(wfd, view[:1 << 20])
                view = view[n:]
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    deadline = time.monotonic() + limits.time_s if limits.time_s else None
    chunks: list[bytes] = []
    timed_out = False
    complete = False
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([rfd], [], [], wait)
            if not ready:
                timed_out = True
                break
            data = os.read(rfd, 1 << 20)
            if not data:
                complete = True
                break
            chunks.append(data)
    finally:
        os.close(rfd)
        if not complete:  # past the deadline, or interrupted (Ctrl-C): the child must not live on
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _pid, status = os.waitpid(pid, 0)
    if timed_out:
        raise LimitExceeded("time", limits.time_s or 0, files)
    payload = b"".join(chunks)
    if payload == b"M":
        raise LimitExceeded("memory", limits.memory_mb or 0, files)
    if not payload:
        if os.WIFSIGNALED(status):
            # killed while allocating (the kernel, or an abort on a failed allocation)
            detail = f"the solver process ended on signal {os.WTERMSIG(status)}"
            raise LimitExceeded("memory", limits.memory_mb or 0, files, detail)
        raise RuntimeError(f"the solver process ended without an answer (status {os.waitstatus_to_exitcode(status)})")
    kind, value = pickle.loads(payload)
    if kind == "ok":
        return value
    if isinstance(value, MemoryError) or (isinstance(value, RuntimeError) and "bad_alloc" in str(value)):
        raise LimitExceeded("memory", limits.memory_mb or 0, files)
    raise value
