"""Input expectations checked by extract before anything is computed (docs/landing.md)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import DAY, TEST_KEY, seal_landing, write_handmade_landing

from tokumei.infra.settings import Settings
from tokumei.ingest.expectations import InputExpectationFailed, encoding_guess
from tokumei.ingest.opdb import DatabaseError
from tokumei.pipeline import steps

QUERY = "東京 ラーメン 新宿"


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    return write_handmade_landing(tmp_path / "landing")


def _extract(landing: Path, out: Path) -> dict:
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    settings = settings.resolved()
    """extract, ingest and check_inputs: the run's input side; the merged ``extract`` record."""
    run_id = steps.start(settings, DAY)
    steps.extract(settings, DAY, run_id)
    steps.ingest(settings, DAY, run_id)
    return steps.check_inputs(settings, DAY, run_id)["extract"]


def _search(i: int) -> dict:
    return {
        "ts": f"{DAY}T11:00:00+09:00",
        "event": "search",
        "cookie_id": f"cookie-{i:04d}",
        "user_id": f"user-{i:04d}",
        "search_query": QUERY,
    }


def test_a_shift_jis_file_stops_the_run_with_the_file_and_a_guess(
    landing: Path, tmp_path: Path
) -> None:
    path = landing / "events" / f"date={DAY}" / "part-00003.jsonl"
    lines = [json.dumps(_search(i), ensure_ascii=False) for i in range(40)]
    path.write_bytes(("\n".join(lines) + "\n").encode("cp932"))
    seal_landing(landing)
    with pytest.raises(InputExpectationFailed) as info:
        _extract(landing, tmp_path / "out")
    msg = str(info.value)
    assert f"100 % of lines in events/date={DAY}/part-00003.jsonl are not UTF-8" in msg
    assert "is the file Shift-JIS?" in msg and "max_quarantine_share" in msg
    assert QUERY not in msg and "ラーメン" not in msg


def test_the_encoding_guess() -> None:
    assert encoding_guess([QUERY.encode("cp932")]) == "Shift-JIS"
    assert encoding_guess([b"\xff\xfe\xfa"]) is None
    assert encoding_guess([None]) is None


def test_a_source_mostly_quarantined_for_another_reason_names_the_reason(
    landing: Path, tmp_path: Path
) -> None:
    path = landing / "cookies" / f"date={DAY}" / "part-1.jsonl"
    path.write_text("{not json\n" * 30)
    seal_landing(landing)
    with pytest.raises(InputExpectationFailed, match=r"cookies: 3\d.* % of lines quarantined"):
        _extract(landing, tmp_path / "out")


def _manifest(out: Path, day: str, events: int, **extra: object) -> None:
    folder = out / "reports" / f"date={day}"
    folder.mkdir(parents=True)
    body = {"status": "published", "sources": {"events": {"input": events}}, **extra}
    (folder / "manifest.json").write_text(json.dumps(body))


def test_a_day_far_below_the_median_of_earlier_runs_stops(landing: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for i, n in enumerate((5_000, 5_200, 4_800)):
        _manifest(out, f"2026-11-{20 + i}", n)
    with pytest.raises(
        InputExpectationFailed,
        match="events: the day.s input is 3.62 % of the median of the 3 earlier runs",
    ):
        _extract(landing, out)


def test_partial_and_too_few_earlier_runs_are_not_a_baseline(landing: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _manifest(out, "2026-11-20", 5_000)
    _manifest(out, "2026-11-21", 5_000)
    _manifest(out, "2026-11-22", 5_000, partial=True)
    _manifest(out, "2026-11-23", "< 100")
    rec = _extract(landing, out)
    assert rec["landing"]["volume"]["events"] == {
        "checked": False,
        "why": "too few earlier complete runs",
    }


def test_a_column_removed_from_the_db_stops_the_run(landing: Path, tmp_path: Path) -> None:
    con = sqlite3.connect(landing / "ops.db")
    con.execute("ALTER TABLE users DROP COLUMN birth_date")
    con.execute("ALTER TABLE users DROP COLUMN prefecture")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match="no column.s. birth_date, prefecture"):
        _extract(landing, tmp_path / "out")
