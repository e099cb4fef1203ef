"""Folders that hold raw values are owner-only from the moment a run starts (0700)."""

from __future__ import annotations

import stat
from pathlib import Path

from conftest import DAY, TEST_KEY, write_handmade_landing

from tokumei.infra.settings import Settings
from tokumei.pipeline import steps


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_work_and_quarantine_folders_are_owner_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    landing = write_handmade_landing(tmp_path / "landing")
    out = tmp_path / "out"
    out.mkdir()
    (out / "quarantine").mkdir(mode=0o755)  # left open by an older version: tightened
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    run_id = steps.start(settings.resolved(), DAY)
    work = steps._paths(settings.resolved(), DAY, run_id).work
    assert _mode(work) == 0o700
    assert _mode(work.parent) == 0o700
    assert _mode(out / "quarantine") == 0o700
