"""Published tables as Delta Lake tables with a release marker (issue 18, docs/adr/0008).

The readers here use Polars, DuckDB, pyarrow and deltalake only, never tokumei code: that is
what an analyst, Spark or Trino has.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from tokumei.infra import tableformat
from tokumei.infra.tableformat import TableFormatError, publish_release, recover, vacuum

DAY1, DAY2 = "2026-11-23", "2026-11-24"
TABLES = [f"stats/t{i}" for i in range(6)] + ["anonymized/page_views"]


def _stage(root: Path, day: str, value: int, extra: bool = False) -> dict[str, Path]:
    """One staged partition per table; every row of every table carries ``value``."""
    staged = {}
    for name in TABLES:
        frame = pl.DataFrame({"persons": [value] * 3, "band": ["a", "b", "c"]})
        if name.startswith("stats/"):
            frame = frame.with_columns(pl.lit(day).str.to_date().alias("date"))
        if extra:
            frame = frame.with_columns(pl.lit("x").alias("new_col"))
        path = root / f"stage-{day}-{value}" / name / f"date={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        frame.write_parquet(path)
        staged[name] = path
    return staged


def _marker_snapshot(published: Path) -> set[int]:
    """What a reader that honours the marker sees: the values of every table of one release."""
    rel = pl.read_delta(str(published / "delta" / "releases"))
    cur = rel.filter(pl.col("release") == pl.col("release").max())
    values: set[int] = set()
    for table, version in cur.select("table", "version").iter_rows():
        frame = pl.read_delta(str(published / "delta" / table), version=version)
        values |= set(frame["persons"])
    return values


def test_a_release_writes_every_table_and_the_marker(tmp_path: Path) -> None:
    pub = tmp_path / "published"
    first = publish_release(pub, _stage(tmp_path, DAY1, 1), DAY1, "run-1")
    second = publish_release(pub, _stage(tmp_path, DAY2, 2), DAY2, "run-2")
    assert (first.release, second.release) == (1, 2)
    rel = pl.read_delta(str(pub / "delta" / "releases"))
    assert rel.filter(pl.col("release") == 2).height == len(TABLES)
    dau = pl.read_delta(str(pub / "delta" / "stats" / "t0")).sort("date")
    assert sorted(dau["date"].cast(pl.String).unique()) == [DAY1, DAY2]
    # the record table gets the date its folder name carried
    records = pl.read_delta(str(pub / "delta" / "anonymized" / "page_views"))
    assert records.group_by("date").len().height == 2
    # a re-run of a date replaces that date's rows only
    publish_release(pub, _stage(tmp_path, DAY1, 5), DAY1, "run-3")
    dau = pl.read_delta(str(pub / "delta" / "stats" / "t0"))
    by_day = dict(dau.group_by("date").agg(pl.col("persons").max()).iter_rows())
    assert sorted(by_day.values()) == [2, 5] and dau.height == 6
    # time travel: the first release is still readable as it was
    v1 = rel.filter((pl.col("release") == 1) & (pl.col("table") == "stats/t0"))["version"][0]
    assert set(pl.read_delta(str(pub / "delta" / "stats" / "t0"), version=v1)["persons"]) == {1}


def test_a_reader_during_publish_sees_the_old_or_the_new_release_never_a_mix(
    tmp_path: Path,
) -> None:
    pub = tmp_path / "published"
    publish_release(pub, _stage(tmp_path, DAY1, 0), DAY1, "run-0")
    stages = [_stage(tmp_path, DAY1, v) for v in range(1, 9)]  # re-runs of one date
    seen: list[set[int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                seen.append(_marker_snapshot(pub))
        except BaseException as exc:  # surfaced below, not swallowed
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for value, staged in enumerate(stages, start=1):
            publish_release(pub, staged, DAY1, f"run-{value}")
    finally:
        done.set()
        thread.join()
    assert not errors
    assert len(seen) >= 3, "the reader did not run during the publishes"
    mixed = [s for s in seen if len(s) != 1]
    assert not mixed, f"a reader saw tables of different releases: {mixed[:3]}"
    assert len({next(iter(s)) for s in seen}) >= 2  # it did see releases change


def test_commits_of_a_killed_publish_never_reach_a_release(tmp_path: Path) -> None:
    pub = tmp_path / "published"
    publish_release(pub, _stage(tmp_path, DAY1, 1), DAY1, "run-1")
    # a publish killed after writing one table (and creating another) but before its marker
    t0 = str(pub / "delta" / "stats" / "t0")
    stray = pl.DataFrame({"persons": [99], "band": ["z"], "date": [date(2026, 11, 24)]})
    write_deltalake(t0, stray.to_arrow(), mode="append")
    write_deltalake(str(pub / "delta" / "stats" / "orphan"), stray.to_arrow())
    assert _marker_snapshot(pub) == {1}  # readers of the marker never saw them
    assert sorted(recover(pub)) == ["stats/orphan", "stats/t0"]
    assert 99 not in set(pl.read_delta(t0)["persons"])  # the newest version is the release's
    assert not (pub / "delta" / "stats" / "orphan").exists()
    # release 1 is stated again with t0's new version (its old files now count as replaced)
    restated = tableformat.current_release(pub)
    assert restated is not None and (restated.release, restated.run_id) == (2, "run-1")
    assert sum(vacuum(pub, days=0).values()) >= 1 and _marker_snapshot(pub) == {1}
    release = publish_release(pub, _stage(tmp_path, DAY2, 2), DAY2, "run-2")
    assert 99 not in set(pl.read_delta(t0)["persons"]) and release.release == 3


def test_an_added_column_is_visible_to_every_reader_and_versioned(tmp_path: Path) -> None:
    pub = tmp_path / "published"
    publish_release(pub, _stage(tmp_path, DAY1, 1), DAY1, "run-1")
    release = publish_release(pub, _stage(tmp_path, DAY2, 2, extra=True), DAY2, "run-2")
    path = str(pub / "delta" / "stats" / "t0")
    # Polars
    frame = pl.read_delta(path).sort("date")
    assert frame["new_col"].to_list() == [None] * 3 + ["x"] * 3
    # pyarrow (the format's dataset)
    table = DeltaTable(path).to_pyarrow_dataset().to_table()
    assert "new_col" in table.column_names and table.column("new_col").null_count == 3
    # DuckDB (offline: through Arrow, no extension)
    con = duckdb.connect()
    con.register("t0", DeltaTable(path).to_pyarrow_dataset())
    assert con.execute("select count(new_col), count(*) from t0").fetchone() == (3, 6)
    # versioned: the marker and the table's history say which release added it
    assert release.columns_added == {name: ["new_col"] for name in TABLES}
    rel = pl.read_delta(str(pub / "delta" / "releases")).filter(pl.col("release") == 2)
    assert set(rel.explode("columns_added")["columns_added"]) == {"new_col"}
    old = DeltaTable(path, version=0).schema().to_arrow().names
    assert "new_col" not in old


def test_a_non_additive_change_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    pub = tmp_path / "published"
    publish_release(pub, _stage(tmp_path, DAY1, 1, extra=True), DAY1, "run-1")
    versions = {n: DeltaTable(str(pub / "delta" / n)).version() for n in TABLES}
    with pytest.raises(TableFormatError, match="lose column"):
        publish_release(pub, _stage(tmp_path, DAY2, 2), DAY2, "run-2")
    assert {n: DeltaTable(str(pub / "delta" / n)).version() for n in TABLES} == versions
    assert tableformat.current_release(pub).release == 1  # type: ignore[union-attr]


def test_vacuum_removes_replaced_files_and_keeps_the_newest_release(tmp_path: Path) -> None:
    pub = tmp_path / "published"
    publish_release(pub, _stage(tmp_path, DAY1, 1), DAY1, "run-1")
    publish_release(pub, _stage(tmp_path, DAY1, 2), DAY1, "run-2")  # replaces every file
    assert sum(vacuum(pub, days=1).values()) == 0  # replaced minutes ago: kept for time travel
    assert sum(vacuum(pub, days=0, dry_run=True).values()) == len(TABLES)
    removed = vacuum(pub, days=0)
    assert sum(removed.values()) == len(TABLES)
    assert _marker_snapshot(pub) == {2}
    # vacuum commits to each table's log but changes no data file: nothing to undo after it
    files = {n: DeltaTable(str(pub / "delta" / n)).file_uris() for n in TABLES}
    assert recover(pub) == [] and tableformat.current_release(pub).release == 2  # type: ignore[union-attr]
    assert {n: DeltaTable(str(pub / "delta" / n)).file_uris() for n in TABLES} == files


def test_releases_on_s3_read_back_through_the_marker(tmp_path: Path) -> None:
    """The same code on a local S3 server (moto): releases, marker reads, recovery, vacuum."""
    import boto3
    from conftest import moto_s3

    with moto_s3("AKIDTABLEFORMAT", "s3cr3t-tableformat") as (endpoint, _mp):
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="analytics")
        pub = "s3://analytics/tokumei/published"
        publish_release(pub, _stage(tmp_path, DAY1, 1), DAY1, "run-1")
        publish_release(pub, _stage(tmp_path, DAY1, 2), DAY1, "run-2")  # a re-run of the date
        opts = {"aws_endpoint_url": endpoint, "aws_allow_http": "true"}
        # a reader with Polars and the marker only
        rel = pl.read_delta(f"{pub}/delta/releases", storage_options=opts)
        cur = rel.filter(pl.col("release") == pl.col("release").max())
        assert cur.height == len(TABLES) and set(cur["run_id"]) == {"run-2"}
        for table, version in cur.select("table", "version").iter_rows():
            frame = pl.read_delta(f"{pub}/delta/{table}", version=version, storage_options=opts)
            assert set(frame["persons"]) == {2}, table
        # a killed publish's stray commit and table are undone on S3 too
        stray = pl.DataFrame({"persons": [99], "band": ["z"], "date": [date(2026, 11, 23)]})
        write_deltalake(
            f"{pub}/delta/stats/t0", stray.to_arrow(), mode="append", storage_options=opts
        )
        write_deltalake(f"{pub}/delta/stats/orphan", stray.to_arrow(), storage_options=opts)
        assert sorted(recover(pub)) == ["stats/orphan", "stats/t0"]
        assert 99 not in set(
            pl.read_delta(f"{pub}/delta/stats/t0", storage_options=opts)["persons"]
        )
        assert tableformat.read_table(pub, "stats/orphan") is None
        # the replaced files (release 1's, the stray commit's) go with vacuum
        removed = vacuum(pub, days=0)
        assert all(removed[name] >= 1 for name in TABLES) and removed["stats/t0"] == 3
        assert tableformat.read_table(pub, "stats/t0")["persons"].to_list() == [2, 2, 2]  # type: ignore[index]


def test_a_table_counts_as_released_only_on_the_dates_a_release_wrote_it(tmp_path: Path) -> None:
    """The marker names every table in every release (with the version it was left at), so a
    table released once must not look released under later dates (a weekly table is released
    on one day of its week): what later runs compare against (re-release, period checks)."""
    pub = tmp_path / "published"
    both = _stage(tmp_path, DAY1, 1)
    publish_release(pub, both, DAY1, "run-1")
    only = {"stats/t0": _stage(tmp_path, DAY2, 2)["stats/t0"]}
    publish_release(pub, only, DAY2, "run-2")
    assert tableformat.released_days(pub, "stats/t0") == {DAY1, DAY2}
    assert tableformat.released_days(pub, "stats/t1") == {DAY1}
    assert tableformat.read_day(pub, "stats/t1", DAY2) is None
    day1 = tableformat.read_day(pub, "stats/t1", DAY1)
    assert day1 is not None and day1["persons"].to_list() == [1, 1, 1]
    # a release that writes a table with no rows publishes it under its date
    empty = tmp_path / "empty" / "part-0.parquet"
    empty.parent.mkdir()
    pl.DataFrame(
        {"persons": [], "band": [], "date": []},
        schema={"persons": pl.Int64, "band": pl.String, "date": pl.Date},
    ).write_parquet(empty)
    publish_release(pub, {"stats/t1": empty}, "2026-11-25", "run-3")
    assert tableformat.released_days(pub, "stats/t1") == {DAY1, "2026-11-25"}
    none = tableformat.read_day(pub, "stats/t1", "2026-11-25")
    assert none is not None and none.height == 0
