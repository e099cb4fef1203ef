"""The DAG's task bodies on two workers that share no disk, in-process, against moto S3 (issue 18).

Every task of ``usage_analytics`` is called through ``tokumei.pipeline.airflow_tasks`` as a
Celery worker would, alternating between two local roots (``TOKUMEI_LOCAL_OUT`` of worker a and
worker b) with the landing and the output on the bucket: each task sees only what it pulled.
The published tables must equal a local ``tokumei run`` of the same landing, and the sync's
figures per task are printed (``-s``) for bench notes. The Celery cluster itself is
``tests/integration/test_celery_s3.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DAY, PLANTED, all_text_under, moto_s3, write_handmade_landing
from published import read_published

from tokumei.infra import objectstore, runlock, secrets, worklayer
from tokumei.infra.settings import Settings
from tokumei.pipeline import airflow_tasks as at
from tokumei.pipeline import steps

BUCKET = "tokumei-tasks"
TABLES = ("daily_active_users", "page_views", "measurements_summary")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("tasks")
    with moto_s3("AKIATOKUMEITASKS", "tasks-test-secret-Zx81") as (_endpoint, mp):
        landing = write_handmade_landing(root / "landing")
        fs = objectstore.filesystem()
        fs.mkdir(BUCKET)
        for f in sorted(p for p in landing.glob("*/date=*/*") if p.is_file()):
            fs.put_file(str(f), f"{BUCKET}/landing/{f.relative_to(landing).as_posix()}")
        mp.setenv("TOKUMEI_LANDING", f"s3://{BUCKET}/landing")
        mp.setenv("TOKUMEI_OUT", f"s3://{BUCKET}/out")
        mp.setenv("TOKUMEI_DB_URL", f"sqlite:///{landing / 'ops.db'}")
        mp.setenv("TOKUMEI_PARTITIONS", "2")
        workers = {}
        for name in ("a", "b"):
            mp.setenv("TOKUMEI_LOCAL_OUT", str(root / f"worker-{name}"))
            workers[name] = Settings.from_env()
        mp.delenv("TOKUMEI_LOCAL_OUT")
        yield {"root": root, "landing": landing, "workers": workers, "fs": fs}


@pytest.fixture(scope="module")
def dag_run(env: dict[str, Any]) -> dict[str, Any]:
    """The DAG's tasks in order, each on the worker the schedule below gives it."""
    mp = pytest.MonkeyPatch()
    current: dict[str, Settings] = {}
    mp.setattr(at, "_settings", lambda: current["s"])
    mp.setattr(at, "day", lambda: DAY)
    mp.setattr(at, "get_current_context", lambda: {"outlet_events": None})
    mp.setattr(at, "emit_published_assets", lambda *a, **k: 0)
    mp.setattr(secrets, "_from_airflow", lambda: None)
    a, b = env["workers"]["a"], env["workers"]["b"]
    timings: list[tuple[str, str, float]] = []
    logs: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logs.append(record.getMessage())

    grab = Grab(logging.INFO)
    wl_log = logging.getLogger("tokumei.worklayer")
    wl_log.addHandler(grab)
    wl_log.setLevel(logging.INFO)

    def on(worker: Settings, name: str, fn: Any, *args: Any) -> Any:
        current["s"] = worker
        t0 = time.perf_counter()
        out = fn(*args)
        timings.append((name, "a" if worker is a else "b", time.perf_counter() - t0))
        return out

    try:
        run = on(a, "start", at.start)
        files = on(b, "extract", at.extract, run)
        for i in files:  # ingest alternates, starting away from extract's worker
            on(a if i % 2 == 0 else b, f"ingest[{i}]", at.ingest, run, i)
        parts = on(a, "check_inputs", at.check_inputs, run)
        for p in parts:
            on(b if p == 0 else a, f"scrub[{p}]", at.scrub, run, p)
        for p in parts:
            on(a if p == 0 else b, f"stats_map[{p}]", at.stats_map, run, p)
        on(b, "stats_reduce", at.stats_reduce, run)
        on(a, "anonymize_records", at.anonymize_records, run)
        on(b, "validate", at.validate, run)
        locked = runlock.read_url(a.out_url or "")[0]
        remote_before = [k for k in env["fs"].find(f"{BUCKET}/out") if "/_work/" in k]
        on(a, "publish", at.publish, run)
        on(b, "cleanup", at.cleanup, run)
    finally:
        wl_log.removeHandler(grab)
        mp.undo()
    for name, worker, seconds in timings:
        print(f"{name:20s} worker {worker} {seconds:6.2f} s")
    print("\n".join(logs))
    return {"run_id": run, "lock": locked, "remote_work": remote_before, "logs": logs}


@pytest.fixture(scope="module")
def local_run(env: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    a = env["workers"]["a"]
    settings = Settings(landing=env["landing"], db_url=a.db_url, out=out, partitions=2).resolved()
    steps.run_all(settings, DAY)
    return out


def test_published_tables_equal_the_local_run(
    env: dict[str, Any], dag_run: dict[str, Any], local_run: Path
) -> None:
    out_url = env["workers"]["a"].out_url
    for table in TABLES:
        got, want = (
            read_published(out_url, "stats", table, DAY),
            read_published(local_run, "stats", table, DAY),
        )
        assert got.height > 0 and got.equals(want), table
    assert dag_run["lock"]["run_id"] == dag_run["run_id"]


def test_the_bucket_never_held_raw_data_and_is_clean_after(
    env: dict[str, Any], dag_run: dict[str, Any]
) -> None:
    fs = env["fs"]
    keys = dag_run["remote_work"]
    assert keys and not [k for k in keys if "/landing/" in k.split("/_work/", 1)[1]]
    left = [
        k
        for k in fs.find(f"{BUCKET}/out")
        if "/_work/" in k or "/_staging/" in k or k.endswith(runlock.LOCK)
    ]
    assert left == []
    # no raw landing copy left on either worker, and no planted value in its scratch
    for worker in env["workers"].values():
        assert not list(worker.out.glob("_work/*/landing/*/*/*")), worker.out
        for path, text in all_text_under(worker.out / "_work", worker.out / "_staging"):
            for needle in PLANTED.values():
                assert needle not in text, f"{needle!r} in {path}"


def test_each_task_logs_what_it_synced(dag_run: dict[str, Any]) -> None:
    synced = [m for m in dag_run["logs"] if "work layer synced" in m]
    assert len(synced) >= 9
    assert not worklayer.RECORD.startswith("_work")
