"""oncologic batch: order, error records, isolation of a pathological encounter, resume after a
kill, and "coded in a batch" == "coded alone" (a property over generated encounters).

No timing assertions here: speed is measured by benchmarks/run.py (docs/performance.md).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generator as gen  # benchmarks/generator.py (pytest pythonpath)

from oncologic.batch import BatchError, BatchOptions, code_records, iter_records, run_batch
from oncologic.load import validate
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, docs) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write((d if isinstance(d, str) else json.dumps(d)) + "\n")
    return path


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generator_uses_known_codes_and_is_seeded():
    gen.check_codes()
    a = list(gen.generate(20, seed=3))
    b = list(gen.generate(20, seed=3))
    assert a == b
    assert a != list(gen.generate(20, seed=4))


# ------------------------------------------------------------------------------------------
# the property: a claim coded in a batch is the claim the encounter gets alone


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10**6))
def test_batch_claim_equals_solo_claim(seed):
    docs = list(gen.generate(12, seed=seed, bad_rate=0.0))
    items = [(i, f"gen:{i}", json.dumps(d)) for i, d in enumerate(docs, start=1)]
    batch = code_records(items, BatchOptions())
    assert len(batch) == len(docs)
    for doc, (line, info) in zip(docs, batch):
        rec = json.loads(line)
        assert rec["encounter"] == doc["id"] and info[0] == "claim"
        alone = code_encounters([validate(doc)])[0].model_dump(mode="json", by_alias=True)
        assert rec["claim"] == alone, doc["id"]


# ------------------------------------------------------------------------------------------
# records: order, errors with field paths, nothing dropped


def test_every_record_in_order_with_errors_named(tmp_path):
    docs = list(gen.generate(5, seed=11, bad_rate=0.0))
    bad_route = json.loads(json.dumps(docs[1]))
    bad_route["id"] = "BAD-ROUTE"
    bad_route["administrations"][0]["route"] = "iv_drip"
    lines = [docs[0], "{not json", bad_route, "[1, 2]", "", docs[2], docs[3]]
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    summary = run_batch(src, out, BatchOptions(chunk_size=2), progress=False)
    recs = read_records(out)
    assert [r["record"] for r in recs] == [1, 2, 3, 4, 5, 6]  # the blank line is not a record
    assert [r.get("encounter") for r in recs] == [docs[0]["id"], None, "BAD-ROUTE", None, docs[2]["id"], docs[3]["id"]]
    assert recs[1]["error"]["kind"] == "input" and recs[1]["source"].endswith(":2")
    assert recs[1]["error"]["problems"][0]["path"] == "(document)"
    assert recs[2]["error"]["problems"][0]["path"] == "administrations[0].route"
    assert recs[3]["error"]["problems"][0]["path"] == "(document)"
    assert all("claim" in recs[i] for i in (0, 4, 5))
    assert summary.records == 6 and summary.claims == 3 and summary.errors["input"] == 3
    assert "clean rate" in summary.render() and "input 3" in summary.render()


def test_folder_of_encounter_files(tmp_path):
    docs = list(gen.generate(3, seed=5, bad_rate=0.0))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "b.json").write_text(json.dumps(docs[1]))
    (folder / "a.json").write_text(json.dumps(docs[0]))
    (folder / "c.yaml").write_text((ROOT / "examples" / "seed_session.yaml").read_text())
    (folder / "notes.txt").write_text("not an encounter")
    out = tmp_path / "out.jsonl"
    run_batch(folder, out, BatchOptions(), progress=False)
    recs = read_records(out)
    assert [r["encounter"] for r in recs] == [docs[0]["id"], docs[1]["id"], "ENC-SEED-001"]


def test_too_large_encounter_is_an_error_record_alone(tmp_path):
    docs = list(gen.generate(3, seed=2, bad_rate=0.0))
    big = gen.pathological(40)
    src = write_jsonl(tmp_path / "in.jsonl", [docs[0], big, docs[1]])
    out = tmp_path / "out.jsonl"
    run_batch(src, out, BatchOptions(max_administrations=30), progress=False)
    recs = read_records(out)
    assert recs[1]["encounter"] == "ENC-PATHOLOGICAL"
    assert recs[1]["error"]["kind"] == "too_large"
    assert recs[1]["error"]["problems"][0]["path"] == "administrations"
    assert "claim" in recs[0] and "claim" in recs[2]


def test_engine_failure_is_isolated_to_its_encounter(tmp_path, monkeypatch):
    """A chunk that raises is split down to the encounter at fault; the others keep their claims."""
    import oncologic.batch as batch_mod

    docs = list(gen.generate(6, seed=9, bad_rate=0.0))
    poison = docs[3]["id"]
    real = batch_mod.code_records

    def flaky(items, opts):
        if any(json.loads(text).get("id") == poison for _r, _s, text in items):
            if len(items) > 1:
                raise RuntimeError("simulated engine failure")
            raise RuntimeError("this encounter breaks the engine")
        return real(items, opts)

    monkeypatch.setattr(batch_mod, "code_records", flaky)
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    out = tmp_path / "out.jsonl"
    run_batch(src, out, BatchOptions(chunk_size=6), progress=False)
    recs = read_records(out)
    assert [r["record"] for r in recs] == list(range(1, 7))
    assert recs[3]["error"]["kind"] == "engine" and recs[3]["encounter"] == poison
    assert "breaks the engine" in recs[3]["error"]["problems"][0]["message"]
    assert all("claim" in r for i, r in enumerate(recs) if i != 3)


def test_worker_processes_give_the_inline_output_and_isolate_a_timeout(tmp_path):
    """Two worker processes: same bytes as the in-process run; an encounter that runs past the
    time limit (a chunk that hangs kills its worker) becomes a timeout/crash record alone."""
    docs = list(gen.generate(8, seed=21, bad_rate=0.0))
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    inline = tmp_path / "inline.jsonl"
    run_batch(src, inline, BatchOptions(chunk_size=3), progress=False)
    pooled = tmp_path / "pooled.jsonl"
    run_batch(src, pooled, BatchOptions(chunk_size=3, workers=2, recycle_after=4), progress=False)
    assert pooled.read_bytes() == inline.read_bytes()

    hang = gen.pathological(30000)  # ~10 s of grounding even with the linear rules (issue #16)
    docs2 = docs[:3] + [hang] + docs[3:5]
    src2 = write_jsonl(tmp_path / "in2.jsonl", docs2)
    out2 = tmp_path / "out2.jsonl"
    opts = BatchOptions(chunk_size=6, workers=1, time_limit=3.0, max_administrations=100_000, memory_limit_mb=1500)  # 3 s: margin for a slow machine; the pathological encounter takes far longer
    run_batch(src2, out2, opts, progress=False)
    recs = read_records(out2)
    assert [r["record"] for r in recs] == list(range(1, 7))
    assert recs[3]["encounter"] == "ENC-PATHOLOGICAL"
    assert recs[3]["error"]["kind"] in ("timeout", "crash", "engine")
    expected = read_records(inline)
    assert [r["claim"] for i, r in enumerate(recs) if i != 3] == [e["claim"] for e in expected[:5]]


def test_both_pools_give_the_inline_output_and_fork_a_child_per_chunk(tmp_path):
    """The fork-per-chunk pool (Linux) and the long-lived worker pool (other platforms) write the
    bytes of the in-process run; each chunk of the fork pool is coded by a process of its own."""
    import os

    import oncologic.batch as batch_mod

    docs = list(gen.generate(7, seed=23, bad_rate=0.1))
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    inline = tmp_path / "inline.jsonl"
    run_batch(src, inline, BatchOptions(chunk_size=2), progress=False)
    spawned = tmp_path / "spawned.jsonl"
    opts = BatchOptions(chunk_size=2, workers=2, recycle_after=3)
    run_batch(src, spawned, opts, progress=False, executor=batch_mod.ProcessPool(opts, 2))
    assert spawned.read_bytes() == inline.read_bytes()
    if not sys.platform.startswith("linux"):
        return
    pids = []
    real = batch_mod.code_records_robust

    def spy(items, o):
        pids.append(os.getpid())
        (tmp_path / f"pid-{len(pids)}-{os.getpid()}").write_text("")
        return real(items, o)

    pool = batch_mod.ForkPool(BatchOptions(chunk_size=2, workers=2), 2)
    batch_mod.code_records_robust, saved = spy, real
    try:
        forked = tmp_path / "forked.jsonl"
        run_batch(src, forked, BatchOptions(chunk_size=2, workers=2), progress=False, executor=pool)
    finally:
        batch_mod.code_records_robust = saved
        pool.close()
    assert forked.read_bytes() == inline.read_bytes()
    children = {p.name.rsplit("-", 1)[1] for p in tmp_path.glob("pid-*")}
    assert len(children) == 4 and str(os.getpid()) not in children  # 7 records in chunks of 2


# ------------------------------------------------------------------------------------------
# resume


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "oncologic.cli", "batch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _children(pid: int) -> Optional[list[int]]:
    """The child processes of pid (Linux /proc), None where the kernel does not list them."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return None


def _all_gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue  # gone
            if state != "Z":
                alive.append(pid)
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    docs = list(gen.generate(24, seed=31, bad_rate=0.05))
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    full = tmp_path / "full.jsonl"
    run_batch(src, full, BatchOptions(chunk_size=4), progress=False)
    want = full.read_bytes()

    out = tmp_path / "out.jsonl"
    proc = _cli(str(src), "-o", str(out), "--workers", "1", "--chunk-size", "2", "--no-progress")
    deadline = time.monotonic() + 120
    workers: Optional[list[int]] = None
    while time.monotonic() < deadline and proc.poll() is None:
        # Linux forks a child per chunk: kill while one is coding (there is a moment between chunks without)
        if out.exists() and out.read_bytes().count(b"\n") >= 6:
            workers = _children(proc.pid)
            if workers is None or workers:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)  # the parent only; its workers must not outlive it
    proc.wait(30)
    if workers is not None:  # Linux: the kernel lists the workers
        assert workers, "the run had no worker process"
        assert _all_gone(workers, 15), f"worker processes {workers} outlived their killed parent"
    partial = out.read_bytes()
    assert 1 <= partial.count(b"\n") < want.count(b"\n")
    # a half-written record after the last newline, as a kill in the middle of a write leaves it
    with open(out, "ab") as fh:
        fh.write(want[len(partial):][: 37] if len(partial) < len(want) else b'{"record": 99, "encou')
    done = _cli(str(src), "-o", str(out), "--workers", "1", "--resume", "--no-progress")
    _stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    assert out.read_bytes() == want
    assert "resumed after record" in stderr


def test_resume_refuses_output_of_another_input(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", list(gen.generate(3, seed=1, bad_rate=0.0)))
    b = write_jsonl(tmp_path / "b.jsonl", list(gen.generate(3, seed=2, bad_rate=0.0)))
    out = tmp_path / "out.jsonl"
    run_batch(a, out, BatchOptions(), progress=False)
    with pytest.raises(BatchError, match="does not belong to this input"):
        run_batch(b, out, BatchOptions(), resume=True, progress=False)
    proc = _cli(str(b), "-o", str(out), "--resume", "--workers", "0")
    _o, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "not resuming" in err


def test_iter_records_skips_blank_lines_and_numbers_records(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text('\ufeff{"id": 1}\n\n  \n{"id": 2}\n{"id": 3}')
    recs = list(iter_records(src))
    assert [(r[0], r[1]) for r in recs] == [(1, f"{src}:1"), (2, f"{src}:4"), (3, f"{src}:5")]
