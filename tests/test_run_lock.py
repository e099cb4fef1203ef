"""One run at a time per output (tokumei.infra.runlock): refusal, stale takeover, Airflow runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DAY, TEST_KEY, write_handmade_landing

from tokumei.infra import runlock
from tokumei.infra.runlock import RunLocked
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

HOLD = """
import sys
from pathlib import Path
from tokumei.infra import runlock
runlock.acquire(Path(sys.argv[1]), sys.argv[2])
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    landing = write_handmade_landing(tmp_path / "landing")
    return Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=tmp_path / "out"
    ).resolved()


def _holder(out: Path, run_id: str) -> subprocess.Popen[str]:
    """Another process that takes the output's lock for ``run_id`` and keeps it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out), run_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _write_lock(out: Path, **fields: object) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / runlock.LOCK).write_text(json.dumps(fields))


def test_a_second_run_is_refused_naming_the_holder_then_takes_over_a_dead_one(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    out = settings.out
    proc = _holder(out, "run-A")
    try:
        with pytest.raises(RunLocked) as err:
            steps.start(settings, DAY)
        message = str(err.value)
        assert "run run-A" in message and f"pid {proc.pid}" in message
        assert socket.gethostname() in message and str(out / runlock.LOCK) in message
        assert runlock.read(out)["run_id"] == "run-A"  # the holder's lock is untouched
        # run_all refused too; its cleanup must not free the holder's lock
        with pytest.raises(RunLocked):
            steps.run_all(settings, DAY)
        assert runlock.read(out)["run_id"] == "run-A"
        # the killed holder left its work layer and staging behind
        (out / "_work" / "run-A" / "extracted").mkdir(parents=True)
        (out / "_work" / "run-A" / "extracted" / "raw.parquet").write_bytes(b"raw")
        (out / "_staging" / "run-A" / "published").mkdir(parents=True)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with caplog.at_level("WARNING", logger="tokumei"):
        run_id = steps.start(settings, DAY)
    text = caplog.text
    assert "took over the lock of run run-A" in text and "its process is gone" in text
    assert "removed the work layer and staging area of 1 dead run(s)" in text
    assert runlock.read(out)["run_id"] == run_id
    assert [p.name for p in (out / "_work").iterdir()] == [run_id]
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())
    record = json.loads((out / "_work" / run_id / "steps" / "start.json").read_text())
    assert record["dead_runs_removed"] == 1 and record["stale_lock_taken_over"] is True
    steps.cleanup(settings, DAY, run_id)
    assert runlock.read(out) is None


def test_a_failed_start_releases_the_lock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokumei.stats import period_tables

    def refuse(*args: object) -> None:
        raise RuntimeError("retained key check fails")

    monkeypatch.setattr(period_tables, "check_retained_key", refuse)
    with pytest.raises(RuntimeError):
        steps.start(settings, DAY)
    assert runlock.read(settings.out) is None


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat(timespec="seconds")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_airflow_run_holds_the_lock_while_its_work_layer_exists(tmp_path: Path) -> None:
    """Under Airflow the task that took the lock has ended long before the run has: the run
    id, not the pid, identifies the holder; its work layer shows that it still runs."""
    out = tmp_path / "out"
    host = socket.gethostname()
    lock = {
        "run_id": "run-AF",
        "host": host,
        "pid": _dead_pid(),
        "mode": "airflow",
        "airflow_run": "scheduled__2026-11-24",
        "started_at": _ago(minutes=30),
    }
    _write_lock(out, **lock)
    (out / "_work" / "run-AF").mkdir(parents=True)
    with pytest.raises(RunLocked, match="Airflow run scheduled__2026-11-24"):
        runlock.acquire(out, "run-B", in_airflow=True)
    # the run's cleanup removed the work layer but died before releasing: stale
    (out / "_work" / "run-AF").rmdir()
    note = runlock.acquire(out, "run-B", in_airflow=True)
    assert note and "work layer is gone" in note
    assert runlock.read(out)["run_id"] == "run-B"


def test_lock_age_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    base = {"run_id": "run-X", "host": "another-host", "pid": 1, "mode": "process"}
    # another host cannot be checked: held until the time to live runs out
    _write_lock(out, **base, started_at=_ago(hours=2))
    with pytest.raises(RunLocked, match="another-host"):
        runlock.acquire(out, "run-Y")
    _write_lock(out, **base, started_at=_ago(hours=25))
    assert "time to live" in (runlock.acquire(out, "run-Y") or "")
    # an Airflow lock just taken (its start task still creating the work layer) is held
    _write_lock(out, **{**base, "mode": "airflow"}, started_at=_ago(minutes=1))
    with pytest.raises(RunLocked):
        runlock.acquire(out, "run-Z")
    monkeypatch.setenv("TOKUMEI_LOCK_TTL_HOURS", "0.5")
    _write_lock(out, **base, started_at=_ago(hours=1))
    assert runlock.acquire(out, "run-Z")


def test_release_only_frees_the_own_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runlock.acquire(out, "run-1")
    assert not runlock.release(out, "run-2")
    assert runlock.read(out)["run_id"] == "run-1"
    assert runlock.acquire(out, "run-1") is None  # a retried start of the same run
    assert runlock.release(out, "run-1") and runlock.read(out) is None
    assert os.listdir(out) == [runlock.GUARD]
