"""Batch coding: many encounters in, one JSON Lines record per encounter out, in input order.

>>> from oncologic.batch import BatchOptions, run_batch
>>> summary = run_batch("day.jsonl", "claims.jsonl", BatchOptions(workers=2))

Input: a JSON Lines file (one encounter object per line; blank lines are not records), ``-`` for
standard input, or a folder of encounter files (``*.json``, ``*.yaml``, ``*.yml``, in name order).

Output, one line per input record, numbered from 1 in input order::

    {"record":1,"encounter":"ENC-1","claim":{...the claim of the contract...}}
    {"record":2,"encounter":"ENC-2","warnings":["x: unknown field ignored"],"claim":{...}}
    {"record":3,"encounter":"ENC-3","source":"day.jsonl:3","error":{"kind":"input",
     "problems":[{"path":"administrations[0].route","message":"..."}]}}

Error kinds: ``input`` (the InputError problems, with field paths), ``too_large`` (more
administrations than ``max_administrations``, or past another limit of :mod:`oncologic.input_limits`), ``timeout`` (coding it alone took longer than
``time_limit`` seconds), ``engine`` (the engine failed on this encounter alone), ``crash`` (the
worker process died while coding this encounter alone, e.g. past ``memory_limit_mb``).

How it stays fast, flat and robust (docs/performance.md):

* Records are read as a stream and cut into chunks of ``chunk_size``; a chunk is one clingo
  ground program (the rules never join across encounters, so each claim is the one the
  encounter gets alone; tests/test_batch.py checks it).
* Chunks go to ``workers`` subprocesses that are recycled after ``recycle_after`` encounters or
  past ``recycle_rss_mb`` (clingo interns symbols for the life of a process). The parent only
  reads lines and writes lines; at most a few chunks per worker are in flight, so memory does
  not grow with the input.
* A chunk that raises is split and retried inside the worker, down to the one encounter at
  fault. A chunk that runs past its deadline (``time_limit`` + 20 ms per encounter) or kills its
  worker is split into up to 8 parts by the parent, whose worker is killed and replaced; a single
  encounter past ``time_limit`` becomes a ``timeout`` record. Grounding cannot be interrupted
  from Python, so killing the subprocess is the only bound that always works.
* Output is written in order, flushed and fsync'ed per write; ``resume`` truncates a partly
  written last record (anything after the last newline, or a line that is not a complete record
  with the expected number), checks that the last kept record belongs to the same input record,
  and continues after it.

Python here never decides a code: it reads, validates, calls :mod:`oncologic.solver` and writes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

# one input record: (record number from 1, source label, raw text)
Item = tuple[int, str, str]
# one output record: (the JSON line with its newline, summary info)
# info: ("claim", clean, finding codes, encounter id, expected Medicare payment, allowed at stake)
# or ("error", kind); the money fields are decimal strings or None
Out = tuple[str, tuple]

DOC_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class BatchOptions:
    policy: Optional[str] = "medicare"
    rules: tuple[str, ...] = ()
    switches: tuple[str, ...] = ()
    workers: int = 0  # 0 = code in this process (no time limit); N >= 1 = N worker processes
    chunk_size: int = 250
    time_limit: float = 10.0  # seconds one encounter may take alone
    max_administrations: Optional[int] = None  # None: ONCOLOGIC_MAX_ADMINISTRATIONS, else 1000 (oncologic/input_limits.py)
    memory_limit_mb: int = 4096  # address-space limit of a worker process (0 = none)
    recycle_after: int = 50_000  # encounters per worker process before it is replaced
    recycle_rss_mb: int = 100  # resident size (after returning freed memory) past which a worker retires
    strict: bool = True
    site: Optional[str] = None  # path of the site configuration (SITE.toml), read once per process
    source_format: str = "native"  # native | fhir (bundles, NDJSON; oncologic/formats/fhir_batch.py)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Summary:
    records: int = 0
    claims: int = 0
    clean: int = 0
    errors: Counter = field(default_factory=Counter)
    findings: Counter = field(default_factory=Counter)
    resumed_from: int = 0
    seconds: float = 0.0
    # expected Medicare payment (issue 14): the total over the claims that carry one, how many do,
    # the allowed amount of lines with errors (denied as the claims stand), and the first claims'
    # own amounts (shown for small batches; the output file has every claim's)
    expected: Decimal = Decimal(0)
    priced: int = 0
    at_stake: Decimal = Decimal(0)
    per_encounter: list = field(default_factory=list)

    SHOW_ENCOUNTERS = 20

    def add(self, info: tuple) -> None:
        self.records += 1
        if info[0] == "claim":
            self.claims += 1
            self.clean += bool(info[1])
            self.findings.update(info[2])
            if len(info) >= 6:
                _enc, pay, stake = info[3:6]
                if pay is not None:
                    self.expected += Decimal(pay)
                    self.priced += 1
                if stake is not None:
                    self.at_stake += Decimal(stake)
                if len(self.per_encounter) <= self.SHOW_ENCOUNTERS:
                    self.per_encounter.append((_enc, pay, stake))
        else:
            self.errors[info[1]] += 1

    def render(self) -> str:
        new = self.records - self.resumed_from
        rate = new / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"oncologic batch: {self.records:,} records ({new:,} coded in {self.seconds:.1f} s, {rate:,.0f}/s"
            + (f"; resumed after record {self.resumed_from:,}" if self.resumed_from else "")
            + ")",
            f"  claims: {self.claims:,}, clean: {self.clean:,}"
            + (f" ({100.0 * self.clean / self.claims:.1f} % clean rate)" if self.claims else ""),
            "  errors: " + (", ".join(f"{k} {v:,}" for k, v in sorted(self.errors.items())) or "none"),
        ]
        if self.claims:
            mean = f", ${self.expected / self.priced:,.2f} per encounter on average" if self.priced else ""
            lines.append(f"  expected Medicare payment: ${self.expected:,.2f} in total over {self.priced:,} of {self.claims:,} "
                         f"claims with priced lines{mean} (unpriced lines are not counted; each line's payment.basis says why)")
            lines.append(f"  money at stake (expected allowed amount of the priced lines with errors, denied as the claims stand): "
                         f"${self.at_stake:,.2f}")
            if self.claims <= self.SHOW_ENCOUNTERS:
                lines.append("  per encounter (expected Medicare payment / at stake):")
                for enc, pay, stake in self.per_encounter:
                    shown = f"${Decimal(pay):,.2f}" if pay is not None else "not computed"
                    lines.append(f"    {str(enc):<32} {shown:>14}  {'$' + format(Decimal(stake or 0), ',.2f'):>12}")
        if self.findings:
            lines.append("  findings by code:")
            for code, n in sorted(self.findings.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"    {code:<32} {n:>10,}")
        return "\n".join(lines) + "\n"


def claim_info(encounter: Any, clean: Any, codes: Sequence[Any], pay: Optional[str], stake: Optional[str]) -> tuple:
    """The summary info of one coded claim (see ``Out``)."""
    return ("claim", clean, tuple(codes), encounter, pay, stake)


class BatchError(Exception):
    """The batch cannot run (unreadable input, an output that does not match the input on resume)."""


# --------------------------------------------------------------------------------------------
# input


def iter_records(source: str | Path) -> Iterator[Item]:
    """Stream the records of a JSON Lines file, standard input (``-``) or a folder."""
    if str(source) == "-":
        yield from _lines(sys.stdin, "<stdin>")
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)
        for n, p in enumerate(files, start=1):
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                text = "\x00" + f"cannot read: {getattr(exc, 'strerror', None) or exc}"
            if text[:1] == "\x01" or (text[:1] == "\x00" and not text.startswith("\x00cannot read: ")):
                text = " " + text
            yield n, p.name, text
        return
    try:
        fh = open(path, encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        raise BatchError(f"{source}: cannot read: {exc.strerror}") from None
    with fh:
        yield from _lines(fh, str(source))


def _bounded_lines(fh) -> Iterator[str]:
    """The lines of ``fh``; a line longer than the ``max_input_bytes`` limit is cut just past it
    (so the record gets its too_large error) and the rest of it is skipped unread into memory."""
    from .input_limits import value

    cap = value("max_input_bytes") + 1
    while True:
        line = fh.readline(cap)
        if not line:
            return
        newline = "\n" if isinstance(line, str) else b"\n"
        if len(line) >= cap and not line.endswith(newline):
            while True:  # skip the rest of the long line
                rest = fh.readline(1 << 20)
                if not rest or rest.endswith(newline):
                    break
        yield line


def _lines(fh, name: str) -> Iterator[Item]:
    n = 0
    for lineno, line in enumerate(_bounded_lines(fh), start=1):
        if lineno == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if not line.strip():
            continue
        n += 1
        if line[:1] in ("\x00", "\x01"):  # never mistaken for the reader's own markers (unreadable, FHIR)
            line = " " + line
        yield n, f"{name}:{lineno}", line


def count_records(source: str | Path) -> Optional[int]:
    """How many records a regular file or folder holds (for the progress bar); None if unknown."""
    if str(source) == "-":
        return None
    path = Path(source)
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)
    n = 0
    with open(path, "rb") as fh:
        for line in _bounded_lines(fh):  # a huge line is counted without being read whole
            n += bool(line.strip())
    return n


# --------------------------------------------------------------------------------------------
# coding one chunk (runs in a worker process, in a Dask task, or inline)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def error_line(rec: int, source: str, encounter: Optional[str], kind: str, problems: Sequence[tuple[str, str]],
               warnings: Sequence[str] = ()) -> Out:
    body: dict[str, Any] = {
        "record": rec,
        "encounter": encounter,
        "source": source,
    }
    if warnings:
        body["warnings"] = list(warnings)
    body["error"] = {"kind": kind, "problems": [{"path": p, "message": m} for p, m in problems]}
    return _dumps(body) + "\n", ("error", kind)


def _encounter_id(data: Any) -> Optional[str]:
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def _parse(item: Item, limit: Any = None) -> tuple[Any, Optional[Out]]:
    rec, source, text = item
    if text.startswith("\x01"):  # mapped from FHIR (oncologic/formats/fhir_batch.py)
        return json.loads(text[1:]).get("document"), None
    if text.startswith("\x00"):
        return None, error_line(rec, source, None, "input", [("(file)", text[1:])])
    from .load import InputError, parse_document, parse_json

    try:
        if source.endswith((".yaml", ".yml")):
            return parse_document(text, source, limit), None
        return parse_json(text, source, limit), None
    except InputError as exc:
        problems = exc.problems
        if exc.kind == "input" and _binary(text):
            problems = [("(document)", "the record is not text: it holds control bytes (" + _sample(text)
                         + "), not a JSON object; is the file binary or truncated?")] + list(problems)
        return None, error_line(rec, source, None, exc.kind, problems)


def _binary(text: str) -> bool:
    """The record holds control bytes other than tab, newline and carriage return."""
    return any(ord(c) < 32 and c not in "\t\n\r" for c in text[:4096]) or "\ufffd" in text[:4096]


def _sample(text: str) -> str:
    from .load import safe_text

    head = text.strip()[:12]
    return "starts " + safe_text(repr(head))


def _limits_of(opts: "BatchOptions") -> Any:
    from .input_limits import Limits

    return Limits.current(max_administrations=opts.max_administrations)


_SITES: dict[str, Any] = {}


def site_of(opts: BatchOptions) -> Any:
    """The site configuration of ``opts`` (read once per process; None without one)."""
    if opts.site is None:
        return None
    if opts.site not in _SITES:
        from .formats.site import load_site

        _SITES[opts.site] = load_site(opts.site)
    return _SITES[opts.site]


def code_records(items: Sequence[Item], opts: BatchOptions) -> list[Out]:
    """The output records of ``items``, coded as one batch. Raises when the engine fails on the
    batch (the callers split it: :func:`code_records_robust`)."""
    from .load import InputError, validate
    from .solver import code_encounters

    out: list[Optional[Out]] = [None] * len(items)
    valid: list[tuple[int, Any, Optional[str]]] = []  # (position, Loaded, id)
    for pos, item in enumerate(items):
        rec, source, _text = item
        if _text.startswith("\x01"):
            from .formats.fhir_batch import load_record

            fl, fid, problems, fwarn, fkind = load_record(_text, site_of(opts))
            if fl is None:
                out[pos] = error_line(rec, source, fid, fkind, problems, fwarn)
            else:
                valid.append((pos, fl, fid))
            continue
        limit = _limits_of(opts)
        data, err = _parse(item, limit)
        if err is not None:
            out[pos] = err
            continue
        enc_id = _encounter_id(data)
        try:
            loaded = validate(data, site=site_of(opts), limit=limit)
        except InputError as exc:  # LimitError: kind too_large
            out[pos] = error_line(rec, source, enc_id, exc.kind, exc.problems)
            continue
        valid.append((pos, loaded, enc_id))
    if valid:
        claims = code_encounters(
            [v[1] for v in valid],
            policy=opts.policy,
            rules=opts.rules,
            policies=[opts.switches] * len(valid) if opts.switches else None,
            strict=opts.strict,
            limits=None,  # the batch has its own deadlines and worker memory limit
        )
        for (pos, loaded, enc_id), claim in zip(valid, claims):
            head = {"record": items[pos][0], "encounter": claim.encounter}
            if loaded.warnings:
                head["warnings"] = list(loaded.warnings)
            line = _dumps(head)[:-1] + ',"claim":' + claim.model_dump_json(by_alias=True) + "}\n"
            info = claim_info(claim.encounter, claim.clean, [f.code for f in claim.findings],
                              claim.payment.program_payment if claim.payment else None,
                              claim.at_stake.allowed if claim.at_stake else None)
            out[pos] = (line, info)
    return out  # type: ignore[return-value]


def code_records_robust(items: Sequence[Item], opts: BatchOptions) -> list[Out]:
    """:func:`code_records`, splitting the batch when it raises, down to the encounter at fault."""
    try:
        return code_records(items, opts)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record, never a lost batch
        if len(items) == 1:
            return [_failure_line(items[0], exc)]
        mid = len(items) // 2
        return code_records_robust(items[:mid], opts) + code_records_robust(items[mid:], opts)


def _failure_line(item: Item, exc: BaseException) -> Out:
    from .load import InputError

    rec, source, text = item
    try:
        data, _err = _parse(item)
    except Exception:  # noqa: BLE001 - the failure itself is reported below
        data = None
    enc_id = _encounter_id(data)
    if isinstance(exc, InputError):
        return error_line(rec, source, enc_id, exc.kind, exc.problems)
    return error_line(rec, source, enc_id, "engine", [("(encounter)", f"{type(exc).__name__}: {exc}")])


# --------------------------------------------------------------------------------------------
# executors: where chunks are coded


class Executor:
    """Runs tasks (lists of items). ``poll`` returns finished tasks as (task id, status, payload):
    status ``ok`` (payload: list of Out), ``timeout`` or ``crash`` (payload: message)."""

    def capacity(self) -> int:
        raise NotImplementedError

    def submit(self, task_id: int, items: list[Item]) -> None:
        raise NotImplementedError

    def poll(self, timeout: float) -> list[tuple[int, str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class InlineExecutor(Executor):
    """Codes each task in this process when it is submitted (no time limit)."""

    def __init__(self, opts: BatchOptions):
        self.opts = opts
        self.done: list[tuple[int, str, Any]] = []

    def capacity(self) -> int:
        return 0 if self.done else 1

    def submit(self, task_id: int, items: list[Item]) -> None:
        self.done.append((task_id, "ok", code_records_robust(items, self.opts)))

    def poll(self, timeout: float) -> list[tuple[int, str, Any]]:
        done, self.done = self.done, []
        return done


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _release_memory() -> None:
    """Return freed heap pages to the OS (glibc), so the resident size measures what is kept:
    clingo's interned symbols, which only recycling the process frees."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _die_with_parent(parent_pid: Optional[int]) -> None:
    """Linux: have the kernel kill this worker when the process that started it dies (a parent
    killed with SIGKILL cannot stop its workers; without this they wait forever on a pipe whose
    other end they hold themselves). Elsewhere the parent's sentinel is watched between tasks."""
    if parent_pid is None or not sys.platform.startswith("linux"):
        return  # not a child process, or no prctl
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(0)  # the parent died before the request was made


def _worker_main(conn, opts_dict: dict) -> None:
    """A worker process: warm up, then code tasks until told to stop or due for recycling."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops us)
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()  # None when run in the calling process
    _die_with_parent(parent.pid if parent is not None else None)
    opts = BatchOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in opts_dict.items()})
    if opts.memory_limit_mb:
        try:
            import resource

            limit = opts.memory_limit_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass
    try:
        from . import engine, refdata, solver

        engine.load_program(solver.rule_paths(opts.policy, opts.rules))
        refdata.fact_index()
    except Exception as exc:  # noqa: BLE001
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    coded = 0
    watch = [conn] + ([parent.sentinel] if parent is not None else [])
    while True:
        try:
            # a forked worker holds copies of the parent's pipe ends, so a dead parent does not
            # show as EOF on conn: its sentinel does (the portable half of _die_with_parent)
            if conn not in wait(watch):
                return
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, items = msg
        result = code_records_robust(items, opts)
        coded += len(items)
        _release_memory()
        retire = coded >= opts.recycle_after or _rss_mb() > opts.recycle_rss_mb
        conn.send((task_id, result, retire))
        if retire:
            return


class _Worker:
    def __init__(self, ctx, opts: BatchOptions):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, opts.to_dict()), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.task: Optional[int] = None
        self.deadline = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class ProcessPool(Executor):
    """``n`` worker processes, recycled; a task past its deadline kills its worker."""

    STARTUP_SECONDS = 120.0

    def __init__(self, opts: BatchOptions, n: int):
        import multiprocessing as mp

        method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform.startswith("linux") else "spawn"
        self.ctx = mp.get_context(method)
        self.opts = opts
        self.workers = [self._start() for _ in range(n)]
        self.done: list[tuple[int, str, Any]] = []

    def _start(self) -> _Worker:
        w = _Worker(self.ctx, self.opts)
        w.deadline = time.monotonic() + self.STARTUP_SECONDS
        return w

    def capacity(self) -> int:
        return sum(1 for w in self.workers if w.ready and w.task is None)

    def submit(self, task_id: int, items: list[Item]) -> None:
        for w in self.workers:
            if w.ready and w.task is None:
                w.task = task_id
                w.deadline = time.monotonic() + self.opts.time_limit + 0.02 * len(items)
                w.conn.send((task_id, items))
                return
        raise RuntimeError("no idle worker")

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self.workers[self.workers.index(w)] = self._start()

    def poll(self, timeout: float) -> list[tuple[int, str, Any]]:
        from multiprocessing.connection import wait

        done, self.done = self.done, []
        if done:
            return done
        conns = {w.conn: w for w in self.workers}
        now = time.monotonic()
        nearest = min((w.deadline for w in self.workers if w.task is not None or not w.ready), default=now + timeout)
        ready = wait(list(conns), timeout=max(0.0, min(timeout, nearest - now)))
        for conn in ready:
            w = conns[conn]
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                code = w.proc.exitcode if not w.proc.is_alive() else None
                if w.task is not None:
                    done.append((w.task, "crash", f"the worker process died (exit code {code})"))
                elif not w.ready:
                    raise BatchError(f"a worker process died while starting (exit code {code})")
                self._replace(w)
                continue
            if msg[0] == "ready":
                w.ready = True
                continue
            if msg[0] == "fatal":
                raise BatchError(f"a worker could not start: {msg[1]}")
            task_id, result, retire = msg
            done.append((task_id, "ok", result))
            w.task = None
            if retire:
                w.proc.join(10)
                self._replace(w)
        now = time.monotonic()
        for w in list(self.workers):
            if now <= w.deadline:
                continue
            if w.task is not None:
                done.append((w.task, "timeout", f"coding took longer than {self.opts.time_limit:g} s (--time-limit)"))
                self._replace(w)
            elif not w.ready:
                raise BatchError("a worker process did not start in time")
        return done

    def close(self) -> None:
        for w in self.workers:
            try:
                if w.task is None and w.ready:
                    w.conn.send(None)
            except OSError:
                pass
        for w in self.workers:
            w.proc.join(2)
            w.kill()


# Linux: the engine is loaded once in the parent and every chunk is coded in a process forked for
# it, which exits after sending its records (docs/performance.md). A fresh child per chunk never
# accumulates clingo's interned symbols (a long-lived worker grounds 30-60 % slower after 15-20
# chunks) and shares the parent's loaded program, reference index and validators copy-on-write.

WARM_UP = (
    '{"id":"WARM-UP","setting":"office","date_of_service":"2025-11-11","payer":{"type":"medicare",'
    '"member_id":"M1"},"diagnoses":["Z51.11","C34.11"],"administrations":[{"id":"a1","route":"iv_infusion",'
    '"access":"port","start":"09:00","stop":"10:00","drugs":[{"hcpcs":"J9045","name":"carboplatin",'
    '"dose":{"value":450,"unit":"mg"}}]},{"id":"a2","route":"iv_push","access":"port","start":"08:45",'
    '"drugs":[{"hcpcs":"J2405","name":"ondansetron","dose":{"value":8,"unit":"mg"}}]}]}'
)


def warm_engine(opts: BatchOptions) -> None:
    """Load everything a chunk needs once (rules, reference index, validators, renderers) by
    coding one small built-in encounter, so that forked children start warm."""
    import gc

    from . import engine, refdata, solver

    prog = engine.load_program(solver.rule_paths(opts.policy, opts.rules))
    len(prog.statements)  # parse the cached program text into the AST the children add
    refdata.fact_index()
    code_records([(0, "<warm-up>", WARM_UP)], opts)
    gc.collect()
    gc.freeze()  # the collector of a child never walks (and so never copies) the parent's objects


def _vm_size() -> int:
    """This process's mapped address space in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _fork_child(conn, items: list[Item], opts: BatchOptions, parent_pid: int) -> None:
    """A forked child: code one chunk, send its records, exit without tearing anything down."""
    import gc
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    if opts.memory_limit_mb:
        try:
            import resource

            # on top of the address space inherited from the parent (a calling program such as a
            # test runner or a notebook may already map more than the limit itself)
            limit = opts.memory_limit_mb * 2**20 + _vm_size()
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass
    from . import engine

    gc.disable()  # a chunk's garbage is freed by the exit; the collector would only copy pages
    engine.retain_controls()  # the exit frees the ground program (clingo's teardown costs ~0.5 ms/enc)
    try:
        result = code_records_robust(items, opts)
        conn.send(result)
        conn.close()
    finally:
        os._exit(0)


_WARM: set[tuple] = set()
_FORK_LOCK = threading.Lock()  # no thread is warming the engine while another forks


def code_records_forked(items: Sequence[Item], opts: BatchOptions) -> list[Out]:
    """:func:`code_records_robust` in a child forked from this (warmed) process, for callers that
    live long, such as a Dask worker: the child's interned symbols and ground programs die with it.
    Where there is no fork, codes in this process. Raises when the child dies without an answer."""
    import pickle

    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return code_records_robust(items, opts)
    key = (opts.policy, opts.rules)
    with _FORK_LOCK:
        if key not in _WARM:
            warm_engine(opts)
            _WARM.add(key)
        r, w = os.pipe()
        pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(r)
            import gc

            from . import engine

            gc.disable()
            engine.retain_controls()
            data = pickle.dumps(code_records_robust(items, opts), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as fh:
                fh.write(data)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _pid, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"the coding process died (wait status {status})")
    return pickle.loads(data)


class _Job:
    def __init__(self, ctx, task_id: int, items: list[Item], opts: BatchOptions):
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_fork_child, args=(child, items, opts, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.task = task_id
        self.deadline = time.monotonic() + opts.time_limit + 0.02 * len(items)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class ForkPool(Executor):
    """Up to ``n`` chunks at a time, each coded in a child forked from this warm process."""

    def __init__(self, opts: BatchOptions, n: int):
        import multiprocessing as mp

        self.ctx = mp.get_context("fork")
        self.opts = opts
        self.n = n
        try:
            warm_engine(opts)
        except Exception as exc:  # noqa: BLE001
            raise BatchError(f"the engine could not start: {type(exc).__name__}: {exc}") from None
        self.jobs: list[_Job] = []

    def capacity(self) -> int:
        return self.n - len(self.jobs)

    def submit(self, task_id: int, items: list[Item]) -> None:
        self.jobs.append(_Job(self.ctx, task_id, items, self.opts))

    def poll(self, timeout: float) -> list[tuple[int, str, Any]]:
        from multiprocessing.connection import wait

        done: list[tuple[int, str, Any]] = []
        if not self.jobs:
            return done
        now = time.monotonic()
        nearest = min(j.deadline for j in self.jobs)
        conns = {j.conn: j for j in self.jobs}
        for conn in wait(list(conns), timeout=max(0.0, min(timeout, nearest - now))):
            job = conns[conn]
            try:
                result = conn.recv()
            except (EOFError, OSError):
                job.proc.join(5)
                done.append((job.task, "crash", f"the worker process died (exit code {job.proc.exitcode})"))
            else:
                done.append((job.task, "ok", result))
            job.kill()
            self.jobs.remove(job)
        now = time.monotonic()
        for job in list(self.jobs):
            if now > job.deadline:
                done.append((job.task, "timeout", f"coding took longer than {self.opts.time_limit:g} s (--time-limit)"))
                job.kill()
                self.jobs.remove(job)
        return done

    def close(self) -> None:
        import gc

        for job in self.jobs:
            job.kill()
        self.jobs.clear()
        gc.unfreeze()  # a program that called run_batch gets its collector back as it was


def make_pool(opts: BatchOptions, n: int) -> Executor:
    """Fork-per-chunk where the platform forks (Linux); long-lived, recycled workers elsewhere."""
    import multiprocessing as mp

    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return ForkPool(opts, n)
    return ProcessPool(opts, n)


# --------------------------------------------------------------------------------------------
# output, resume


def recover(out: Path, reader: Callable[[], Iterator[Item]]) -> tuple[int, Summary]:
    """Keep the complete, correctly numbered records at the start of ``out`` and truncate the
    rest; check that the last one belongs to the same input record. Returns (records kept, summary
    of them)."""
    summary = Summary()
    keep = 0
    last: Optional[dict] = None
    with open(out, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                obj = json.loads(raw)
            except ValueError:
                break
            if not isinstance(obj, dict) or obj.get("record") != summary.records + 1:
                break
            if "claim" in obj:
                claim = obj["claim"]
                summary.add(claim_info(claim.get("encounter"), claim.get("clean"), [f.get("code") for f in claim.get("findings", [])],
                                       (claim.get("payment") or {}).get("program_payment"), (claim.get("at_stake") or {}).get("allowed")))
            elif "error" in obj:
                summary.add(("error", obj["error"].get("kind")))
            else:
                break
            keep += len(raw)
            last = obj
    with open(out, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    if last is not None:
        want = last.get("encounter")
        for rec, _source, text in reader():
            if rec < summary.records:
                continue
            data, _err = _parse((rec, _source, text))
            if _encounter_id(data) != want:
                raise BatchError(
                    f"{out}: record {rec} is for encounter {want!r}, but input record {rec} is "
                    f"{_encounter_id(data)!r}: the output does not belong to this input; not resuming"
                )
            break
        else:
            raise BatchError(f"{out}: has {summary.records} records, more than the input holds; not resuming")
    summary.resumed_from = summary.records
    return summary.records, summary


class _Progress:
    def __init__(self, total: Optional[int], enabled: bool):
        self.total = total
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, done: int, new: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        rate = new / (now - self.t0) if now > self.t0 else 0.0
        if self.total:
            frac = min(1.0, done / self.total)
            bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
            text = f"\r[{bar}] {done:,}/{self.total:,} {100 * frac:5.1f}% {rate:,.0f}/s "
        else:
            text = f"\r{done:,} records {rate:,.0f}/s "
        sys.stderr.write(text + ("\n" if final else ""))
        sys.stderr.flush()


def run_batch(
    source: str | Path,
    out: Optional[str | Path],
    opts: BatchOptions = BatchOptions(),
    resume: bool = False,
    progress: Optional[bool] = None,
    executor: Optional[Executor] = None,
    max_inflight_records: Optional[int] = None,
) -> Summary:
    """Code every record of ``source`` into ``out`` (None: standard output)."""
    t0 = time.monotonic()
    if opts.source_format == "fhir":
        from .formats.fhir_batch import iter_fhir_records

        reader = lambda: iter_fhir_records(source, site_of(opts))  # noqa: E731
    else:
        reader = lambda: iter_records(source)  # noqa: E731
    start = 0
    summary = Summary()
    if resume:
        if out is None:
            raise BatchError("--resume needs an output file (-o)")
        if Path(out).exists():
            start, summary = recover(Path(out), reader)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = _Progress(count_records(source) if progress and opts.source_format == "native" else None, progress)

    own_executor = executor is None
    if executor is None:
        executor = make_pool(opts, opts.workers) if opts.workers > 0 else InlineExecutor(opts)
    width = max(1, opts.workers)
    limit = max_inflight_records or opts.chunk_size * (2 * width + 2)

    fh = open(out, "a" if resume else "w", encoding="utf-8", newline="\n") if out is not None else sys.stdout
    records = (it for it in reader() if it[0] > start)
    exhausted = False
    queue: deque[list[Item]] = deque()
    tasks: dict[int, list[Item]] = {}
    results: dict[int, Out] = {}
    next_rec = start + 1
    next_task = 0
    buffered = 0  # records read and not yet written
    try:
        while True:
            while executor.capacity() > 0:
                if not queue and not exhausted and buffered < limit:
                    chunk = []
                    for item in records:
                        chunk.append(item)
                        if len(chunk) >= opts.chunk_size:
                            break
                    if len(chunk) < opts.chunk_size:
                        exhausted = True
                    if chunk:
                        queue.append(chunk)
                        buffered += len(chunk)
                if not queue:
                    break
                items = queue.popleft()
                tasks[next_task] = items
                executor.submit(next_task, items)
                next_task += 1
            if not tasks and not queue and exhausted:
                break
            for task_id, status, payload in executor.poll(0.5):
                items = tasks.pop(task_id)
                if status == "ok":
                    for item, res in zip(items, payload):
                        results[item[0]] = res
                elif len(items) > 1:
                    k = min(8, len(items))
                    size = -(-len(items) // k)
                    parts = [items[i : i + size] for i in range(0, len(items), size)]
                    queue.extendleft(reversed(parts))
                else:
                    (item,) = items
                    data, _err = _parse(item)
                    results[item[0]] = error_line(item[0], item[1], _encounter_id(data), status, [("(encounter)", payload)])
            lines = []
            while next_rec in results:
                line, info = results.pop(next_rec)
                lines.append(line)
                summary.add(info)
                next_rec += 1
                buffered -= 1
            if lines:
                fh.write("".join(lines))
                fh.flush()
                if out is not None:
                    os.fsync(fh.fileno())
                bar.update(summary.records, summary.records - start)
    finally:
        if own_executor:
            executor.close()
        if out is not None:
            fh.close()
    summary.seconds = time.monotonic() - t0
    bar.update(summary.records, summary.records - start, final=True)
    return summary
