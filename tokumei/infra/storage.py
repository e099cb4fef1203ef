"""Paths of a run, the work layer, staging and the atomic publish (docs/architecture.md §5).

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tokumei.infra.settings import Settings


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
    def tables_at(self) -> Path | str:
        """Where the published Delta tables are: ``<out>/published`` or the ``s3://`` output's
        (docs/adr/0008-published-tables-delta-lake.md); what later runs compare against."""
        if self.settings.out_url:
            return f"{self.settings.out_url.rstrip('/')}/published"
        return self.published

    @property
    def reports(self) -> Path:
        return self.settings.out / "reports" / f"date={self.day}"

    def quarantine(self, source: str) -> Path:
        return self.settings.out / "quarantine" / source / f"date={self.day}"

    def layer(self, name: str) -> Path:
        """A work-layer folder (``dims``, ``generalized``, ``scrubbed``, …), created on demand."""
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def staged_table(self, kind: str, table: str) -> Path:
        return self.staging / "published" / kind / table / f"date={self.day}" / "part-0.parquet"

    @property
    def retained(self) -> Path:
        """The retained pseudonymous layers (``tokumei.stats.periods``) of a local output."""
        return self.settings.out / "retained"

    @property
    def retained_at(self) -> Path | str:
        """Where the retained layers are kept across runs: ``<out>/retained`` or, with an
        ``s3://`` output, under it (workers share no disk, docs/architecture.md §7)."""
        if self.settings.out_url:
            return f"{self.settings.out_url.rstrip('/')}/retained"
        return self.retained

    def staged_retained(self, dataset: str) -> Path:
        """This run's partition of a retained dataset, staged until publish; created."""
        path = self.staging / "retained" / dataset / f"date={self.day}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def staged_reports(self) -> Path:
        return self.staging / "reports"

    def step_record(self, step: str) -> Path:
        return self.layer("steps") / f"{step}.json"


#: zstd at level 1 instead of Polars' default level 3, for every Parquet file tokumei writes.
#: Each step rewrites the day's work layer, and compression was most of that cost: the 9.1M-row
#: pseudonymized events of the 10M-event day write in 8.8 s instead of 13.1 s (17.2 vs 25.7
#: CPU-s) for 1,259 vs 1,284 MB; lz4 and snappy write no faster and are ~1.8x larger.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


def write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> int:
    """Write (streaming for LazyFrames) and return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(tmp, **PARQUET_OPTIONS)
        rows = pl.scan_parquet(tmp).select(pl.len()).collect().item()
    else:
        frame.write_parquet(tmp, **PARQUET_OPTIONS)
        rows = frame.height
    os.replace(tmp, path)
    return rows


def save_record(paths: RunPaths, step: str, record: dict[str, Any]) -> None:
    """Persist a step's counts so a later task (maybe on another worker) can build the manifest."""
    paths.step_record(step).write_text(json.dumps(record, sort_keys=True, default=str))


def load_record(paths: RunPaths, step: str) -> dict[str, Any]:
    path = paths.step_record(step)
    return json.loads(path.read_text()) if path.exists() else {}


#: Journal of a publish in progress, under ``published/``; see :func:`publish_tree`.
PUBLISHING = ".publishing"
#: Where replaced partitions wait, under ``published/``, until the publish commits.
TRASH = ".trash"


def publish_tree(paths: RunPaths) -> list[str]:
    """Move the day's retained partitions and the reports of a local output into place, after
    the Delta release (the tables themselves are published by ``tokumei.infra.tableformat``);
    return what was moved, relative to the output root.

    All or nothing, as far as renames allow: each item is swapped with two renames (old →
    ``published/.trash``, new → place), and the replaced items are kept until every swap is
    done. If a swap fails, the swaps already done are undone in reverse (the new items go back
    to staging, the old ones back into place). A journal (``published/.publishing``) lists the
    swaps before the first one and is removed once the last one is done: a publish killed half
    way is rolled back by the next publish. A reader never sees a partially written file.
    """
    _recover(paths.published)
    moves: list[tuple[Path, Path]] = []
    # the retained partitions are pseudonymous work data for later runs, never for analysts
    staged_ret = paths.staging / "retained"
    for part in sorted(staged_ret.glob("*/date=*")):
        moves.append((part, paths.retained / part.relative_to(staged_ret)))
    if paths.staged_reports.exists():
        moves += [
            (item, paths.reports / item.name) for item in sorted(paths.staged_reports.iterdir())
        ]
    out_root = paths.published.parent
    published = [str(target.relative_to(out_root)) for _src, target in moves]
    # journal paths are relative to the out dir: workers may mount it at different places
    out = paths.published.parent
    trash = paths.published / TRASH / paths.run_id
    swaps = [
        {
            "src": str(src.relative_to(out)),
            "target": str(target.relative_to(out)),
            "old": str((trash / f"{i:05d}").relative_to(out)),
            "had_old": target.exists(),
        }
        for i, (src, target) in enumerate(moves)
    ]
    _write_journal(paths.published, swaps)
    done: list[dict[str, Any]] = []
    try:
        for swap in swaps:
            done.append(swap)
            _swap_dir(out / swap["src"], out / swap["target"], out / swap["old"])
    except BaseException:
        _roll_back(out, done)
        (paths.published / PUBLISHING).unlink()
        shutil.rmtree(paths.published / TRASH, ignore_errors=True)
        raise
    (paths.published / PUBLISHING).unlink()  # the commit point
    shutil.rmtree(paths.published / TRASH, ignore_errors=True)
    return published


def _swap_dir(src: Path, target: Path, old: Path) -> None:
    """Put ``src`` (a directory or a file) at ``target``; the replaced item goes to ``old``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.replace(target, old)
    os.replace(src, target)


def _write_journal(published: Path, swaps: list[dict[str, Any]]) -> None:
    published.mkdir(parents=True, exist_ok=True)
    tmp = published / (PUBLISHING + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(swaps, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, published / PUBLISHING)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _roll_back(out: Path, swaps: list[dict[str, Any]]) -> None:
    """Undo swaps (done, half done or not started), last first.

    A swap's new item goes back to its staging place when that still exists (so a retried
    publish task can publish it), else it is deleted; the replaced item goes back into place.
    """
    for swap in reversed(swaps):
        src, target, old = (out / swap[k] for k in ("src", "target", "old"))
        if swap["had_old"] and not old.exists():
            continue  # not started: target still holds the old item
        if target.exists():  # the new item is in place
            if src.parent.is_dir() and not src.exists():
                os.replace(target, src)
            else:
                _remove(target)
        if old.exists():
            os.replace(old, target)


def _recover(published: Path) -> None:
    """Roll back a publish that a killed process left half done; drop leftover trash."""
    journal = published / PUBLISHING
    if journal.exists():
        _roll_back(published.parent, json.loads(journal.read_text()))
        journal.unlink()
    (published / (PUBLISHING + ".tmp")).unlink(missing_ok=True)
    shutil.rmtree(published / TRASH, ignore_errors=True)


@dataclass(frozen=True)
class ViewDoc:
    """What ``COMMENT ON`` says of one catalog view and its columns (built by the release layer)."""

    comment: str
    columns: dict[str, str]


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_catalog(published: Path, docs: Mapping[str, ViewDoc] | None = None) -> list[str]:
    """(Re)create ``published/catalog.duckdb`` with one view per published table.

    The views read the Parquet files of the Delta tables' versions that the newest release
    names (``tableformat.release_files``), as paths *relative to* ``published/`` so the folder
    can be copied or mounted anywhere: DuckDB resolves them against ``file_search_path`` (set
    by ``tokumei.release.catalog.connect``) or the working directory (``cd published && duckdb
    catalog.duckdb``). Rebuilt by every publish. ``docs`` become ``COMMENT ON`` the views and
    their columns. Built in a temp file and swapped in.
    """
    import duckdb

    from tokumei.infra.tableformat import release_files

    views: list[str] = []
    delta = release_files(published)
    tmp = published / "catalog.duckdb.tmp"
    _remove_catalog_tmp(tmp)
    try:
        con = duckdb.connect(str(tmp))
    except BaseException:
        _remove_catalog_tmp(tmp)
        raise
    try:
        con.execute(f"SET file_search_path = {_sql_text(str(published.resolve()))}")
        # With a Delta release (docs/adr/0008-published-tables-delta-lake.md), each view reads
        # the plain Parquet files of the table's version that the newest release names: the
        # catalog is one release, swapped in whole, and needs no DuckDB Delta extension.
        for name, files in delta.items():
            kind, table = name.split("/", 1)
            view = table if kind == "stats" else f"{kind}_{table}"
            if not files:
                continue
            listed = ", ".join(_sql_text(f) for f in files)
            con.execute(
                f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM read_parquet([{listed}], '
                "hive_partitioning = false, union_by_name = true)"
            )
            _comment(con, view, (docs or {}).get(view))
            views.append(view)
    except BaseException:
        con.close()
        _remove_catalog_tmp(tmp)
        raise
    con.close()
    os.replace(tmp, published / "catalog.duckdb")
    return views


def _comment(con: Any, view: str, doc: ViewDoc | None) -> None:
    """``COMMENT ON`` a view and those of its columns the doc describes."""
    if doc is None:
        return
    con.execute(f'COMMENT ON VIEW "{view}" IS {_sql_text(doc.comment)}')
    have = {r[0] for r in con.execute(f'DESCRIBE "{view}"').fetchall()}
    for column, text in doc.columns.items():
        if column in have:
            con.execute(f'COMMENT ON COLUMN "{view}"."{column}" IS {_sql_text(text)}')


def _remove_catalog_tmp(tmp: Path) -> None:
    """A half-built catalog (and its write-ahead log) must not stay under ``published/``."""
    for path in (tmp, tmp.with_name(tmp.name + ".wal")):
        path.unlink(missing_ok=True)


def remove_run_dirs(paths: RunPaths) -> None:
    """Delete the work layer and staging of a run (called on success and on failure)."""
    for d in (paths.work, paths.staging):
        shutil.rmtree(d, ignore_errors=True)
    for parent in (paths.work.parent, paths.staging.parent):
        with contextlib.suppress(OSError):
            parent.rmdir()


def remove_dead_runs(out: Path, run_id: str) -> int:
    """Remove the work layers and staging areas of runs other than ``run_id``; return how many.

    Called by ``start`` once it holds the output's lock (``tokumei.infra.runlock``): no other
    run can then be alive, so whatever another run left under ``_work/`` and ``_staging/`` is
    what a killed run (SIGKILL, OOM, a lost worker) could not clean up, raw values included.
    A publish that such a run left half done is rolled back first (its journal may point into
    the staging area about to go).
    """
    _recover(out / "published")
    dead: set[str] = set()
    for parent in (out / "_work", out / "_staging"):
        if not parent.is_dir():
            continue
        for item in parent.iterdir():
            if item.name != run_id:
                _remove(item)
                dead.add(item.name)
    return len(dead)
