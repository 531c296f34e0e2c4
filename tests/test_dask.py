"""The Dask runner writes byte-for-byte the output of the single-process run (local cluster)."""

from __future__ import annotations

import json

import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed (pip install '.[dask]')")

import generator as gen  # noqa: E402  benchmarks/generator.py (pytest pythonpath)

from oncologic.batch import BatchOptions, run_batch  # noqa: E402
from oncologic.dask_runner import run_dask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def test_dask_output_is_byte_identical_to_the_local_run(tmp_path, client):
    docs = [json.dumps(d) for d in gen.generate(30, seed=77, bad_rate=0.1)]
    docs.insert(5, "{broken")
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(docs) + "\n")
    opts = BatchOptions(chunk_size=4)
    local = tmp_path / "local.jsonl"
    run_batch(src, local, opts, progress=False)
    remote = tmp_path / "dask.jsonl"
    summary = run_dask(src, remote, client, opts, progress=False, slots=3)
    assert remote.read_bytes() == local.read_bytes()
    assert summary.records == 31 and summary.errors["input"] >= 1


def test_dask_resume_continues_the_file(tmp_path, client):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in gen.generate(10, seed=5, bad_rate=0.0)))
    opts = BatchOptions(chunk_size=3)
    full = tmp_path / "full.jsonl"
    run_batch(src, full, opts, progress=False)
    want = full.read_bytes()
    cut = tmp_path / "cut.jsonl"
    lines = want.splitlines(keepends=True)
    cut.write_bytes(b"".join(lines[:4]) + lines[4][:20])  # four records and a torn fifth
    summary = run_dask(src, cut, client, opts, resume=True, progress=False)
    assert cut.read_bytes() == want
    assert summary.resumed_from == 4


def test_quiet_local_cluster_reaches_its_workers_and_keeps_the_output(tmp_path):
    """local_cluster (issue #16): the worker processes run with the profiler off and the slower
    monitors of QUIET_WORKER_CONFIG, and still write the local run's bytes."""
    import dask

    from oncologic.dask_runner import QUIET_WORKER_CONFIG, local_cluster

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in gen.generate(8, seed=13, bad_rate=0.0)))
    opts = BatchOptions(chunk_size=3)
    local = tmp_path / "local.jsonl"
    run_batch(src, local, opts, progress=False)
    with local_cluster(1, dashboard_address=None, silence_logs=40) as cluster, distributed.Client(cluster) as c:
        seen = c.run(lambda: {k: dask.config.get(k) for k in QUIET_WORKER_CONFIG})
        assert list(seen.values()) == [QUIET_WORKER_CONFIG]
        remote = tmp_path / "dask.jsonl"
        run_dask(src, remote, c, opts, progress=False)
    assert remote.read_bytes() == local.read_bytes()
