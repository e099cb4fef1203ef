"""Issue 15, finding 2, through real runs: a lone person's weigh-in day is not visible.

Two days of the hand-written landing (tests/conftest.py) plus one more registered person, the
only one of their age band and gender (90+, other), who steps on the scale on the first day
only. Each day runs every step up to ``stats_reduce`` (what ``publish`` would move into
``published/``); both days must stage the same rows of ``measurements_summary``, and the
lone person's cell must read the same on both. The audit record carries the diversity verdict.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest
from conftest import TEST_KEY, seal_landing, write_handmade_landing

from tokumei.infra.settings import Settings
from tokumei.infra.storage import RunPaths, load_record
from tokumei.pipeline import steps
from tokumei.stats.grids import grid

pytestmark = pytest.mark.slow

DAYS = ("2026-11-24", "2026-11-25")


def _landing(root: Path, day: str, weighs_in: bool) -> Path:
    landing = write_handmade_landing(root, day)
    con = sqlite3.connect(landing / "ops.db")
    con.execute(
        "INSERT INTO users (user_id, username, full_name, full_name_kana, birth_date, gender, "
        "occupation, postal_code, prefecture, address, phone, created_at, email) "
        "VALUES ('user-0040', 'nick40', '利用者40', 'リヨウシャ', '1931-02-03', 'other', "
        "'無職', '900-0001', '沖縄県', 'どこか', '03-0000-0040', '2025-01-01 00:00:00', "
        "'person40@example.jp')"
    )
    con.execute("INSERT INTO consents VALUES ('user-0040', 'analytics', 1, '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    if weighs_in:
        csv = landing / "measurements" / f"date={day}" / "part-0.csv"
        row = f"scale-40,user-0040,{day}T07:10:00+09:00,58.5,31.0\n"
        csv.write_text(csv.read_text() + row)
        seal_landing(landing, day)  # the producer's marker covers the line it added
    return landing


def _run_to_stats(landing: Path, out: Path, day: str) -> RunPaths:
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    settings = settings.resolved()
    run_id = steps.start(settings, day)
    for name, fn in steps.STEPS:
        fn(settings, day, run_id)
        if name == "stats_reduce":
            break
    return RunPaths(settings, day, run_id)


def test_measurements_summary_has_the_same_rows_whether_the_lone_person_weighs_in_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    staged: list[pl.DataFrame] = []
    for day, weighs_in in zip(DAYS, (True, False), strict=True):
        landing = _landing(tmp_path / day / "landing", day, weighs_in)
        paths = _run_to_stats(landing, tmp_path / day / "out", day)
        # the lone person really is in the day's measurements (internal map output only)
        maps = pl.read_parquet(paths.work / "stats_map" / "measurements" / "*.parquet")
        lone = maps.filter((pl.col("age_band") == "90+") & (pl.col("gender") == "other"))
        assert lone.height == (1 if weighs_in else 0)
        staged.append(pl.read_parquet(paths.staged_table("stats", "measurements_summary")))
        record = load_record(paths, "build_stats")
        # every table carries the diversity verdict; no daily table holds a checked distribution
        assert all(rec["disclosure"]["diversity"]["ok"] for rec in record.values())
        assert record["measurements_summary"]["disclosure"]["diversity"] == {
            "checked": False,
            "ok": True,
        }
        # the number of groups the rule hid is never printed (it points at the hidden group)
        assert not any("groups_suppressed" in rec["disclosure"]["diversity"] for rec in record.values())
    with_lone, without = staged
    keys = ["age_band", "gender"]
    assert with_lone.select(keys).equals(without.select(keys))
    assert with_lone.height == grid("measurements_summary").height
    cell = (pl.col("age_band") == "90+") & (pl.col("gender") == "other")
    assert with_lone.filter(cell).drop("date").equals(without.filter(cell).drop("date"))
    assert with_lone.filter(cell)["suppressed"].item()
