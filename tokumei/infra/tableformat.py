"""Published tables as Delta Lake tables, and the release marker (docs/adr/0008-published-tables-delta-lake.md).

Every published table is a Delta table under ``published/delta/<kind>/<table>/`` (not
partitioned; every row carries its ``date``, so each data file reads on its own). A date's
release replaces that date's rows of each table with one Delta commit per table
(``overwrite`` with ``predicate="date = 'YYYY-MM-DD'"``); other dates are untouched and every
earlier state stays readable by version until retention vacuums it.

Delta commits one table at a time, so a release of several tables is made atomic for readers
by a **release marker**: the Delta table ``published/delta/releases``, one row per table and
release (``release``, ``run_id``, ``date``, ``table``, ``version``, ``columns_added``,
``published_at``). A release's rows are appended in one commit after every table's commit;
that append is the commit point. A reader that takes the newest ``release`` and reads each
table *at the version the marker names* sees the previous release or the new one, never a mix,
whatever runs meanwhile. It needs only a Delta reader:

    rel = pl.read_delta("published/delta/releases")
    cur = rel.filter(pl.col("release") == pl.col("release").max())
    version = dict(cur.select("table", "version").iter_rows())
    dau = pl.read_delta("published/delta/stats/daily_active_users",
                        version=version["stats/daily_active_users"])

A reader of a table's newest version (no marker) sees each table's own commits as they land.
Commits a killed publish left beyond the marker are undone by the next publish before it
writes (:func:`recover`: the marker's version is written again as the newest, a table no
marker names is removed), so they never reach a release.

Schema evolution is additive: a new column is merged into the table (null on earlier rows)
and recorded per table and release in the marker's ``columns_added``; a changed type or a
column a release lacks stops the publish before any commit. Old versions are removed by
Delta's own ``vacuum`` (:func:`vacuum`, run by the retention job).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from tokumei.infra.dated import is_url, join
from tokumei.infra.errors import TokumeiError

log = logging.getLogger("tokumei.tableformat")

#: Folder of the Delta tables under ``published/``.
DELTA_DIR = "delta"
#: The release marker table under ``published/delta/``.
RELEASES = "releases"
#: Columns of the release marker, in order.
MARKER_SCHEMA = {
    "release": pl.Int64,
    "run_id": pl.String,
    "date": pl.Date,
    "table": pl.String,
    "version": pl.Int64,
    "columns_added": pl.List(pl.String),
    "published_at": pl.Datetime("us", "UTC"),
}


class TableFormatError(TokumeiError):
    """A release cannot be written to the published Delta tables (names tables, never values)."""


@dataclass
class Release:
    """One release as the marker records it: its number and the version of every table."""

    release: int
    run_id: str
    day: str
    versions: dict[str, int] = field(default_factory=dict)
    columns_added: dict[str, list[str]] = field(default_factory=dict)


#: ``published/`` as a local folder or an ``s3://…/published`` URL (``Settings.out_url``).
Location = Path | str


def _options(loc: Location) -> dict[str, str] | None:
    """delta-rs settings of a URL: the endpoint only; credentials come from the AWS chain."""
    if not is_url(loc):
        return None
    from tokumei.infra.objectstore import polars_storage_options

    return polars_storage_options()


def delta_root(published: Location) -> Location:
    return join(published, DELTA_DIR)


def table_path(published: Location, name: str) -> Location:
    """``name`` is ``<kind>/<table>`` (``stats/daily_active_users``, ``anonymized/page_views``)."""
    return join(delta_root(published), *name.split("/"))


def _open(path: Location, version: int | None = None) -> Any:
    """The Delta table at ``path`` (a version of it), or None when there is none.

    Not ``DeltaTable.is_deltatable``: on S3 servers it can retry for minutes on a missing
    prefix (bench/results/table_formats.md); opening answers at once.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(str(path), version=version, storage_options=_options(path))
    except TableNotFoundError:
        return None


def _tables(published: Location) -> list[str]:
    """``<kind>/<table>`` of every folder under ``published/delta/`` but the marker."""
    root = delta_root(published)
    if is_url(root):
        from tokumei.infra.objectstore import _bare, filesystem

        fs, base = filesystem(), _bare(str(root))
        if not fs.exists(base):
            return []
        return sorted(
            f"{kind.rsplit('/', 1)[-1]}/{table.rsplit('/', 1)[-1]}"
            for kind in fs.ls(base, detail=False)
            if kind.rsplit("/", 1)[-1] != RELEASES and fs.isdir(kind)
            for table in fs.ls(kind, detail=False)
            if fs.isdir(table)
        )
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return []
    return [
        f"{kind.name}/{table.name}"
        for kind in sorted(root.iterdir())
        if kind.name != RELEASES and kind.is_dir() and not kind.is_symlink()
        for table in sorted(kind.iterdir())
        if table.is_dir() and not table.is_symlink()
    ]


def _remove_table(published: Location, name: str) -> None:
    path = table_path(published, name)
    if is_url(path):
        from tokumei.infra.objectstore import _bare, filesystem

        filesystem().rm(_bare(str(path)), recursive=True)
    else:
        shutil.rmtree(path)


def _marker_rows(published: Location) -> pl.DataFrame | None:
    """Every row of the release marker, or None before the first release (one read)."""
    marker = _open(join(delta_root(published), RELEASES))
    if marker is None:
        return None
    rows = pl.from_arrow(marker.to_pyarrow_table())
    assert isinstance(rows, pl.DataFrame)
    return None if rows.is_empty() else rows


def _newest(rows: pl.DataFrame) -> Release:
    """The newest release among the marker's rows."""
    newest = rows.filter(pl.col("release") == pl.col("release").max())
    first = newest.row(0, named=True)
    return Release(
        release=first["release"],
        run_id=first["run_id"],
        day=first["date"].isoformat(),
        versions={r["table"]: r["version"] for r in newest.iter_rows(named=True)},
        columns_added={
            r["table"]: list(r["columns_added"])
            for r in newest.iter_rows(named=True)
            if r["columns_added"]
        },
    )


def current_release(published: Location) -> Release | None:
    """The newest release the marker records, or None before the first one."""
    rows = _marker_rows(published)
    return None if rows is None else _newest(rows)


def next_release(published: Location) -> int:
    """The number the next release will have (one writer under the run lock: no race)."""
    current = current_release(published)
    return current.release + 1 if current else 1


def read_table(
    published: Location, name: str, release: Release | None = None
) -> pl.DataFrame | None:
    """A table as of a release (default: the newest), or None if that release lacks it."""
    release = release or current_release(published)
    if release is None or name not in release.versions:
        return None
    return _table_at(published, name, release.versions[name])


def _table_at(published: Location, name: str, version: int) -> pl.DataFrame | None:
    """Every row of a table at one version (small: the stats tables hold a few thousand rows
    a day)."""
    table = _open(table_path(published, name), version)
    if table is None:
        return None
    frame = pl.from_arrow(table.to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _written_days(rows: pl.DataFrame, frame: pl.DataFrame | None, name: str) -> set[str]:
    """Dates under which ``name`` (``frame``, at the newest release) is published.

    A date counts when the table holds rows of it, or when the newest release of that date
    wrote the table (a release may publish a table with no rows). The marker names every
    table in every release, with the version a release left it at, so "wrote" is "its version
    differs from the previous release's" (a table a release did not stage keeps its version).
    """
    days = set() if frame is None else {d.isoformat() for d in frame["date"].unique()}
    ordered = rows.sort("release").with_columns(previous=pl.col("version").shift(1).over("table"))
    wrote = ordered.filter(
        pl.col("table") == name,
        pl.col("previous").is_null() | (pl.col("version") != pl.col("previous")),
    )
    newest = ordered.group_by("date").agg(pl.col("release").max().alias("newest"))
    wrote = wrote.join(newest, on="date").filter(pl.col("release") == pl.col("newest"))
    return days | {d.isoformat() for d in wrote["date"]}


def _columns_added_after(rows: pl.DataFrame, name: str, day: str) -> set[str]:
    """Columns a release after the newest release of ``day`` added to ``name``."""
    mine = rows.filter(pl.col("date") == date.fromisoformat(day))
    later = rows.filter(pl.col("table") == name, pl.col("columns_added").list.len() > 0)
    if mine.height:
        later = later.filter(pl.col("release") > mine["release"].max())
    return {c for cols in later["columns_added"] for c in cols}


def released_days(published: Location, name: str) -> set[str]:
    """Dates under which ``name`` is published as of the newest release (see
    :func:`_written_days`)."""
    rows = _marker_rows(published)
    if rows is None or name not in (release := _newest(rows)).versions:
        return set()
    return _written_days(rows, _table_at(published, name, release.versions[name]), name)


def read_day(published: Location, name: str, day: str) -> pl.DataFrame | None:
    """What readers have of ``name`` under ``day``: its rows at the newest release, or None
    when the table is not published under that date.

    Columns as the release of ``day`` staged them: a column a later release added (null on
    this date's rows) is left out, so a re-release compares like with like. The marker and
    the table are read once.
    """
    rows = _marker_rows(published)
    if rows is None or name not in (release := _newest(rows)).versions:
        return None
    frame = _table_at(published, name, release.versions[name])
    if frame is None or day not in _written_days(rows, frame, name):
        return None
    on_day = frame.filter(pl.col("date") == date.fromisoformat(day))
    later = _columns_added_after(rows, name, day)
    return on_day.drop(
        [c for c in on_day.columns if c in later and on_day[c].null_count() == on_day.height]
    )


def recover(published: Location) -> list[str]:
    """Undo table commits no release names (a publish killed before its marker commit).

    A table whose newest version is beyond the marker's gets the released state back (a new
    commit, :func:`_roll_back_to`); a table the marker does not name at all was created by
    the killed publish and is removed. Returns the tables touched. Called under the run lock.
    """
    release = current_release(published)
    versions = dict(release.versions) if release else {}
    touched = []
    for name in _tables(published):
        if name not in versions:
            _remove_table(published, name)
            touched.append(name)
            continue
        table = _open(table_path(published, name))
        if (
            table is not None
            and table.version() > versions[name]
            and _data_files(table)
            != _data_files(_open(table_path(published, name), versions[name]))
        ):  # commits that changed no data file (vacuum writes two) are no strays
            _roll_back_to(table_path(published, name), versions[name])
            versions[name] = _open(table_path(published, name)).version()
            touched.append(name)
    if release is not None and versions != release.versions:
        # The rolled-back tables hold the release's rows in new files, and the files of the
        # versions the marker named now count as replaced (vacuum would take them): the
        # release is stated again with the new versions, same run and date.
        _append_marker(published, release.release + 1, release.run_id, release.day, versions, {})
    if touched:
        log.warning(
            "table format: undid commits of %d table(s) that no release names (a publish "
            "was killed before its release marker): %s",
            len(touched),
            ", ".join(touched),
        )
    return touched


def _data_files(table: Any) -> set[str]:
    """The data files a table version reads (relative paths, as its log lists them)."""
    return set(pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist())


def _roll_back_to(path: Location, version: int) -> None:
    """Make the table's newest version hold what ``version`` held (a new commit).

    Not ``DeltaTable.restore``: against the S3 test server (moto) it retried a GET for minutes;
    rewriting the released version works the same on a folder and on S3, and runs only after
    a killed publish.
    """
    from deltalake import WriterProperties, write_deltalake

    released = _open(path, version)
    write_deltalake(
        str(path),
        released.to_pyarrow_table(),
        mode="overwrite",
        schema_mode="overwrite",
        writer_properties=WriterProperties(compression="ZSTD", compression_level=1),
        storage_options=_options(path),
    )


def _frame_of(staged: Path, day: str) -> pl.DataFrame:
    """A staged partition with its ``date`` column (the record table has it only in its path)."""
    frame = pl.read_parquet(staged)
    if "date" not in frame.columns:
        frame = frame.with_columns(pl.lit(date.fromisoformat(day)).alias("date"))
    return frame


def _seed_from_dated_folders(published: Location) -> list[str]:
    """Before the first release: copy the dates published in the old layout into Delta.

    An output root published before the Delta tables existed holds its history only in
    ``published/<kind>/<table>/date=…/part-0.parquet``; the first release starts each table
    with those dates (the release then replaces ``day`` in the tables it stages), columns
    unioned as the days added them, so a reader of the marker sees the whole history. Only
    tables with no Delta table yet (a seed cut short is removed by :func:`recover`, redone).
    """
    from deltalake import WriterProperties, write_deltalake

    seeded: list[str] = []
    if is_url(published):  # an s3:// output's history is in its releases/ (objectstore)
        return seeded
    published = Path(published)
    for kind in ("stats", "anonymized"):
        for folder in sorted(p for p in (published / kind).glob("*") if p.is_dir()):
            name = f"{kind}/{folder.name}"
            parts = sorted(folder.glob("date=*/part-0.parquet"))
            if not parts or _open(table_path(published, name)) is not None:
                continue
            frames = [_frame_of(part, part.parent.name.removeprefix("date=")) for part in parts]
            target = Path(table_path(published, name))
            target.mkdir(parents=True, exist_ok=True)
            write_deltalake(
                str(target),
                pl.concat(frames, how="diagonal_relaxed").to_arrow(),
                mode="error",
                writer_properties=WriterProperties(compression="ZSTD", compression_level=1),
            )
            seeded.append(name)
    if seeded:
        log.info("table format: seeded %d table(s) from the dated folders", len(seeded))
    return seeded


def release_files(published: Path) -> dict[str, list[str]]:
    """``<kind>/<table>`` -> its data files at the newest release, relative to ``published/``.

    What the analysts' DuckDB catalog reads (``storage.build_catalog``): plain Parquet files
    of one release, so DuckDB needs no Delta extension and a copied folder still reads.
    Empty when nothing was released in Delta yet.
    """
    release = current_release(published)
    if release is None:
        return {}
    files: dict[str, list[str]] = {}
    for name, version in sorted(release.versions.items()):
        table = _open(table_path(published, name), version)
        if table is None:
            continue
        root = Path(table_path(published, name)).relative_to(published)
        files[name] = [str(root / rel) for rel in sorted(_data_files(table))]
    return files


def schema_changes(
    published: Location, staged: Mapping[str, Path], day: str
) -> dict[str, list[str]]:
    """Columns each staged table adds to its published Delta table; non-additive changes raise.

    Checked before anything is written, so a refused release changes nothing.
    """
    added: dict[str, list[str]] = {}
    for name, path in sorted(staged.items()):
        table = _open(table_path(published, name))
        if table is None:
            continue
        have = pl.DataFrame(pa.schema(table.schema().to_arrow()).empty_table()).schema
        new = _frame_of(path, day).schema
        if missing := [c for c in have if c not in new]:
            raise TableFormatError(
                f"published table {name} would lose column(s) {', '.join(missing)}: "
                "schema changes of published tables must be additive (docs/adr/0008)"
            )
        if changed := [c for c in have if new[c] != have[c] and new[c] != pl.Null]:
            raise TableFormatError(
                f"published table {name} would change the type of column(s) "
                f"{', '.join(changed)}: schema changes of published tables must be additive"
            )
        if extra := [c for c in new if c not in have]:
            added[name] = extra
    return added


def publish_release(
    published: Location, staged: Mapping[str, Path], day: str, run_id: str
) -> Release:
    """Write a date's release of every staged table, then the marker (the commit point).

    ``staged`` maps ``<kind>/<table>`` to the run's staged Parquet partition of ``day``.
    Tables not staged today keep the version the previous release named. Runs under the
    output's run lock (one writer), so release numbers and versions cannot race.
    """
    from deltalake import WriterProperties, write_deltalake

    recover(published)
    previous = current_release(published)
    seeded = _seed_from_dated_folders(published) if previous is None else []
    added = schema_changes(published, staged, day)
    props = WriterProperties(compression="ZSTD", compression_level=1)
    versions = (
        dict(previous.versions)
        if previous
        else {name: _open(table_path(published, name)).version() for name in seeded}
    )
    for name, path in sorted(staged.items()):
        frame = _frame_of(path, day)
        if frame.height and frame["date"].ne(date.fromisoformat(day)).any():
            raise TableFormatError(f"staged table {name} holds rows of another date than {day}")
        target = table_path(published, name)
        options = _options(target)
        if _open(target) is None:
            if not is_url(target):
                Path(target).mkdir(parents=True, exist_ok=True)
            write_deltalake(
                str(target),
                frame.to_arrow(),
                mode="error",
                writer_properties=props,
                storage_options=options,
            )
        else:
            write_deltalake(
                str(target),
                frame.to_arrow(),
                mode="overwrite",
                predicate=f"date = '{day}'",
                schema_mode="merge" if name in added else None,
                writer_properties=props,
                storage_options=options,
            )
        versions[name] = _open(target).version()
    number = (previous.release + 1) if previous else 1
    _append_marker(published, number, run_id, day, versions, added)
    return Release(number, run_id, day, versions, {n: c for n, c in added.items() if c})


def _append_marker(
    published: Location,
    number: int,
    run_id: str,
    day: str,
    versions: Mapping[str, int],
    added: Mapping[str, list[str]],
) -> None:
    """Append release ``number``'s rows to the marker in one commit: the readers' commit point."""
    from deltalake import WriterProperties, write_deltalake

    now = datetime.now(UTC)
    marker = pl.DataFrame(
        [
            {
                "release": number,
                "run_id": run_id,
                "date": date.fromisoformat(day),
                "table": name,
                "version": version,
                "columns_added": added.get(name, []),
                "published_at": now,
            }
            for name, version in sorted(versions.items())
        ],
        schema=MARKER_SCHEMA,
    )
    marker_path = join(delta_root(published), RELEASES)
    if not is_url(marker_path):
        Path(marker_path).mkdir(parents=True, exist_ok=True)
    write_deltalake(
        str(marker_path),
        marker.to_arrow(),
        mode="append",
        writer_properties=WriterProperties(compression="ZSTD", compression_level=1),
        storage_options=_options(marker_path),
    )


def vacuum(published: Location, days: int, dry_run: bool = False) -> dict[str, int]:
    """Delete data files no version of the last ``days`` days needs, per table; return counts.

    Delta's own ``vacuum``: a file replaced or removed more than ``days`` ago goes, so every
    release of the last ``days`` days stays readable by version (older ones do not). Then the
    log is trimmed (``cleanup_metadata``, by the table's log retention).
    """
    removed: dict[str, int] = {}
    for name in [RELEASES, *_tables(published)]:
        table = _open(join(delta_root(published), *name.split("/")))
        if table is None:
            continue
        files = table.vacuum(
            retention_hours=days * 24, enforce_retention_duration=False, dry_run=dry_run
        )
        if not dry_run:
            table.cleanup_metadata()
        removed[name] = len(files)
    return removed
