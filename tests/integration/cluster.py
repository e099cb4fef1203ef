"""The Airflow cluster the integration tests start: services, processes, REST, results.

``test_celery_cluster`` (workers sharing a disk) and ``test_celery_s3`` (workers sharing only S3)
start the same topology — PostgreSQL as Airflow's metadata DB and as the operational DB, Redis as
the Celery broker, api-server + scheduler + dag-processor + two Celery workers as separate
processes — trigger the DAG through the REST API and compare its published statistics with
``tokumei run``. What they share lives here; each test file keeps only its own storage setup and
assertions.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, superuser ``postgres``) and Redis on
127.0.0.1:6379; ``scripts/ensure_services.sh`` starts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import sqlalchemy as sa
from conftest import DAY, TEST_KEY
from published import read_published

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_ID = "usage_analytics"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
TABLES = ("daily_active_users", "page_views", "measurements_summary")
WORKERS = ("tokumei-it-worker-a", "tokumei-it-worker-b")

# 2 shared cores: migrations, five Airflow processes and a Presidio/GiNZA load per task are slow.
STARTUP_TIMEOUT = 300
RUN_TIMEOUT = 15 * 60
STOP_TIMEOUT = 30

# A worker's task instances record ``hostname_callable()``. Two workers on one machine would both
# report the FQDN, so each worker gets its own name through this tiny module; without it the
# "both workers executed tasks" assertion could not tell them apart.
HOSTNAME_MODULE = textwrap.dedent('''
    """Per-process hostname for Airflow's [core] hostname_callable (integration test only)."""
    import os


    def hostname() -> str:
        return os.environ["TOKUMEI_IT_HOSTNAME"]
''')


# --------------------------------------------------------------------------------------------
# services


def service_checks() -> None:
    """Skip with the reason (instead of a fixture timeout) when PostgreSQL or Redis is down."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=3):
            pass
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3):
            pass
    except OSError as exc:
        pytest.skip(f"PostgreSQL/Redis not reachable ({exc}); run scripts/ensure_services.sh")


def free_port() -> int:
    """A loopback port nobody listens on now (the api-server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_execute(*statements: str) -> None:
    """Run DDL (CREATE/DROP DATABASE) outside a transaction, as PostgreSQL requires."""
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for stmt in statements:
                conn.execute(sa.text(stmt))
    finally:
        engine.dispose()


def redis_free_db() -> int:
    """An empty Redis logical DB (1–15), so concurrent runs and other users do not collide."""
    import redis

    for n in secrets.SystemRandom().sample(range(1, 16), 15):
        if redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=n).dbsize() == 0:
            return n
    pytest.skip("no empty Redis database among 1-15")


def redis_flush(n: int) -> None:
    import redis

    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=n).flushdb()


def copy_sqlite_to_postgres(sqlite_path: Path, pg_url: str) -> None:
    """Copy every table of the hand-written SQLite operational DB into PostgreSQL.

    Columns become TEXT and values their text form, which is what SQLite holds for the
    hand-written rows: ``tokumei.ingest.opdb.read_table`` reads values as text anyway, so the
    pipeline sees the same strings from either database and the policy does the typing.
    """
    src = sqlite3.connect(sqlite_path)
    engine = sa.create_engine(pg_url)
    try:
        names = [r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        meta = sa.MetaData()
        with engine.begin() as conn:
            for name in names:
                cur = src.execute(f'SELECT * FROM "{name}"')
                cols = [d[0] for d in cur.description]
                table = sa.Table(name, meta, *(sa.Column(c, sa.Text) for c in cols))
                table.create(conn)
                rows = [
                    {c: None if v is None else str(v) for c, v in zip(cols, row, strict=True)}
                    for row in cur.fetchall()
                ]
                if rows:
                    conn.execute(table.insert(), rows)
    finally:
        src.close()
        engine.dispose()


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class Component:
    """One long-running Airflow process in its own process group, logging to a file."""

    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Cluster:
    """Everything the test needs to talk to the running cluster and to explain a failure."""

    api: str
    env: dict[str, str]
    home: Path
    landing: Path
    out: Path
    ops_url: str
    components: list[Component] = field(default_factory=list)

    def check_alive(self) -> None:
        dead = [c for c in self.components if c.proc.poll() is not None]
        if dead:
            pytest.fail(
                "Airflow component(s) exited early:\n"
                + "\n".join(f"--- {c.name} (exit {c.proc.returncode})\n{c.tail()}" for c in dead)
            )

    def diagnostics(self) -> str:
        return "\n".join(f"--- {c.name} ({c.log})\n{c.tail()}" for c in self.components)


def start(
    name: str, args: list[str], env: dict[str, str], logs: Path, cluster: Cluster
) -> Component:
    """Start ``airflow <args>`` in a new session so teardown can signal its whole tree."""
    log = logs / f"{name}.log"
    fh = open(log, "wb")  # noqa: SIM115 - the child owns it; closed when the parent closes below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        fh.close()
    comp = Component(name, proc, log)
    cluster.components.append(comp)
    return comp


def stop_all(components: list[Component]) -> None:
    """SIGTERM every process group, wait a bounded time, then SIGKILL what is left.

    Groups, not PIDs: Celery's pool children, task supervisors and uvicorn workers must not
    survive the test (they would keep connections to databases that are about to be dropped).
    """
    for c in components:
        if c.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for c in components:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for c in components:
        # The leader may be gone while its children still run: kill the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=10)


def wait(what: str, check: Any, timeout: float, cluster: Cluster, every: float = 2.0) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.check_alive()
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{cluster.diagnostics()}")


def base_env(home: Path) -> dict[str, str]:
    """The parent environment without any AIRFLOW_*/TOKUMEI_* leaking in from the caller."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "TOKUMEI_")) and k != "PYTHONPATH"
    } | {"AIRFLOW_HOME": str(home)}


@contextlib.contextmanager
def running_cluster(
    root: Path,
    landing: Path,
    out: Path,
    storage_env: dict[str, str],
    *,
    db_tag: str = "",
    worker_env: Callable[[str], dict[str, str]] = lambda name: {},
    drop_sqlite_ops: bool = False,
) -> Iterator[Cluster]:
    """Databases, broker DB, AIRFLOW_HOME and the five running components; all removed after.

    ``storage_env`` says where the tasks read and write (``TOKUMEI_LANDING``, ``TOKUMEI_OUT``,
    credentials); ``worker_env(name)`` adds a worker's own variables; ``db_tag`` keeps the two
    tests' database names apart; ``drop_sqlite_ops`` removes the hand-written SQLite ops DB once
    copied, to prove that nothing falls back to it.
    """
    service_checks()
    suffix = secrets.token_hex(4)
    af_db, ops_db = f"tokumei_af{db_tag}_{suffix}", f"tokumei_ops{db_tag}_{suffix}"
    af_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{af_db}"
    ops_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{ops_db}"
    broker_db = redis_free_db()
    port = free_port()
    home, logs, pymod = root / "airflow", root / "component_logs", root / "pymod"
    for d in (home, logs, pymod):
        d.mkdir()
    (pymod / "tokumei_it_host.py").write_text(HOSTNAME_MODULE)

    api = f"http://127.0.0.1:{port}"
    env = base_env(home) | {
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
        # Airflow derives the async URL as postgresql+asyncpg, which is not in uv.lock;
        # psycopg 3 is async-capable, so the same driver serves both engines.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": af_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{broker_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{af_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # Only the triggered run: an unpaused daily DAG would otherwise also get the latest
        # scheduled interval, a second run competing for the 2 cores and the same out/ tree.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        # the operational DB from an Airflow connection, as platforms keep credentials (no
        # TOKUMEI_DB_URL: the task settings must take it from the connection)
        "AIRFLOW_CONN_TOKUMEI_OPSDB": json.dumps(
            {
                "conn_type": "postgres",
                "login": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "schema": ops_db,
            }
        ),  # fmt: skip
        "TOKUMEI_PARTITIONS": "2",
        "TOKUMEI_TASK_RETRIES": "0",
    }
    env |= storage_env
    c = Cluster(api, env, home, landing, out, ops_url)
    created: list[str] = []
    try:
        pg_execute(f'CREATE DATABASE "{af_db}"')
        created.append(af_db)
        pg_execute(f'CREATE DATABASE "{ops_db}"')
        created.append(ops_db)
        copy_sqlite_to_postgres(landing / "ops.db", ops_url)
        if drop_sqlite_ops:
            (landing / "ops.db").unlink()

        # the pools of the memory-heavy tasks, as docs/deploy.md says (a task whose pool does
        # not exist is never scheduled)
        for args in (["db", "migrate"], ["pools", "import", str(ROOT / "dags" / "pools.json")]):
            done = subprocess.run(
                [sys.executable, "-m", "airflow", *args],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
            )  # fmt: skip
            assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

        start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env, logs, c)  # fmt: skip
        start("scheduler", ["scheduler"], env, logs, c)
        start("dag-processor", ["dag-processor"], env, logs, c)
        for name in WORKERS:
            # Only workers get the key (docs/deploy.md); each reports its own hostname.
            own_env = env | worker_env(name)
            own_env |= {
                "TOKUMEI_PSEUDONYM_KEY": TEST_KEY,
                "TOKUMEI_IT_HOSTNAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tokumei_it_host.hostname",
                "PYTHONPATH": str(pymod),
            }
            # --skip-serve-logs: two log servers on one host would fight over port 8793, and
            # the api-server reads task logs from AIRFLOW_HOME/logs directly.
            args = ["celery", "worker", "--celery-hostname", name, "--concurrency", "2"]
            start(name, [*args, "--skip-serve-logs"], own_env, logs, c)

        def healthy() -> bool:
            h = httpx.get(f"{api}/api/v2/monitor/health", timeout=10).json()
            return all(
                (h.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            )

        wait("api-server, scheduler and dag-processor health", healthy, STARTUP_TIMEOUT, c)
        for name in WORKERS:
            comp = next(x for x in c.components if x.name == name)
            wait(
                f"Celery worker {name}",
                lambda comp=comp, name=name: f"{name} ready." in comp.tail(200),
                STARTUP_TIMEOUT,
                c,
            )
        yield c
    finally:
        stop_all(c.components)
        try:
            redis_flush(broker_db)
        finally:
            if created:
                pg_execute(*(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in created))


# --------------------------------------------------------------------------------------------
# REST


def token(api: str) -> str:
    """A JWT from the simple auth manager; with all-admins on it accepts any credentials."""
    r = httpx.post(
        f"{api}/auth/token", json={"username": "tokumei-it", "password": "unused"}, timeout=30
    )
    r.raise_for_status()
    return r.json()["access_token"]


def task_instances(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    r.raise_for_status()
    return r.json()["task_instances"]


def describe(tis: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {ti['task_id']}[{ti.get('map_index', -1)}]: {ti['state']} on {ti.get('hostname')}"
        for ti in sorted(tis, key=lambda t: (t.get("start_date") or "", t["task_id"]))
    )


@dataclass
class DagRun:
    """How a triggered run of the DAG ended, and its task instances."""

    run_id: str
    state: str
    seconds: float
    tis: list[dict[str, Any]]


def trigger_and_wait(c: Cluster, run_id_prefix: str) -> DagRun:
    """Unpause the DAG and trigger day ``DAY`` through the REST API; wait for the run to end."""
    headers = {"Authorization": f"Bearer {token(c.api)}"}
    with httpx.Client(base_url=c.api, headers=headers, timeout=30) as client:
        # The dag-processor must have serialized the DAG before it can be unpaused or triggered.
        wait(
            f"{DAG_ID} to be parsed",
            lambda: client.get(f"/api/v2/dags/{DAG_ID}").status_code == 200,
            STARTUP_TIMEOUT,
            c,
        )
        r = client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        assert r.status_code == 200, r.text
        # logical_date = D 00:00 JST, what the scheduler would use for day D: the DAG derives
        # the date itself (no ``date`` param), so this also checks the timezone handling.
        r = client.post(
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            json={"dag_run_id": f"{run_id_prefix}-{secrets.token_hex(4)}", "logical_date": f"{DAY}T00:00:00+09:00"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]

        def finished() -> str | None:
            state = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
            return state if state in ("success", "failed") else None

        started = time.monotonic()
        state = wait(f"dag run {run_id}", finished, RUN_TIMEOUT, c, every=5.0)
        elapsed = time.monotonic() - started
        return DagRun(run_id, state, elapsed, task_instances(client, run_id))


def failed_task_logs(
    homes: Iterable[Path], run_id: str, tis: list[dict[str, Any]], lines: int = 30
) -> str:
    """Tails of the task logs of failed tasks under each AIRFLOW_HOME (a worker's own, or the
    shared one): the component logs only say *that* one failed."""
    failed = {ti["task_id"] for ti in tis if ti["state"] == "failed"}
    parts = []
    for home in homes:
        run_dir = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        for log in sorted(run_dir.rglob("*.log")):
            task = next((p.split("=", 1)[1] for p in log.parts if p.startswith("task_id=")), None)
            if task in failed:
                text = log.read_text(encoding="utf-8", errors="replace").splitlines()
                where = log.relative_to(home.parent)
                parts.append(f"--- task log {where}\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)


def assert_succeeded(c: Cluster, run: DagRun, homes: Iterable[Path], label: str = "") -> None:
    """Print how the run went; fail with the failed tasks' logs (under ``homes``, the
    AIRFLOW_HOMEs the workers log to) and the components' tails unless it succeeded."""
    print(f"\n{DAG_ID} {run.run_id}{label}: {run.state} in {run.seconds:.0f}s\n{describe(run.tis)}")
    assert run.state == "success", (
        f"dag run {run.state}:\n{describe(run.tis)}\n"
        f"{failed_task_logs(homes, run.run_id, run.tis)}\n{c.diagnostics()}"
    )


def assert_ran_on_both_workers(run: DagRun) -> list[dict[str, Any]]:
    """Both workers did real work, and every task ran on one of them (not in-process); the
    successful task instances."""
    ran = [ti for ti in run.tis if ti["state"] == "success"]
    hosts = {ti["hostname"] for ti in ran}
    assert hosts <= set(WORKERS), describe(run.tis)
    assert hosts == set(WORKERS), f"only {hosts} executed tasks:\n{describe(run.tis)}"
    return ran


# --------------------------------------------------------------------------------------------
# results


def tokumei_run(c: Cluster, out: Path) -> None:
    """The cluster's landing through ``tokumei run``, in-process, against its PostgreSQL ops DB."""
    cli_env = base_env(c.home) | {"TOKUMEI_PSEUDONYM_KEY": TEST_KEY, "TOKUMEI_PARTITIONS": "2"}
    cli_env.pop("AIRFLOW_HOME")
    proc = subprocess.run(
        [sys.executable, "-m", "tokumei.cli", "run", "--landing", str(c.landing), "--out", str(out), "--date", DAY, "--db-url", c.ops_url],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def published(out: Path | str) -> dict[str, pl.DataFrame]:
    """The day's published statistics tables (Polars through the Delta release marker)."""
    return {t: read_published(out, "stats", t, DAY) for t in TABLES}


def assert_same_published(airflow_out: Path | str, cli_out: Path, label: str = "airflow") -> None:
    """The DAG published, table by table, what ``tokumei run`` published (and not nothing)."""
    from_airflow, from_cli = published(airflow_out), published(cli_out)
    for table in TABLES:
        a, b = from_airflow[table], from_cli[table]
        assert a.height > 0, table
        assert a.equals(b), f"{table} differs:\n{label}:\n{a}\ntokumei run:\n{b}"


def assert_not_in_logs(logs: Iterable[Path], needles: Iterable[str]) -> None:
    """Nothing raw or secret reached a log."""
    needles = list(needles)
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        for needle in needles:
            assert needle not in text, f"{needle!r} in {log}"
