"""Retention and rights erasure take the output's run lock (issue 17).

They delete or rewrite what a run reads and publishes, so while a run holds ``<out>/_run.lock``
they refuse, naming the holder, and a run refuses while they hold it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tokumei.anonymize.policy import default_policy_dir, load_policy
from tokumei.infra import runlock
from tokumei.jobs.retention import apply_retention
from tokumei.jobs.rights_erasure import apply_rights_requests


def test_retention_refuses_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runlock.acquire(out, "20261124-run")  # this live process is the holder
    with pytest.raises(runlock.RunLocked, match="20261124-run"):
        apply_retention(tmp_path / "landing", out, date(2026, 12, 6), 30, 30)
    # a dry run deletes nothing and is not refused
    report = apply_retention(tmp_path / "landing", out, date(2026, 12, 6), 30, 30, dry_run=True)
    assert report.dry_run
    assert runlock.release(out, "20261124-run")
    apply_retention(tmp_path / "landing", out, date(2026, 12, 6), 30, 30)
    assert runlock.read(out) is None  # the job released its own lock


def test_rights_erasure_refuses_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runlock.acquire(out, "20261124-run")
    with pytest.raises(runlock.RunLocked, match="20261124-run"):
        apply_rights_requests(
            tmp_path / "landing",
            out,
            f"sqlite:///{tmp_path / 'ops.db'}",
            load_policy(default_policy_dir()),
            datetime(2026, 12, 6, tzinfo=UTC),
        )


def test_a_run_refuses_while_a_job_holds_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with runlock.held(out, "retention") as job:
        assert job.startswith("retention-")
        with pytest.raises(runlock.RunLocked, match="retention-"):
            runlock.acquire(out, "20261124-run")
    assert runlock.read(out) is None
