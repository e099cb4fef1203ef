"""Paths of a run, the work layer, staging and the atomic publish (DESIGN §5).

A run writes everything it will publish under ``<out>/_staging/<run_id>/`` first. Publishing moves
each finished partition directory into ``published/`` with ``os.replace`` (atomic on one file
system), so readers see either yesterday's complete partition or today's, never half a file.
Raw and pseudonymized data live only in ``<out>/_work/<run_id>/``, which is removed when the run
ends, success or failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.settings import Settings


@dataclass(frozen=True)
class RunPaths:
    """Every path one run touches."""

    settings: Settings
    day: str
    run_id: str

    @property
    def work(self) -> Path:
        return self.settings.out / "_work" / self.run_id

    @property
    def staging(self) -> Path:
        return self.settings.out / "_staging" / self.run_id

    @property
    def published(self) -> Path:
        return self.settings.out / "published"

    @property
    def reports(self) -> Path:
        return self.settings.out / "reports" / f"date={self.day}"

    def quarantine(self, source: str) -> Path:
        return self.settings.out / "quarantine" / source / f"date={self.day}"

    def layer(self, name: str) -> Path:
        """A work-layer folder (``extracted``, ``filtered``, ``pseudo``, …), created on demand."""
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def staged_table(self, kind: str, table: str) -> Path:
        return self.staging / "published" / kind / table / f"date={self.day}" / "part-0.parquet"

    @property
    def staged_reports(self) -> Path:
        return self.staging / "reports"

    def step_record(self, step: str) -> Path:
        return self.layer("steps") / f"{step}.json"


def write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> int:
    """Write (streaming for LazyFrames) and return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(tmp)
        rows = pl.scan_parquet(tmp).select(pl.len()).collect().item()
    else:
        frame.write_parquet(tmp)
        rows = frame.height
    os.replace(tmp, path)
    return rows


def save_record(paths: RunPaths, step: str, record: dict[str, Any]) -> None:
    """Persist a step's counts so a later task (maybe on another worker) can build the manifest."""
    paths.step_record(step).write_text(json.dumps(record, sort_keys=True, default=str))


def load_record(paths: RunPaths, step: str) -> dict[str, Any]:
    path = paths.step_record(step)
    return json.loads(path.read_text()) if path.exists() else {}


def publish_tree(paths: RunPaths) -> list[str]:
    """Move every staged partition and the reports into place; return what was published.

    Each ``date=`` partition is swapped with two renames (old → trash, new → place); the window
    in which a reader could miss the partition is two metadata operations, and a reader never
    sees a partially written one.
    """
    published: list[str] = []
    staged_pub = paths.staging / "published"
    for part in sorted(staged_pub.glob("*/*/date=*")):
        rel = part.relative_to(staged_pub)
        target = paths.published / rel
        _swap_dir(part, target)
        published.append(str(Path("published") / rel))
    if paths.staged_reports.exists():
        paths.reports.mkdir(parents=True, exist_ok=True)
        for item in sorted(paths.staged_reports.iterdir()):
            target = paths.reports / item.name
            if item.is_dir():
                _swap_dir(item, target)
            else:
                os.replace(item, target)
    return published


def _swap_dir(src: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = target.with_name(target.name + ".old")
    if trash.exists():
        shutil.rmtree(trash)
    if target.exists():
        os.replace(target, trash)
    os.replace(src, target)
    if trash.exists():
        shutil.rmtree(trash)


def build_catalog(published: Path) -> list[str]:
    """(Re)create ``published/catalog.duckdb`` with one view per published table.

    Views use relative-free absolute globs with Hive partitioning, so ``date`` is a column and a
    new partition shows up without touching the catalog. Built in a temp file and swapped in.
    """
    import duckdb

    views: list[str] = []
    tmp = published / "catalog.duckdb.tmp"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for kind_dir in sorted(p for p in published.iterdir() if p.is_dir()):
            for table_dir in sorted(p for p in kind_dir.iterdir() if p.is_dir()):
                if not any(table_dir.glob("date=*/*.parquet")):
                    continue
                name = (
                    table_dir.name
                    if kind_dir.name == "stats"
                    else f"{kind_dir.name}_{table_dir.name}"
                )
                glob = str(table_dir / "date=*" / "*.parquet").replace("'", "''")
                con.execute(
                    f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM '
                    f"read_parquet('{glob}', hive_partitioning = false)"
                )
                views.append(name)
    finally:
        con.close()
    os.replace(tmp, published / "catalog.duckdb")
    return views


def remove_run_dirs(paths: RunPaths) -> None:
    """Delete the work layer and staging of a run (called on success and on failure)."""
    for d in (paths.work, paths.staging):
        shutil.rmtree(d, ignore_errors=True)
    for parent in (paths.work.parent, paths.staging.parent):
        with contextlib.suppress(OSError):
            parent.rmdir()
