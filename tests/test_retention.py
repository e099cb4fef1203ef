"""Retention: exactly the expired partitions go, published/reports never, odd folders are skipped."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import airflow_env

from tokumei.infra.errors import TokumeiError
from tokumei.jobs.retention import apply_retention, days_from_env

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
TODAY = date(2026, 11, 24)
SECRET_VALUE = "hanako.yamada@example.co.jp"  # a raw value inside files: must never be reported


def _part(root: Path, source: str, day: date | str, files: int = 2, size: int = 10) -> Path:
    part = root / source / (f"date={day.isoformat()}" if isinstance(day, date) else day)
    part.mkdir(parents=True)
    for i in range(files):
        (part / f"part-{i}.jsonl").write_text(SECRET_VALUE.ljust(size, "x")[:size])
    return part


def _ago(days: int) -> date:
    return TODAY - timedelta(days=days)


@pytest.fixture()
def zones(tmp_path: Path) -> tuple[Path, Path]:
    landing, out = tmp_path / "landing", tmp_path / "out"
    _part(landing, "events", _ago(0))
    _part(landing, "events", _ago(30))  # exactly at the limit: kept
    _part(landing, "events", _ago(31), files=3, size=7)  # one day past: deleted
    _part(landing, "events", _ago(400), files=1, size=5)  # deleted
    _part(landing, "devices", _ago(45), files=2, size=11)  # deleted
    _part(landing, "devices", _ago(1))
    _part(landing, "events", "date=2026-13-45")  # not a calendar date
    _part(landing, "events", "date=latest")
    _part(landing, "events", "backup-2020")
    (landing / "events" / "README.txt").write_text("not a partition")
    (landing / "ops.db").write_bytes(b"sqlite")  # a file at the landing root, not a source
    q = out / "quarantine"
    _part(q, "events", _ago(31))  # past the landing limit but within quarantine's: kept
    _part(q, "events", _ago(90))  # kept
    _part(q, "events", _ago(91), files=4, size=3)  # deleted
    # published outputs and reports are the product: never deleted, however old
    _part(out / "published" / "stats", "page_views", _ago(1000), files=1)
    _part(out / "published" / "anonymized", "users", _ago(1000), files=1)
    _part(out, "reports", _ago(1000), files=1)
    return landing, out


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` but the run lock's guard file (the job takes the lock)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.name != "_run.lock.guard"}


def test_deletes_exactly_the_expired_partitions(zones: tuple[Path, Path]) -> None:
    landing, out = zones
    protected_before = _tree(out / "published") | {f"r/{p}" for p in _tree(out / "reports")}
    report = apply_retention(landing, out, TODAY, landing_days=30, quarantine_days=90)

    assert sorted(p.name for p in (landing / "events").glob("date=*")) == sorted(
        [f"date={_ago(0)}", f"date={_ago(30)}", "date=2026-13-45", "date=latest"]
    )
    assert [p.name for p in (landing / "devices").iterdir()] == [f"date={_ago(1)}"]
    assert sorted(p.name for p in (out / "quarantine" / "events").iterdir()) == sorted(
        [f"date={_ago(31)}", f"date={_ago(90)}"]
    )
    assert (landing / "ops.db").exists()
    assert not list(landing.rglob(".*deleting"))
    protected_after = _tree(out / "published") | {f"r/{p}" for p in _tree(out / "reports")}
    assert protected_after == protected_before

    summary = report.to_dict()
    assert summary["deleted"] == {
        "landing/devices": {"partitions": 1, "files": 2, "bytes": 22},
        "landing/events": {"partitions": 2, "files": 4, "bytes": 26},
        "quarantine/events": {"partitions": 1, "files": 4, "bytes": 12},
    }
    assert summary["totals"] == {"partitions": 4, "files": 10, "bytes": 60}
    assert summary["kept_partitions"] == 5
    assert summary["landing_cutoff"] == _ago(30).isoformat()
    assert summary["quarantine_cutoff"] == _ago(90).isoformat()
    assert summary["skipped"] == [
        "landing/events/README.txt",
        "landing/events/backup-2020",
        "landing/events/date=2026-13-45",
        "landing/events/date=latest",
    ]


def test_dry_run_deletes_nothing_but_reports_the_same(zones: tuple[Path, Path]) -> None:
    landing, out = zones
    before = _tree(landing.parent)
    dry = apply_retention(landing, out, TODAY, 30, 90, dry_run=True).to_dict()
    assert _tree(landing.parent) == before
    real = apply_retention(landing, out, TODAY, 30, 90).to_dict()
    assert dry["dry_run"] and not real["dry_run"]
    assert dry["deleted"] == real["deleted"] and dry["skipped"] == real["skipped"]


def test_second_run_is_a_no_op(zones: tuple[Path, Path]) -> None:
    landing, out = zones
    apply_retention(landing, out, TODAY, 30, 90)
    after_first = _tree(landing.parent)
    again = apply_retention(landing, out, TODAY, 30, 90)
    assert again.to_dict()["deleted"] == {} and _tree(landing.parent) == after_first


def test_report_and_logs_carry_no_data_values(
    zones: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    landing, out = zones
    with caplog.at_level(logging.INFO, logger="tokumei.retention"):
        report = apply_retention(landing, out, TODAY, 30, 90)
    assert SECRET_VALUE not in json.dumps(report.to_dict())
    assert SECRET_VALUE not in caplog.text
    assert f"deleted landing/events/date={_ago(31)}" in caplog.text  # says what it deleted
    assert "skipped landing/events/date=latest" in caplog.text


def test_symlinked_partition_is_skipped_and_its_target_kept(tmp_path: Path) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    target = _part(out / "published" / "stats", "page_views", _ago(500), files=1)
    (landing / "events").mkdir(parents=True)
    (landing / "events" / f"date={_ago(500)}").symlink_to(target, target_is_directory=True)
    (landing / "linked").symlink_to(out / "published" / "stats", target_is_directory=True)
    report = apply_retention(landing, out, TODAY, 30, 90)
    assert (target / "part-0.jsonl").exists()
    assert report.to_dict()["deleted"] == {}
    assert f"landing/events/date={_ago(500)}" in report.skipped
    assert "landing/linked (symlink)" in report.skipped


def test_landing_overlapping_outputs_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _part(out / "published", "stats", _ago(500), files=1)  # looks like a "source" with old dates
    _part(out, "reports", _ago(500), files=1)
    before = _tree(out)
    report = apply_retention(out, out, TODAY, 30, 90)  # misconfigured: landing == out
    assert _tree(out) == before
    assert any("overlaps" in s for s in report.skipped)


def test_interrupted_deletion_is_finished(tmp_path: Path) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    _part(landing, "events", f".date={_ago(40)}.deleting", files=1, size=4)
    report = apply_retention(landing, out, TODAY, 30, 90)
    assert not any((landing / "events").iterdir())
    assert report.to_dict()["deleted"]["landing/events"] == {
        "partitions": 1,
        "files": 1,
        "bytes": 4,
    }


def test_missing_zones_are_fine_and_bad_days_refused(tmp_path: Path) -> None:
    report = apply_retention(tmp_path / "nope", tmp_path / "out", TODAY, 30, 90)
    assert report.to_dict()["totals"] == {"partitions": 0, "files": 0, "bytes": 0}
    with pytest.raises(TokumeiError):
        apply_retention(tmp_path, tmp_path / "out", TODAY, 0, 90)
    with pytest.raises(TokumeiError):
        apply_retention(tmp_path, tmp_path / "out", TODAY, 30, -1)


def test_days_from_env() -> None:
    assert days_from_env({}) == (30, 90)
    assert days_from_env(
        {"TOKUMEI_RETENTION_LANDING_DAYS": "7", "TOKUMEI_RETENTION_QUARANTINE_DAYS": " 14 "}
    ) == (7, 14)
    for bad in ("0", "-3", "thirty", "1.5"):
        with pytest.raises(TokumeiError, match="TOKUMEI_RETENTION_LANDING_DAYS"):
            days_from_env({"TOKUMEI_RETENTION_LANDING_DAYS": bad})


def test_retention_dag_imports_and_runs_the_sweep(tmp_path: Path) -> None:
    """DagBag of the DAG file, then the task body via ``dag.test()`` on an embedded SQLite DB."""
    landing, out = tmp_path / "landing", tmp_path / "out"
    _part(landing, "events", _ago(31))
    _part(landing, "events", _ago(2))
    home = tmp_path / "af"
    env = airflow_env(
        home,
        TOKUMEI_LANDING=str(landing),
        TOKUMEI_OUT=str(out),
        TOKUMEI_RETENTION_LANDING_DAYS="30",
        TOKUMEI_TASK_RETRIES="0",
    )
    code = textwrap.dedent(f"""
        import datetime, json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS / "retention.py")!r})
        dag = bag.dags["retention"]
        print("INFO", json.dumps({{"errors": {{k: str(v)[:300] for k, v in bag.import_errors.items()}},
                          "tasks": sorted(t.task_id for t in dag.tasks),
                          "schedule": str(dag.schedule), "catchup": dag.catchup,
                          "params": sorted(dag.params.keys())}}))
        from airflow.utils import db
        db.initdb()
        dr = dag.test(logical_date=datetime.datetime.fromisoformat("{TODAY}T09:00:00+09:00"))
        ti = dr.get_task_instance("apply_retention")
        print("RESULT", json.dumps({{"state": str(dr.state), "ti": str(ti.state),
                                    "xcom": ti.xcom_pull(task_ids="apply_retention")}}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines() if ln[:4] in {"INFO", "RESU"})
    info = json.loads(lines["INFO"])
    assert info == {
        "errors": {},
        "tasks": ["apply_retention"],
        "schedule": "@daily",
        "catchup": False,
        "params": ["dry_run", "today"],
    }
    result = json.loads(lines["RESULT"])
    assert result["state"].endswith("success") and result["ti"].endswith("success"), result
    assert [p.name for p in (landing / "events").iterdir()] == [f"date={_ago(2)}"]
    assert result["xcom"]["deleted"] == {
        "landing/events": {"partitions": 1, "files": 2, "bytes": 20}
    }


def test_retained_activity_layer_has_its_own_retention(tmp_path: Path) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    landing.mkdir()
    ret = out / "retained"
    _part(ret, "activity", _ago(400))  # exactly at the default limit: kept
    _part(ret, "activity", _ago(401))  # deleted
    _part(ret, "purchases", _ago(10))
    _part(ret, "purchases", _ago(11))  # deleted with activity_days=10
    report = apply_retention(landing, out, TODAY, 30, 90).to_dict()
    assert [p.name for p in (ret / "activity").iterdir()] == [f"date={_ago(400)}"]
    assert report["activity_cutoff"] == _ago(400).isoformat()
    apply_retention(landing, out, TODAY, 30, 90, activity_days=10)
    assert [p.name for p in (ret / "purchases").iterdir()] == [f"date={_ago(10)}"]
    assert not (ret / "activity").exists() or not any((ret / "activity").iterdir())


def test_published_delta_versions_go_by_vacuum_and_the_release_stays(tmp_path: Path) -> None:
    """Replaced versions of the published Delta tables are Delta's vacuum's (docs/adr/0008):
    kept while younger than the version days, the newest release always readable."""
    import polars as pl

    from tokumei.infra.tableformat import publish_release, read_table

    out = tmp_path / "out"
    pub = out / "published"
    for value in (1, 2):  # a date and its re-run: the second replaces every file
        part = tmp_path / f"stage{value}" / "part-0.parquet"
        part.parent.mkdir()
        pl.DataFrame({"date": [TODAY], "persons": [value]}).write_parquet(part)
        publish_release(pub, {"stats/page_views": part}, TODAY.isoformat(), f"run-{value}")
    files = sorted((pub / "delta" / "stats" / "page_views").glob("*.parquet"))
    assert len(files) == 2
    report = apply_retention(tmp_path / "landing", out, TODAY, 30, 90, version_days=1)
    assert report.to_dict()["published_versions"] == {
        "days": 1,
        "vacuumed_files": {"releases": 0, "stats/page_views": 0},
    }
    assert sorted((pub / "delta" / "stats" / "page_views").glob("*.parquet")) == files
    assert read_table(pub, "stats/page_views")["persons"].to_list() == [2]  # type: ignore[index]
    with pytest.raises(TokumeiError, match="version_days"):
        apply_retention(tmp_path / "landing", out, TODAY, 30, 90, version_days=0)
