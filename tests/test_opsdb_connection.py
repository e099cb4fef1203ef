"""Under Airflow the operational DB's URL comes from an Airflow connection (issue 18).

``tokumei_opsdb`` (renamed by ``TOKUMEI_OPSDB_CONN_ID``) wins over ``TOKUMEI_DB_URL``, which stays
the fallback for local runs; a ``postgres`` connection becomes a ``postgresql+psycopg`` URL with
its credentials escaped. The Celery integration test runs the whole DAG on PostgreSQL through the
connection alone (tests/integration/test_celery_cluster.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk import Connection
from sqlalchemy.engine import make_url

from tokumei.infra.errors import TokumeiError
from tokumei.pipeline.airflow_tasks import opsdb_url

SECRET = "p@ss/w:rd?#"


def _settings_db_url(tmp_path: Path, **env: str) -> str:
    """``airflow_tasks._settings().db_url`` in a fresh interpreter with ``env``."""
    (tmp_path / "landing").mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "TOKUMEI_"))}
    base |= {"TOKUMEI_LANDING": str(tmp_path / "landing"), "TOKUMEI_OUT": str(tmp_path / "out")}
    code = "from tokumei.pipeline import airflow_tasks as at; print(at._settings().db_url)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=base | env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_a_postgres_connection_becomes_a_psycopg_url_with_its_secret_escaped() -> None:
    conn = Connection(
        conn_id="tokumei_opsdb",
        conn_type="postgres",
        login="ro",
        password=SECRET,
        host="ops-db.internal",
        port=5432,
        schema="service",
        extra=json.dumps({"sslmode": "require"}),
    )
    url = make_url(opsdb_url(conn))
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "ro",
        SECRET,
        "ops-db.internal",
        5432,
        "service",
    )
    assert url.query == {"sslmode": "require"}


def test_sqlite_and_an_explicit_url_and_a_refused_type() -> None:
    sqlite = Connection(conn_id="c", conn_type="sqlite", host="/data/ops.db")
    assert opsdb_url(sqlite) == "sqlite:////data/ops.db"
    explicit = Connection(
        conn_id="c", conn_type="generic", extra=json.dumps({"sqlalchemy_url": "mysql://x/y"})
    )
    assert opsdb_url(explicit) == "mysql://x/y"
    odd = Connection(conn_id="c", conn_type="http", host="h", password=SECRET)
    with pytest.raises(TokumeiError, match="'http' is not an operational DB") as err:
        opsdb_url(odd)
    assert SECRET not in str(err.value)


def test_the_connection_wins_over_the_environment_and_is_optional(tmp_path: Path) -> None:
    conn = {"conn_type": "postgres", "login": "ro", "password": SECRET, "host": "h", "port": 5433,
            "schema": "service"}  # fmt: skip
    env_url = "postgresql+psycopg://env@elsewhere/db"
    got = _settings_db_url(
        tmp_path, AIRFLOW_CONN_TOKUMEI_OPSDB=json.dumps(conn), TOKUMEI_DB_URL=env_url
    )
    assert make_url(got).password == SECRET and make_url(got).port == 5433
    # renamed connection
    got = _settings_db_url(
        tmp_path, AIRFLOW_CONN_OPS_REPLICA=json.dumps(conn), TOKUMEI_OPSDB_CONN_ID="ops_replica"
    )
    assert make_url(got).host == "h"
    # no connection: TOKUMEI_DB_URL, then the SQLite file of a local landing
    assert _settings_db_url(tmp_path, TOKUMEI_DB_URL=env_url) == env_url
    assert _settings_db_url(tmp_path) == f"sqlite:///{tmp_path / 'landing' / 'ops.db'}"
