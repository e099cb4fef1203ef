"""The analysts' DuckDB catalog: portable, commented, additive columns visible (issue 18)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tokumei.infra.storage import build_catalog
from tokumei.release.catalog import connect, view_docs


def _old_layout(root: Path) -> Path:
    """An output root published before the Delta tables: dated folders only."""
    pub = root / "published"
    dau = pub / "stats" / "daily_active_users"
    for day, extra in (("2026-11-23", False), ("2026-11-24", True)):
        frame = pl.DataFrame(
            {"date": [day], "prefecture": ["東京都"], "persons": [12], "suppressed": [False]}
        )
        if extra:  # a column added on the second day (additive schema change)
            frame = frame.with_columns(pl.lit("x").alias("new_col"))
        (dau / f"date={day}").mkdir(parents=True)
        frame.write_parquet(dau / f"date={day}" / "part-0.parquet")
    rec = pub / "anonymized" / "page_views" / "date=2026-11-24"
    rec.mkdir(parents=True)
    pl.DataFrame({"age": ["30-34"], "url_template": ["/items/:id"]}).write_parquet(
        rec / "part-0.parquet"
    )
    return pub


def test_catalog_works_after_being_copied_elsewhere(tmp_path: Path) -> None:
    pub = _delta_published(tmp_path / "a")
    moved = tmp_path / "b" / "copy"
    shutil.copytree(pub, moved)
    shutil.rmtree(tmp_path / "a")  # nothing of the original location is left to read
    con = connect(moved)
    assert con.execute("select sum(persons) from daily_active_users").fetchone() == (24,)
    assert con.execute("select count(*) from anonymized_page_views").fetchone() == (2,)


def test_catalog_opens_with_plain_duckdb_inside_the_folder(tmp_path: Path) -> None:
    pub = _delta_published(tmp_path)
    cwd = Path.cwd()
    os.chdir(pub)  # `cd published && duckdb catalog.duckdb`
    try:
        con = duckdb.connect("catalog.duckdb", read_only=True)
        assert con.execute("select count(*) from daily_active_users").fetchone() == (2,)
    finally:
        os.chdir(cwd)


def test_an_added_column_is_visible_not_dropped(tmp_path: Path) -> None:
    con = connect(_delta_published(tmp_path))
    rows = con.execute("select date, new_col from daily_active_users order by date").fetchall()
    assert [r[1] for r in rows] == [None, "x"]


def test_views_and_columns_carry_the_dictionary_comments(tmp_path: Path) -> None:
    con = connect(_delta_published(tmp_path))
    views = dict(con.execute("select view_name, comment from duckdb_views()").fetchall())
    assert views["daily_active_users"].startswith(view_docs()["daily_active_users"].comment[:40])
    assert "k-anonymized" in views["anonymized_page_views"]
    cols = dict(
        con.execute(
            "select column_name, comment from duckdb_columns() "
            "where table_name = 'daily_active_users'"
        ).fetchall()
    )
    assert cols["persons"].startswith("number of distinct persons")
    assert cols["prefecture"] and "都道府県" in cols["prefecture"]


def test_connect_names_the_folder_without_a_catalog(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no catalog.duckdb"):
        connect(tmp_path)


def test_every_published_dataset_has_a_view_doc() -> None:
    from tokumei.stats.tables import TABLES

    docs = view_docs()
    assert set(TABLES) | {"anonymized_page_views"} == set(docs)
    for name, spec in TABLES.items():
        assert set(spec.columns) <= set(docs[name].columns), name


def _delta_published(root: Path) -> Path:
    """Two releases in Delta (docs/adr/0008): the second day adds a column; and a stray
    commit beyond the marker, as a publish killed before its marker would leave."""
    from deltalake import write_deltalake

    from tokumei.infra.tableformat import publish_release

    pub = root / "published"
    for day, extra in (("2026-11-23", False), ("2026-11-24", True)):
        stage = root / f"stage-{day}"
        dau = pl.DataFrame(
            {"date": [day], "prefecture": ["東京都"], "persons": [12], "suppressed": [False]}
        ).with_columns(pl.col("date").str.to_date())
        if extra:
            dau = dau.with_columns(pl.lit("x").alias("new_col"))
        rec = pl.DataFrame({"age": ["30-34"], "url_template": ["/items/:id"]})
        staged = {}
        for name, frame in (("stats/daily_active_users", dau), ("anonymized/page_views", rec)):
            path = stage / name / f"date={day}" / "part-0.parquet"
            path.parent.mkdir(parents=True)
            frame.write_parquet(path)
            staged[name] = path
        publish_release(pub, staged, day, f"run-{day}")
    stray = pl.DataFrame({"age": ["99"], "url_template": ["/stray"]}).with_columns(
        pl.lit("2026-11-24").str.to_date().alias("date")
    )
    write_deltalake(
        str(pub / "delta" / "anonymized" / "page_views"), stray.to_arrow(), mode="append"
    )
    build_catalog(pub, view_docs())
    return pub


def test_the_catalog_reads_the_newest_delta_release_wherever_it_is_copied(tmp_path: Path) -> None:
    pub = _delta_published(tmp_path / "a")
    moved = tmp_path / "b" / "copy"
    shutil.copytree(pub, moved)
    shutil.rmtree(tmp_path / "a")
    con = connect(moved)
    rows = con.execute("select date, new_col from daily_active_users order by date").fetchall()
    assert [str(r[0]) for r in rows] == ["2026-11-23", "2026-11-24"]
    assert [r[1] for r in rows] == [None, "x"]  # the added column, null on the earlier day
    # the record table: both days, not the commit that no release names
    assert con.execute("select count(*) from anonymized_page_views").fetchone() == (2,)
    views = dict(con.execute("select view_name, comment from duckdb_views()").fetchall())
    assert "k-anonymized" in views["anonymized_page_views"]


def test_the_first_delta_release_starts_from_the_dated_folders(tmp_path: Path) -> None:
    """An output root published before Delta keeps its history: the first release copies it."""
    from tokumei.infra.tableformat import publish_release, read_table

    pub = _old_layout(tmp_path)  # 2026-11-23 and -24 in the dated folders
    for part in (pub / "stats").glob("*/date=*/part-0.parquet"):  # dates typed as a run types them
        pl.read_parquet(part).with_columns(pl.col("date").str.to_date()).write_parquet(part)
    stage = tmp_path / "stage" / "stats" / "daily_active_users" / "date=2026-11-24"
    stage.mkdir(parents=True)
    pl.DataFrame(
        {"date": ["2026-11-24"], "prefecture": ["大阪府"], "persons": [20], "suppressed": [False]}
    ).with_columns(pl.col("date").str.to_date(), pl.lit("y").alias("new_col")).write_parquet(
        stage / "part-0.parquet"
    )
    publish_release(pub, {"stats/daily_active_users": stage / "part-0.parquet"}, "2026-11-24", "r")
    dau = read_table(pub, "stats/daily_active_users")
    assert dau is not None
    assert sorted(dau.select("date", "persons").rows()) == [
        (pl.Series(["2026-11-23"]).str.to_date()[0], 12),
        (pl.Series(["2026-11-24"]).str.to_date()[0], 20),  # the release's day replaced
    ]
    records = read_table(pub, "anonymized/page_views")  # seeded, with its folder's date
    assert records is not None and records["date"].cast(pl.String).to_list() == ["2026-11-24"]
    build_catalog(pub, view_docs())
    con = connect(pub)
    assert con.execute("select sum(persons) from daily_active_users").fetchone() == (32,)
