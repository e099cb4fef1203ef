"""Tests read published tables the way readers do: Delta tables at the marker's newest release.

docs/adr/0008-published-tables-delta-lake.md: every published table is a Delta table under
``published/delta/<kind>/<table>`` and a release is what the marker ``published/delta/releases``
names. The dated folders (``published/<kind>/<table>/date=…/part-0.parquet``) are to go, so
tests read through ``tokumei.infra.tableformat`` (``current_release``/``read_table``) and never
depend on that layout (``current_release``/``read_table``/``read_day``). The frames equal what
the old reads returned, so assertions stay as they were:

* ``read_published(out, kind, table, day)`` = ``pl.read_parquet(<table>/date=<day>/part-0.parquet)``:
  the day's rows in the order written, same columns in the same order (``read_day`` leaves
  out a column a later release added). The record tables (kind ``anonymized``) carried their
  date only in the folder name, so their ``date`` column (added by the Delta table) is dropped.
* ``read_published(out, kind, table)`` = ``pl.read_parquet(<table>/)`` over the dated folders:
  every day, oldest first, ``date`` included (the record tables got it from the folder name,
  last, as the Delta table has it).

A day counts as published for a table when the table holds rows of it (not
``tableformat.released_days``: the marker names every table of a release, also the ones the
release did not stage, so that set also holds the later days of a table released once).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from tokumei.infra import tableformat

#: Kinds whose dated files had no ``date`` column (the folder name carried it).
DATE_IN_FOLDER_NAME = {"anonymized"}


def _published(out: Path | str) -> Path | str:
    """``<out>/published`` of a local output root or of an ``s3://`` output URL."""
    if isinstance(out, str) and "://" in out:
        return f"{out.rstrip('/')}/published"
    return Path(out) / "published"


def published_tables(out: Path | str, day: str | date | None = None) -> list[str]:
    """``<kind>/<table>`` of every table the newest release names (empty before the first).

    With ``day``: only the tables holding rows of that day (what ``rglob("date=<day>")`` found;
    a table published with no row that day is not told apart from one not published).
    """
    release = tableformat.current_release(_published(out))
    names = sorted(release.versions) if release else []
    if day is None:
        return names
    return [n for n in names if _iso(day) in published_dates(out, *n.split("/"))]


def published_dates(out: Path | str, kind: str, table: str) -> list[str]:
    """The days (``YYYY-MM-DD``, oldest first) the newest release holds rows of in ``table``."""
    frame = tableformat.read_table(_published(out), f"{kind}/{table}")
    if frame is None:
        return []
    return sorted(d.isoformat() for d in frame["date"].unique().to_list())


def read_published(
    out: Path | str, kind: str, table: str, day: str | date | None = None
) -> pl.DataFrame:
    """A published table at the newest release (only ``day``'s rows when given).

    Raises FileNotFoundError when the release has no such table, as reading a missing dated
    folder did.
    """
    name = f"{kind}/{table}"
    if day is None:
        frame = tableformat.read_table(_published(out), name)
    else:
        frame = tableformat.read_day(_published(out), name, _iso(day))
    if frame is None:
        raise FileNotFoundError(f"no published table {name} at the newest release")
    if day is None:  # the dated folders were read oldest first; rows of a day in file order
        return frame.sort("date", maintain_order=True)
    return frame.drop("date") if kind in DATE_IN_FOLDER_NAME else frame


def _iso(day: str | date) -> str:
    return day if isinstance(day, str) else day.isoformat()
