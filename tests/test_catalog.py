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


def _published(root: Path) -> Path:
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
    build_catalog(pub, view_docs())
    return pub


def test_catalog_works_after_being_copied_elsewhere(tmp_path: Path) -> None:
    pub = _published(tmp_path / "a")
    moved = tmp_path / "b" / "copy"
    shutil.copytree(pub, moved)
    shutil.rmtree(tmp_path / "a")  # nothing of the original location is left to read
    con = connect(moved)
    assert con.execute("select sum(persons) from daily_active_users").fetchone() == (24,)
    assert con.execute("select count(*) from anonymized_page_views").fetchone() == (1,)


def test_catalog_opens_with_plain_duckdb_inside_the_folder(tmp_path: Path) -> None:
    pub = _published(tmp_path)
    cwd = Path.cwd()
    os.chdir(pub)  # `cd published && duckdb catalog.duckdb`
    try:
        con = duckdb.connect("catalog.duckdb", read_only=True)
        assert con.execute("select count(*) from daily_active_users").fetchone() == (2,)
    finally:
        os.chdir(cwd)


def test_an_added_column_is_visible_not_dropped(tmp_path: Path) -> None:
    con = connect(_published(tmp_path))
    rows = con.execute("select date, new_col from daily_active_users order by date").fetchall()
    assert [r[1] for r in rows] == [None, "x"]


def test_views_and_columns_carry_the_dictionary_comments(tmp_path: Path) -> None:
    con = connect(_published(tmp_path))
    views = dict(con.execute("select view_name, comment from duckdb_views()").fetchall())
    assert views["daily_active_users"].startswith(
        view_docs()["daily_active_users"].comment[:40]
    )
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
