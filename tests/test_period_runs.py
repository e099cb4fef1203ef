"""Weekly and monthly tables through real daily runs over a retained activity layer.

A week of generated landing data (Monday 2026-11-23 to Monday 2026-11-30) runs day by day with
``run_all``. The history before it (2026-10-01 to 2026-11-22) is the retained partition of the
first day copied to each earlier date: the layer is tokumei's own documented format, and the
copies add no new person, which gives the monthly tables an exact expectation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import TEST_KEY
from published import published_dates, published_tables, read_published

from tokumei.infra import tableformat
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps
from tokumei.stats.tables import TABLES

pytestmark = pytest.mark.slow

FIRST, SUNDAY, MONTH_END = date(2026, 11, 23), date(2026, 11, 29), date(2026, 11, 30)
HISTORY_FROM = date(2026, 10, 1)
T = 10


def _days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def _copy_history(out: Path) -> None:
    for dataset in ("activity", "purchases"):
        src = out / "retained" / dataset / f"date={FIRST.isoformat()}"
        for day in _days(HISTORY_FROM, FIRST - timedelta(days=1)):
            dst = out / "retained" / dataset / f"date={day.isoformat()}"
            dst.mkdir(parents=True)
            for part in src.glob("*.parquet"):
                frame = pl.read_parquet(part).with_columns(pl.lit(day).alias("date"))
                frame.write_parquet(dst / part.name)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, dict]]:
    root = tmp_path_factory.mktemp("periods")
    landing, out = root / "landing", root / "out"
    db = f"sqlite:///{landing / 'ops.db'}"
    gen = [sys.executable, "-m", "tokumei.cli", "generate", "--landing", str(landing)]
    gen += ["--db-url", db, "--start", FIRST.isoformat(), "--days", "8", "--users", "400"]
    gen += ["--seed", "11", "--events-per-user-day", "6"]
    proc = subprocess.run(gen, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    settings = Settings(landing=landing, db_url=db, out=out).resolved()
    old = os.environ.get("TOKUMEI_PSEUDONYM_KEY")
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    manifests: dict[str, dict] = {}
    try:
        for day in _days(FIRST, MONTH_END):
            steps.run_all(settings, day.isoformat())
            if day == FIRST:
                _copy_history(out)
            path = out / "reports" / f"date={day.isoformat()}" / "manifest.json"
            manifests[day.isoformat()] = json.loads(path.read_text())
    finally:
        if old is None:
            os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
        else:
            os.environ["TOKUMEI_PSEUDONYM_KEY"] = old
    return settings, manifests


def _table(out: Path, name: str, day: date) -> pl.DataFrame:
    return read_published(out, "stats", name, day)


def _expected_active(out: Path, days: list[date]) -> pl.DataFrame:
    """The definition, in SQL over the retained files: an independent implementation."""
    globs = [str(out / "retained/activity" / f"date={d.isoformat()}" / "*.parquet") for d in days]
    sql = f"""
        WITH a AS (SELECT * FROM read_parquet({globs!r}) WHERE active),
        latest AS (
            SELECT person, arg_max(prefecture, date) AS prefecture,
                   arg_max(age_band, date) AS age_band, arg_max(gender, date) AS gender
            FROM a GROUP BY person)
        SELECT prefecture, age_band, gender, count(*) AS persons
        FROM latest GROUP BY ALL
    """
    return duckdb.sql(sql).pl()


def test_weekly_table_only_on_sunday_and_counts_each_person_once(week) -> None:
    settings, manifests = week
    out = settings.out
    assert published_dates(out, "stats", "weekly_active_users") == [SUNDAY.isoformat()]
    wau = _table(out, "weekly_active_users", SUNDAY)
    assert wau.columns == list(TABLES["weekly_active_users"].columns)
    assert set(wau["week"]) == {"2026-W48"}
    key = ["prefecture", "age_band", "gender"]
    expected = _expected_active(out, _days(FIRST, SUNDAY))
    joined = wau.join(expected, on=key, how="full", suffix="_sql", coalesce=True)
    assert joined["suppressed"].null_count() == 0  # every cell of the data is in the table
    # the public demographic grid is published whole: cells nobody is in are suppressed zeros
    assert wau.height >= 48 * 20 * 4 and joined["persons_sql"].null_count() > 0
    joined = joined.with_columns(pl.col("persons_sql").fill_null(0))
    shown = joined.filter(pl.col("persons").is_not_null())
    assert (shown["persons"] == shown["persons_sql"]).all() and shown.height > 0
    hidden = joined.filter(pl.col("persons").is_null())
    assert hidden["suppressed"].all()
    assert (hidden["persons_sql"] < T).sum() == hidden.height - manifests[SUNDAY.isoformat()][
        "outputs"
    ]["stats/weekly_active_users"]["period"]["cross_release"]["complementary_cells"]
    report = (out / "reports" / f"date={SUNDAY.isoformat()}" / "privacy_report.html").read_text()
    section = report[report.index('id="across-releases"') :]
    assert "<td>weekly_active_users</td><td>weekly</td><td>2026-W48</td>" in section
    # only the Sunday and the month end release period tables
    for day, rec in manifests.items():
        released = {k for k, v in rec["outputs"].items() if v.get("release", "daily") != "daily"}
        if day not in (SUNDAY.isoformat(), MONTH_END.isoformat()):
            assert not released, day


def test_month_end_releases_monthly_tables_checked_across_releases(week) -> None:
    settings, manifests = week
    out = settings.out
    m = manifests[MONTH_END.isoformat()]
    for name in ("monthly_active_users", "measurement_trends", "monthly_revenue"):
        rec = m["outputs"][f"stats/{name}"]
        assert rec["release"] == "monthly" and rec["validation"] == "passed", name
        assert rec["period"]["period"] == "2026-11"
        assert m["disclosure"][name]["ok"], name
        df = _table(out, name, MONTH_END)
        assert df.columns == list(TABLES[name].columns)
        assert (df.filter(~pl.col("suppressed"))["persons"] >= T).all()
    assert m["outputs"]["stats/monthly_active_users"]["period"]["cross_release"]["ok"]
    # the copied history adds nobody: the month is exactly the persons of Nov 23-30
    mau = _table(out, "monthly_active_users", MONTH_END)
    expected = _expected_active(out, _days(FIRST, MONTH_END))
    key = ["prefecture", "age_band", "gender"]
    shown = mau.filter(pl.col("persons").is_not_null()).join(expected, on=key, suffix="_sql")
    assert shown.height > 0 and (shown["persons"] == shown["persons_sql"]).all()
    trends = _table(out, "measurement_trends", MONTH_END)
    assert set(trends["measure"]) <= {"weight", "body_fat"} and trends.height > 0
    # the daily revenue tables of the copied days were never published, so only the real days
    # can hide a monthly amount; a hidden amount keeps its persons published
    rev = _table(out, "monthly_revenue", MONTH_END)
    daily_hidden = {
        band
        for d in _days(FIRST, MONTH_END)
        for band in _table(out, "revenue", d).filter(pl.col("total_amount_jpy").is_null())[
            "price_band"
        ]
    }
    for row in rev.iter_rows(named=True):
        if row["price_band"] in daily_hidden:
            assert row["total_amount_jpy"] is None and row["suppressed"]
    cohorts = m["outputs"].get("stats/retention_cohorts")
    assert cohorts and cohorts["period"]["history_from"] == HISTORY_FROM.isoformat()
    table = _table(out, "retention_cohorts", MONTH_END)
    assert set(table["signup_month"]) <= {"2026-10"}  # only October is final and observed
    assert set(table["weeks_since_signup"]) <= {"00", "01", "02", "03"}
    # weekly, not monthly, runs skip nothing; a week needs no history before its Monday
    assert m["steps"]["period_tables_skipped"] == {}


def test_release_model_checks_every_declared_relation_on_every_day(week) -> None:
    """stats_reduce refuses a release whose declared relations do not hold on its unsuppressed
    data, so a run that published proves they held; the audit lists them per table and attacks
    the week together with the six earlier daily releases it covers."""
    _, manifests = week
    for day, m in manifests.items():
        for name, verdict in m["disclosure"].items():
            assert verdict["relations_hold"] and verdict["ok"], (day, name)
            assert verdict["relations"] == [r.label for r in TABLES[name].relations or ()]
            assert verdict["min_width"] is None or verdict["min_width"] >= T
    sunday = manifests[SUNDAY.isoformat()]["disclosure"]["weekly_active_users"]
    assert sunday["linked_earlier_cells"] > 0
    trends = manifests[MONTH_END.isoformat()]["disclosure"]["measurement_trends"]
    assert trends["relations"] == ["weight bands and body-fat bands: same persons"]


def test_rerun_of_a_period_end_is_identical(week) -> None:
    settings, _ = week
    before = {
        n: _table(settings.out, n, MONTH_END)
        for n in ("monthly_active_users", "monthly_revenue", "daily_active_users")
    }
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    try:
        steps.run_all(settings, MONTH_END.isoformat())
    finally:
        os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
    for name, frame in before.items():
        assert _table(settings.out, name, MONTH_END).equals(frame), name
    m = json.loads((settings.out / "reports/date=2026-11-30/manifest.json").read_text())
    assert m["outputs"]["stats/monthly_active_users"]["kept_hidden_from_previous_release"] == 0


def test_a_rotated_key_is_refused_before_anything_is_written(week) -> None:
    settings, _ = week
    before = sorted(str(p) for p in (settings.out / "published").rglob("*"))
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = "another-key-0123456789abcdef0123456789"
    try:
        with pytest.raises(TokumeiError, match="rotated key"):
            steps.run_all(settings, MONTH_END.isoformat())
    finally:
        os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
    assert sorted(str(p) for p in (settings.out / "published").rglob("*")) == before
    assert "another-key" not in (settings.out / "retained" / "KEY_CHECK").read_text()


def test_missing_days_skip_a_period_with_a_reason(week, tmp_path: Path) -> None:
    """A month whose days are not all retained is skipped, named in the manifest."""
    settings, _ = week
    out = tmp_path / "out"
    fresh = Settings(landing=settings.landing, db_url=settings.db_url, out=out).resolved()
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    try:
        steps.run_all(fresh, MONTH_END.isoformat())
    finally:
        os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
    m = json.loads((out / "reports/date=2026-11-30/manifest.json").read_text())
    skipped = m["steps"]["period_tables_skipped"]
    assert set(skipped) == {
        "monthly_active_users",
        "measurement_trends",
        "monthly_revenue",
        "retention_cohorts",
    }
    assert "29 of 30 days of 2026-11" in skipped["monthly_active_users"]["reason"]
    assert "stats/monthly_active_users" not in published_tables(out)


def _release_again(src: Path, out: Path, day: date, stage: Path) -> None:
    """``day``'s release of the statistics tables of ``src`` made again in ``out``: the Delta
    tables and their release marker as that day's run left them (docs/adr/0008)."""
    staged = {}
    for name in (n for n in published_tables(src, day) if n.startswith("stats/")):
        path = stage / name / f"date={day.isoformat()}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        read_published(src, *name.split("/"), day).write_parquet(path)
        staged[name] = path
    manifest = out / "reports" / f"date={day.isoformat()}" / "manifest.json"
    run_id = json.loads(manifest.read_text())["run_id"]
    tableformat.publish_release(out / "published", staged, day.isoformat(), run_id)


def test_a_week_with_a_partial_day_is_held_back_then_released_once_it_is_complete(
    week, tmp_path: Path
) -> None:
    """docs/landing.md: a week is released only when every day of it was published from a
    complete landing; the re-run that completes it releases it, once."""
    settings, _ = week
    src, out = settings.out, tmp_path / "out"
    hole = FIRST + timedelta(days=2)  # Wednesday 2026-11-25
    # The state after the runs of Monday to Saturday but the hole (tokumei's own formats)
    (out / "retained").mkdir(parents=True)
    shutil.copy(src / "retained" / "KEY_CHECK", out / "retained" / "KEY_CHECK")
    for day in _days(FIRST, SUNDAY - timedelta(days=1)):
        if day == hole:
            continue
        part = f"date={day.isoformat()}"
        for dataset in ("activity", "purchases"):
            shutil.copytree(src / "retained" / dataset / part, out / "retained" / dataset / part)
        shutil.copytree(src / "reports" / part, out / "reports" / part)
        _release_again(src, out, day, tmp_path / "copied")
    # the hole's measurements never finished landing: published partial (--allow-incomplete)
    late = tmp_path / "landing"
    shutil.copytree(settings.landing, late)
    (late / "measurements" / f"date={hole.isoformat()}" / "_SUCCESS.json").unlink()
    partial = Settings(
        landing=late, db_url=settings.db_url, out=out, allow_incomplete=True
    ).resolved()
    complete = Settings(landing=settings.landing, db_url=settings.db_url, out=out).resolved()

    def run(s: Settings, day: date) -> dict:
        steps.run_all(s, day.isoformat())
        return json.loads(
            (out / "reports" / f"date={day.isoformat()}" / "manifest.json").read_text()
        )

    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    try:
        assert run(partial, hole)["partial"] is True
        sunday = run(complete, SUNDAY)
        held = sunday["steps"]["period_tables_skipped"]["weekly_active_users"]
        assert held["period"] == "2026-W48"
        expected_reason = (
            "1 of 7 days of 2026-W48 were published from an incomplete landing "
            f"(first: {hole.isoformat()})"
        )
        assert expected_reason in held["reason"]
        assert "stats/weekly_active_users" not in sunday["outputs"]
        assert "stats/weekly_active_users" not in published_tables(out)
        # the hole re-run from the complete landing releases the week with its own release
        again = run(complete, hole)
        assert "partial" not in again
        rec = again["outputs"]["stats/weekly_active_users"]
        assert rec["release"] == "weekly" and rec["period"]["period"] == "2026-W48"
        assert again["disclosure"]["weekly_active_users"]["ok"]
        wau = _table(out, "weekly_active_users", hole)
        expected = _expected_active(out, _days(FIRST, SUNDAY))
        key = ["prefecture", "age_band", "gender"]
        shown = wau.filter(pl.col("persons").is_not_null()).join(expected, on=key, suffix="_sql")
        assert shown.height > 0 and (shown["persons"] == shown["persons_sql"]).all()
        # a later re-run of the Sunday does not release the same week a second time
        sunday = run(complete, SUNDAY)
        assert (
            "already released"
            in sunday["steps"]["period_tables_skipped"]["weekly_active_users"]["reason"]
        )
    finally:
        os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
    assert published_dates(out, "stats", "weekly_active_users") == [hole.isoformat()]
