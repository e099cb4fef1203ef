"""DAG integrity (DagBag) and a real `dag.test()` run on Airflow's embedded SQLite DB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import DAY, PLANTED, TEST_KEY, airflow_env, all_text_under, write_handmade_landing

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"


def test_dagbag_imports_without_errors(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        dag = bag.dags["usage_analytics"]
        print(json.dumps({{"errors": {{k: str(v)[:300] for k, v in bag.import_errors.items()}},
                          "dags": sorted(bag.dag_ids),
                          "tasks": sorted(t.task_id for t in dag.tasks),
                          "schedule": repr(dag.timetable), "retries": dag.default_args.get("retries")}}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=airflow_env(tmp_path / "af"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert "usage_analytics" in info["dags"]
    assert set(info["tasks"]) >= {
        "start",
        "extract",
        "discover",
        "filter_rights",
        "pseudonymize",
        "generalize",
        "scrub",
        "plan",
        "stats_map",
        "stats_reduce",
        "anonymize_records",
        "validate",
        "publish",
        "cleanup",
        "fail_run",
    }
    assert "0 0 * * *" in info["schedule"] and "Asia/Tokyo" in info["schedule"]
    assert info["retries"] >= 1


def test_dag_files_import_only_the_sdk_at_top_level() -> None:
    for dag_file in DAGS.glob("*.py"):
        top = [
            ln for ln in dag_file.read_text().splitlines() if ln.startswith(("import ", "from "))
        ]
        for line in top:
            assert any(
                ok in line
                for ok in ("airflow.sdk", "__future__", "datetime", "pendulum", "import os")
            ), f"{dag_file.name}: {line}"


@pytest.mark.slow
def test_dag_test_runs_end_to_end_on_sqlite(tmp_path: Path) -> None:
    landing = write_handmade_landing(tmp_path / "landing")
    out = tmp_path / "out"
    env = airflow_env(
        tmp_path / "af",
        TOKUMEI_LANDING=str(landing),
        TOKUMEI_OUT=str(out),
        TOKUMEI_DB_URL=f"sqlite:///{landing / 'ops.db'}",
        TOKUMEI_PSEUDONYM_KEY=TEST_KEY,
        TOKUMEI_TASK_RETRIES="0",
        TOKUMEI_PARTITIONS="2",  # exercises dynamic task mapping
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    code = textwrap.dedent(f"""
        import datetime, sys
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder={str(DAGS)!r}).dags["usage_analytics"]
        dr = dag.test(logical_date=datetime.datetime.fromisoformat("{DAY}T00:00:00+09:00"))
        print("STATE", dr.state)
        sys.exit(0 if str(dr.state).endswith("success") else 1)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900
    )
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-4000:]
    manifest = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert manifest["status"] == "published"
    assert manifest["steps"]["partitions"] == 2
    assert (out / "published" / "stats" / "page_views" / f"date={DAY}" / "part-0.parquet").exists()
    assert not any((out / "_work").iterdir()) if (out / "_work").exists() else True
    # the captured Airflow task logs and XComs carry no raw PII and never the key
    for needle in [*PLANTED.values(), TEST_KEY]:
        assert needle not in logs
        for path, text in all_text_under(tmp_path / "af"):
            if path.suffix in {".log", ".json", ".txt"}:
                assert needle not in text, path
