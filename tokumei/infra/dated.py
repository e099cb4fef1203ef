"""A folder of ``date=YYYY-MM-DD`` partitions, on local disk or under an ``s3://`` URL.

The retained pseudonymous layer (``<out>/retained/<dataset>/date=…/part-*.parquet``) lives under
the output's storage URL, so that workers share no disk (docs/architecture.md §7). Its readers
need two things: which days are there, and a lazy scan of one day. Both are the same for a
folder and a bucket prefix; the days are listed once per layer object (one listing call on S3,
not one per day of a 400-day window).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def is_url(root: Path | str) -> bool:
    """Whether a location (a folder or a URL; ``tokumei.infra.tableformat`` uses these too)
    is a URL."""
    return isinstance(root, str) and "://" in root


def join(root: Path | str, *parts: str) -> Path | str:
    """``root/parts…`` for a folder or a URL."""
    if is_url(root):
        return "/".join([str(root).rstrip("/"), *parts])
    return Path(root).joinpath(*parts)


@dataclass
class DatedLayer:
    """``root/date=YYYY-MM-DD/*.parquet``; ``days`` is listed on first use and then kept.

    >>> layer = DatedLayer("/tmp/none")
    >>> layer.has(date(2026, 11, 24))
    False
    """

    root: Path | str
    _days: set[date] | None = field(default=None, init=False, repr=False)

    def days(self) -> set[date]:
        if self._days is None:
            self._days = {
                date.fromisoformat(m.group(1)) for m in map(_DAY.match, self._names()) if m
            }
        return self._days

    def has(self, day: date) -> bool:
        return day in self.days()

    def scan(self, day: date, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
        """The day's Parquet files (with the endpoint options on S3)."""
        files = join(self.root, f"date={day.isoformat()}", "*.parquet")
        if is_url(self.root):
            from tokumei.infra.objectstore import polars_storage_options

            return pl.scan_parquet(
                str(files), schema=schema, storage_options=polars_storage_options()
            )
        return pl.scan_parquet(files, schema=schema)

    def _names(self) -> list[str]:
        if is_url(self.root):
            from tokumei.infra.objectstore import _bare, filesystem

            try:
                entries = filesystem().ls(_bare(str(self.root)), detail=False, refresh=True)
            except FileNotFoundError:
                return []
            return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]
        root = Path(self.root)
        if not root.is_dir():
            return []
        return [p.name for p in root.iterdir() if p.is_dir()]
