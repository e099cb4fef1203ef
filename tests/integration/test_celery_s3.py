"""Two Celery workers that share no disk: only S3 (a moto server), PostgreSQL and Redis (issue 18).

The topology of ``test_celery_cluster`` with ``TOKUMEI_LANDING`` and ``TOKUMEI_OUT`` on a moto
S3 server on 127.0.0.1, and each worker with its own ``TOKUMEI_LOCAL_OUT`` and ``AIRFLOW_HOME``
(different temp dirs): the run's work layer, staging and lock live under the storage URL
(``tokumei.infra.worklayer``, ``runlock.acquire_url``), every task syncs its own scratch copy.
The published Delta tables under ``s3://…/published/delta``, read with Polars, must equal a
local ``tokumei run`` of the same landing and key; after the run the bucket holds no work
layer, staging or lock of it, and no raw landing copy is left on either worker.

Needs PostgreSQL and Redis as ``test_celery_cluster`` does (``scripts/ensure_services.sh``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import DAY, PLANTED, TEST_KEY, all_text_under, moto_s3, write_handmade_landing
from published import read_published

from integration.test_celery_cluster import (
    DAG_ID,
    DAGS,
    HOSTNAME_MODULE,
    REDIS_HOST,
    REDIS_PORT,
    ROOT,
    RUN_TIMEOUT,
    STARTUP_TIMEOUT,
    TABLES,
    WORKERS,
    Cluster,
    _base_env,
    _describe,
    _free_port,
    _pg_execute,
    _redis_flush,
    _redis_free_db,
    _service_checks,
    _start,
    _stop_all,
    _task_instances,
    _token,
    _wait,
    copy_sqlite_to_postgres,
)
from tokumei.infra import objectstore

pytestmark = pytest.mark.integration

BUCKET = "tokumei-it"
ACCESS_KEY_ID = "AKIATOKUMEICELERYS3"
SECRET = "tokumei-it-secret-7Hq2LmX9pV4sR1nW"


def _worker_home(root: Path, name: str) -> Path:
    return root / name


def _failed_logs(root: Path, run_id: str, tis: list[dict], lines: int = 30) -> str:
    """Tails of the failed tasks' logs, from each worker's own AIRFLOW_HOME."""
    failed = {ti["task_id"] for ti in tis if ti["state"] == "failed"}
    parts = []
    for name in WORKERS:
        run_dir = _worker_home(root, name) / "airflow" / "logs" / f"dag_id={DAG_ID}"
        for log in sorted(run_dir.glob(f"run_id={run_id}/**/*.log")):
            task = next((p.split("=", 1)[1] for p in log.parts if p.startswith("task_id=")), None)
            if task in failed:
                text = log.read_text(encoding="utf-8", errors="replace").splitlines()
                parts.append(f"--- {name}: {log.name} ({task})\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def s3_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path, str]]:
    """moto S3 with the landing, the databases, and api-server + scheduler + dag-processor +
    two workers whose only common ground is S3, PostgreSQL and Redis."""
    _service_checks()
    root = tmp_path_factory.mktemp("celery_s3")
    with moto_s3(ACCESS_KEY_ID, SECRET) as (endpoint, _mp):
        landing = write_handmade_landing(root / "landing")
        fs = objectstore.filesystem()
        fs.mkdir(BUCKET)
        for f in sorted(p for p in landing.glob("*/date=*/*") if p.is_file()):
            fs.put_file(str(f), f"{BUCKET}/landing/{f.relative_to(landing).as_posix()}")
        out_url = f"s3://{BUCKET}/out"
        suffix = secrets.token_hex(4)
        af_db, ops_db = f"tokumei_af3_{suffix}", f"tokumei_ops3_{suffix}"
        af_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{af_db}"
        ops_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{ops_db}"
        broker_db = _redis_free_db()
        port = _free_port()
        home, logs, pymod = root / "airflow", root / "component_logs", root / "pymod"
        for d in (home, logs, pymod):
            d.mkdir()
        (pymod / "tokumei_it_host.py").write_text(HOSTNAME_MODULE)
        api = f"http://127.0.0.1:{port}"
        s3_env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            objectstore.ENDPOINT_ENV: endpoint,
        }
        env = (
            _base_env(home)
            | s3_env
            | {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__BASE_URL": api,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": af_url,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": af_url,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{broker_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{af_url}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "GX_ANALYTICS_ENABLED": "false",
                "HF_HUB_OFFLINE": "1",
                "TOKUMEI_LANDING": f"s3://{BUCKET}/landing",
                "TOKUMEI_OUT": out_url,
                "AIRFLOW_CONN_TOKUMEI_OPSDB": json.dumps(
                    {
                        "conn_type": "postgres",
                        "login": "postgres",
                        "host": "127.0.0.1",
                        "port": 5432,
                        "schema": ops_db,
                    }
                ),
                "TOKUMEI_PARTITIONS": "2",
                "TOKUMEI_TASK_RETRIES": "0",
                "TOKUMEI_LANDING_WAIT_MINUTES": "0",
            }
        )
        c = Cluster(api, env, home, landing, root / "unused", ops_url)
        created: list[str] = []
        try:
            _pg_execute(f'CREATE DATABASE "{af_db}"')
            created.append(af_db)
            _pg_execute(f'CREATE DATABASE "{ops_db}"')
            created.append(ops_db)
            copy_sqlite_to_postgres(landing / "ops.db", ops_url)
            for args in (["db", "migrate"], ["pools", "import", str(ROOT / "dags" / "pools.json")]):
                done = subprocess.run(
                    [sys.executable, "-m", "airflow", *args],
                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
                )  # fmt: skip
                assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
            _start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env, logs, c)  # fmt: skip
            _start("scheduler", ["scheduler"], env, logs, c)
            _start("dag-processor", ["dag-processor"], env, logs, c)
            for name in WORKERS:
                own = _worker_home(root, name)
                (own / "airflow").mkdir(parents=True)
                worker_env = env | {
                    # nothing on disk in common with the other worker
                    "AIRFLOW_HOME": str(own / "airflow"),
                    "TOKUMEI_LOCAL_OUT": str(own / "local_out"),
                    "TMPDIR": str(own),
                    "TOKUMEI_PSEUDONYM_KEY": TEST_KEY,
                    "TOKUMEI_IT_HOSTNAME": name,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tokumei_it_host.hostname",
                    "PYTHONPATH": str(pymod),
                }
                args = ["celery", "worker", "--celery-hostname", name, "--concurrency", "2"]
                _start(name, [*args, "--skip-serve-logs"], worker_env, logs, c)

            def healthy() -> bool:
                h = httpx.get(f"{api}/api/v2/monitor/health", timeout=10).json()
                return all(
                    (h.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "dag_processor")
                )

            _wait("api-server, scheduler and dag-processor health", healthy, STARTUP_TIMEOUT, c)
            for name in WORKERS:
                comp = next(x for x in c.components if x.name == name)
                _wait(
                    f"Celery worker {name}",
                    lambda comp=comp, name=name: f"{name} ready." in comp.tail(200),
                    STARTUP_TIMEOUT,
                    c,
                )
            yield c, root, out_url
        finally:
            _stop_all(c.components)
            try:
                _redis_flush(broker_db)
            finally:
                if created:
                    _pg_execute(*(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in created))


def test_workers_sharing_only_s3_publish_what_tokumei_run_publishes(
    s3_cluster: tuple[Cluster, Path, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    c, root, out_url = s3_cluster
    headers = {"Authorization": f"Bearer {_token(c.api)}"}
    with httpx.Client(base_url=c.api, headers=headers, timeout=30) as client:
        _wait(
            f"{DAG_ID} to be parsed",
            lambda: client.get(f"/api/v2/dags/{DAG_ID}").status_code == 200,
            STARTUP_TIMEOUT,
            c,
        )
        r = client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        assert r.status_code == 200, r.text
        r = client.post(
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            json={"dag_run_id": f"it-s3-{secrets.token_hex(4)}", "logical_date": f"{DAY}T00:00:00+09:00"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]

        def finished() -> str | None:
            state = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
            return state if state in ("success", "failed") else None

        started = time.monotonic()
        state = _wait(f"dag run {run_id}", finished, RUN_TIMEOUT, c, every=5.0)
        elapsed = time.monotonic() - started
        tis = _task_instances(client, run_id)
    print(f"\n{DAG_ID} {run_id} (s3, no shared disk): {state} in {elapsed:.0f}s\n{_describe(tis)}")
    assert state == "success", (
        f"dag run {state}:\n{_describe(tis)}\n{_failed_logs(root, run_id, tis)}\n{c.diagnostics()}"
    )
    ran = [ti for ti in tis if ti["state"] == "success"]
    hosts = {ti["hostname"] for ti in ran}
    assert hosts == set(WORKERS), f"only {hosts} executed tasks:\n{_describe(tis)}"

    # The same landing and key through `tokumei run`, locally, against the same ops DB.
    cli_out = tmp_path_factory.mktemp("cli_s3") / "out"
    local_landing = c.landing  # the hand-written files that were uploaded
    cli_env = _base_env(c.home) | {"TOKUMEI_PSEUDONYM_KEY": TEST_KEY, "TOKUMEI_PARTITIONS": "2"}
    cli_env.pop("AIRFLOW_HOME")
    proc = subprocess.run(
        [sys.executable, "-m", "tokumei.cli", "run", "--landing", str(local_landing), "--out", str(cli_out), "--date", DAY, "--db-url", c.ops_url],
        cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in TABLES:
        a = read_published(out_url, "stats", table, DAY)  # Polars over s3://…/published/delta
        b = read_published(cli_out, "stats", table, DAY)
        assert a.height > 0, table
        assert a.equals(b), f"{table} differs:\nairflow on s3:\n{a}\ntokumei run:\n{b}"

    # The run's work layer, staging and lock are gone from the bucket.
    fs = objectstore.filesystem()
    left = [
        k
        for k in fs.find(f"{BUCKET}/out")
        if "/_work/" in k or "/_staging/" in k or k.endswith("/_run.lock")
    ]
    assert left == [], left
    # No raw landing copy and no planted value on either worker's disk (quarantine aside:
    # it stays on the worker by design), nor in any log.
    for name in WORKERS:
        local_out = _worker_home(root, name) / "local_out"
        assert not list(local_out.glob("_work/*/landing/**/*.*")), name
        for path, text in all_text_under(local_out / "_work", local_out / "_staging"):
            for needle in PLANTED.values():
                assert needle not in text, f"{needle!r} in {path}"
    for log in [*root.rglob("*.log")]:
        text = log.read_text(encoding="utf-8", errors="replace")
        for needle in [*PLANTED.values(), TEST_KEY, SECRET]:
            assert needle not in text, f"{needle!r} in {log}"
