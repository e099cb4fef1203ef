"""The run side of the landing contract (docs/landing.md): refuse, deduplicate, mark partial."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from conftest import DAY, TEST_KEY, seal_landing, write_handmade_landing

from tokumei.infra.settings import Settings
from tokumei.ingest.landing import MARKER, LandingError, LandingIncomplete
from tokumei.pipeline import steps


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    return write_handmade_landing(tmp_path / "landing")


def _settings(landing: Path, out: Path, allow: bool = False) -> Settings:
    db = f"sqlite:///{landing / 'ops.db'}"
    return Settings(landing=landing, db_url=db, out=out, allow_incomplete=allow).resolved()


def _extract(settings: Settings, day: str = DAY) -> dict:
    """extract, ingest and check_inputs: the run's input side; the merged ``extract`` record."""
    run_id = steps.start(settings, day)
    steps.extract(settings, day, run_id)
    steps.ingest(settings, day, run_id)
    return steps.check_inputs(settings, day, run_id)["extract"]


def test_a_source_without_its_marker_stops_the_run_naming_it(landing: Path, tmp_path: Path) -> None:
    (landing / "measurements" / f"date={DAY}" / MARKER).unlink()
    with pytest.raises(LandingIncomplete, match=f"measurements/date={DAY}: no {MARKER}"):
        _extract(_settings(landing, tmp_path / "out"))
    with pytest.raises(LandingIncomplete, match="--allow-incomplete"):
        steps.run_all(_settings(landing, tmp_path / "out2"), DAY)
    assert not (tmp_path / "out2" / "published").exists()


def test_a_date_with_no_landing_at_all_is_refused(landing: Path, tmp_path: Path) -> None:
    with pytest.raises(LandingIncomplete, match="no landing folder"):
        _extract(_settings(landing, tmp_path / "out"), "2026-11-25")


def test_an_empty_source_day_is_refused(landing: Path, tmp_path: Path) -> None:
    folder = landing / "cookies" / f"date={DAY}"
    for p in folder.glob("part-*"):
        p.write_bytes(b"")
    seal_landing(landing)
    with pytest.raises(LandingIncomplete, match="empty day"):
        _extract(_settings(landing, tmp_path / "out"))


def test_a_file_changed_after_the_marker_is_refused(landing: Path, tmp_path: Path) -> None:
    path = landing / "cookies" / f"date={DAY}" / "part-0.jsonl"
    path.write_text(path.read_text() + path.read_text().splitlines()[0] + "\n")
    with pytest.raises(LandingIncomplete, match=f"cookies/date={DAY}/part-0.jsonl"):
        _extract(_settings(landing, tmp_path / "out"))


def test_the_same_file_twice_counts_once_and_is_reported(landing: Path, tmp_path: Path) -> None:
    base = _extract(_settings(landing, tmp_path / "base"))
    folder = landing / "events" / f"date={DAY}"
    shutil.copy(folder / "part-0.jsonl.gz", folder / "part-0 (1).jsonl.gz")  # a copy
    (folder / "again.jsonl").symlink_to(folder / "part-1.jsonl")  # a link inside the zone
    seal_landing(landing)
    rec = _extract(_settings(landing, tmp_path / "out"))
    assert rec["events"]["input"] == base["events"]["input"]
    assert rec["events"]["kept_after_extract"] == base["events"]["kept_after_extract"]
    assert rec["events"]["files"] == base["events"]["files"]
    assert rec["events"]["duplicates"]["files"] == 2
    assert rec["events"]["duplicates"]["lines"] > 0
    assert base["events"]["duplicates"] == {"files": 0, "lines": 0, "events": 0}


def test_a_link_out_of_the_landing_zone_is_refused_even_when_incomplete_is_allowed(
    landing: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(json.dumps({"cookie_id": "c-outside"}) + "\n")
    (landing / "cookies" / f"date={DAY}" / "part-7.jsonl").symlink_to(outside)
    with pytest.raises(LandingError, match="leaves the landing zone") as info:
        _extract(_settings(landing, tmp_path / "out", allow=True))
    assert not isinstance(info.value, LandingIncomplete)


@pytest.mark.slow
def test_allow_incomplete_publishes_a_release_marked_partial(landing: Path, tmp_path: Path) -> None:
    (landing / "measurements" / f"date={DAY}" / MARKER).unlink()
    settings = _settings(landing, tmp_path / "out")
    steps.run_all(dataclasses.replace(settings, allow_incomplete=True), DAY)
    reports = tmp_path / "out" / "reports" / f"date={DAY}"
    manifest = json.loads((reports / "manifest.json").read_text())
    assert manifest["status"] == "published" and manifest["partial"] is True
    assert any(f"measurements/date={DAY}" in r for r in manifest["partial_reasons"])
    assert manifest["steps"]["extract"]["landing"]["sources"]["measurements"]["problem"] == (
        "no_marker"
    )
    assert "partial release" in (reports / "privacy_report.html").read_text()


def test_tokumei_run_refuses_an_incomplete_day_in_one_line(landing: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tokumei.cli import app

    (landing / "events" / f"date={DAY}" / MARKER).unlink()
    args = ["run", "--landing", str(landing), "--out", str(tmp_path / "out"), "--date", DAY]
    result = CliRunner().invoke(app, [*args, "--no-isolate-steps"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"events/date={DAY}: no {MARKER} marker" in text and "--allow-incomplete" in text
    assert not (tmp_path / "out" / "published").exists()


def test_tokumei_run_reads_the_policy_from_tokumei_policy_like_the_dag(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``TOKUMEI_POLICY`` names the policy for ``tokumei run`` as it does for the DAG; the
    option wins over it."""
    from typer.testing import CliRunner

    from tokumei.cli import app

    args = ["run", "--landing", str(landing), "--out", str(tmp_path / "out"), "--date", DAY]
    monkeypatch.setenv("TOKUMEI_POLICY", str(tmp_path / "no-such-policy"))
    result = CliRunner().invoke(app, [*args, "--no-isolate-steps"])
    assert result.exit_code == 1
    assert "no-such-policy does not exist" in " ".join(result.output.split())
    other = tmp_path / "other-policy"
    result = CliRunner().invoke(app, [*args, "--no-isolate-steps", "--policy", str(other)])
    assert result.exit_code == 1 and "other-policy does not exist" in " ".join(
        result.output.split()
    )
