"""Delta Lake (deltalake) vs Apache Iceberg (pyiceberg, SQLite SQL catalog) on tokumei's tables.

Why: issue 18 asks for an open table format for everything published, chosen with
measurements (docs/adr/0008-published-tables-delta-lake.md). This takes the published tables
of one real run (``--published <out>/published``, e.g. a ``tokumei run`` of a generated
3,000-user day) and publishes them as ``--days`` dated releases in each format, then measures
what tokumei needs: a date's release of every table, a re-run of a date, reads with Polars,
DuckDB and pyarrow, deleting rows, expiring old versions, an added column, the same on a local
S3 server (moto), and whether a copied folder still reads. Readers get no tokumei code.

    uv run --with 'pyiceberg[sql-sqlite]==0.12.0' python bench/table_formats.py \
        --published /tmp/day/out/published [--days 30] [--s3-days 5]

Results: bench/results/table_formats.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads

START = dt.date(2026, 10, 1)


def load_tables(published: Path) -> dict[str, pl.DataFrame]:
    """``kind/table`` -> one day's frame; every frame gets a ``date`` column (records lack it)."""
    tables = {}
    for part in sorted(published.glob("*/*/date=*/part-0.parquet")):
        kind, table = part.parts[-4], part.parts[-3]
        frame = pl.read_parquet(part)
        if "date" not in frame.columns:
            frame = frame.with_columns(pl.lit(part.parent.name[5:]).str.to_date().alias("date"))
        tables[f"{kind}/{table}"] = frame
    return tables


def dated(frame: pl.DataFrame, day: dt.date, extra: bool = False) -> pa.Table:
    out = frame.with_columns(pl.lit(day).alias("date"))
    if extra:
        out = out.with_columns(pl.lit("v2").alias("added_col"))
    return out.to_arrow()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def tree(root: Path) -> dict[str, int]:
    """Data files (Parquet), other files (logs, metadata, manifests) and all bytes under root."""
    files = [p for p in root.rglob("*") if p.is_file()]
    data = [p for p in files if p.suffix == ".parquet"]
    return {
        "data_files": len(data),
        "meta_files": len(files) - len(data),
        "bytes": sum(p.stat().st_size for p in files),
    }


# ------------------------------------------------------------------------------------ Delta
class Delta:
    name = "delta"

    def __init__(self, root: str, storage: dict[str, str] | None = None) -> None:
        self.root, self.storage = root, storage

    def uri(self, table: str) -> str:
        return f"{self.root}/{table}"

    def publish(self, tables: dict[str, pa.Table], day: dt.date) -> dict[str, int]:
        from deltalake import DeltaTable, write_deltalake

        versions = {}
        for name, data in tables.items():
            uri = self.uri(name)
            if self.exists(uri):
                write_deltalake(
                    uri,
                    data,
                    mode="overwrite",
                    predicate=f"date = '{day.isoformat()}'",
                    schema_mode="merge",
                    storage_options=self.storage,
                )
            else:
                write_deltalake(uri, data, mode="error", storage_options=self.storage)
            versions[name] = DeltaTable(uri, storage_options=self.storage).version()
        return versions

    def exists(self, uri: str) -> bool:
        """Not ``DeltaTable.is_deltatable``: against the moto server it hangs (180 s, retries)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            DeltaTable(uri, storage_options=self.storage)
        except TableNotFoundError:
            return False
        return True

    def read_polars(self, table: str) -> pl.DataFrame:
        return pl.scan_delta(self.uri(table), storage_options=self.storage).collect()

    def read_pyarrow(self, table: str) -> pa.Table:
        from deltalake import DeltaTable

        return DeltaTable(self.uri(table), storage_options=self.storage).to_pyarrow_table()

    def read_pyarrow_files(self, table: str) -> pa.Table:
        """pyarrow alone, on the files the current version lists (what the catalog does)."""
        from deltalake import DeltaTable

        files = DeltaTable(self.uri(table), storage_options=self.storage).file_uris()
        return pads.dataset(files, format="parquet").to_table()

    def read_duckdb(self, table: str) -> int:
        from deltalake import DeltaTable

        ds = DeltaTable(self.uri(table), storage_options=self.storage).to_pyarrow_dataset()
        con = duckdb.connect()
        con.register("t", ds)
        return con.execute("select count(*) from t").fetchone()[0]

    def delete(self, table: str, predicate: str) -> dict[str, Any]:
        from deltalake import DeltaTable

        return DeltaTable(self.uri(table), storage_options=self.storage).delete(predicate)

    def expire(self, table: str) -> int:
        from deltalake import DeltaTable

        t = DeltaTable(self.uri(table), storage_options=self.storage)
        removed = t.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        t.cleanup_metadata()
        return len(removed)


# ---------------------------------------------------------------------------------- Iceberg
class Iceberg:
    name = "iceberg"

    def __init__(
        self,
        root: str,
        props: dict[str, str] | None = None,
        db: Path | None = None,
        polars_options: dict[str, str] | None = None,
    ) -> None:
        from pyiceberg.catalog.sql import SqlCatalog

        self.root, self.polars_options = root, polars_options
        db = db or Path(tempfile.mkdtemp()) / "catalog.db"
        self.catalog = SqlCatalog("bench", uri=f"sqlite:///{db}", warehouse=root, **(props or {}))
        self.catalog.create_namespace_if_not_exists("stats")
        self.catalog.create_namespace_if_not_exists("anonymized")

    def ident(self, table: str) -> str:
        return table.replace("/", ".")

    def publish(self, tables: dict[str, pa.Table], day: dt.date) -> dict[str, int]:
        from pyiceberg.expressions import EqualTo

        snaps = {}
        for name, data in tables.items():
            ident = self.ident(name)
            if not self.catalog.table_exists(ident):
                t = self.catalog.create_table(ident, schema=data.schema)
                t.append(data)
            else:
                t = self.catalog.load_table(ident)
                have = set(t.schema().column_names)
                if set(data.column_names) - have:
                    with t.update_schema() as upd:
                        upd.union_by_name(data.schema)
                    t = self.catalog.load_table(ident)
                t.overwrite(data, overwrite_filter=EqualTo("date", day.isoformat()))
            snaps[name] = self.catalog.load_table(ident).current_snapshot().snapshot_id
        return snaps

    def read_polars(self, table: str) -> pl.DataFrame:
        # Polars reads the files itself: pyiceberg's S3 settings do not reach it (without
        # storage_options it goes to AWS, not to the catalog's endpoint)
        table_ = self.catalog.load_table(self.ident(table))
        return pl.scan_iceberg(table_, storage_options=self.polars_options).collect()

    def read_pyarrow(self, table: str) -> pa.Table:
        return self.catalog.load_table(self.ident(table)).scan().to_arrow()

    def read_pyarrow_files(self, table: str) -> pa.Table:
        t = self.catalog.load_table(self.ident(table))
        files = [task.file.file_path for task in t.scan().plan_files()]
        return pads.dataset([f.removeprefix("file://") for f in files], format="parquet").to_table()

    def read_duckdb(self, table: str) -> int:
        con = self.catalog.load_table(self.ident(table)).scan().to_duckdb("t")
        return con.execute("select count(*) from t").fetchone()[0]

    def delete(self, table: str, predicate: str) -> dict[str, Any]:
        t = self.catalog.load_table(self.ident(table))
        t.delete(predicate)
        return {"snapshot": self.catalog.load_table(self.ident(table)).current_snapshot().summary}

    def expire(self, table: str) -> int:
        t = self.catalog.load_table(self.ident(table))
        now = int(time.time() * 1000) + 1
        t.maintenance.expire_snapshots().older_than(
            dt.datetime.fromtimestamp(now / 1000, tz=dt.UTC)
        ).commit()
        return -1  # pyiceberg removes snapshots from metadata; it deletes no files itself


# -------------------------------------------------------------------------------- the runs
def run_format(
    fmt: Any, tables: dict[str, pl.DataFrame], days: int, local_root: Path | None
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    pub = []
    for i in range(days):
        day = START + dt.timedelta(days=i)
        arrow = {n: dated(f, day) for n, f in tables.items()}
        pub.append(timed(lambda arrow=arrow, day=day: fmt.publish(arrow, day))[0])
    res["publish_day_median_s"] = round(statistics.median(pub), 3)
    res["publish_day_max_s"] = round(max(pub), 3)
    day = START + dt.timedelta(days=days // 2)
    rerun = [timed(lambda: fmt.publish({n: dated(f, day) for n, f in tables.items()}, day))[0]]
    res["rerun_day_s"] = round(rerun[0], 3)
    rec = "anonymized/page_views"
    expect = tables[rec].height * days
    for reader in ("read_polars", "read_pyarrow", "read_pyarrow_files", "read_duckdb"):
        secs, got = timed(lambda reader=reader: getattr(fmt, reader)(rec))
        n = got if isinstance(got, int) else got.shape[0] if hasattr(got, "shape") else got.num_rows
        res[f"{reader}_records_s"] = round(secs, 3)
        res[f"{reader}_rows_ok"] = n == expect
    if local_root is not None:
        res["files_bytes"] = tree(local_root)
    # delete one day's rows of the record table (the shape of a rights erasure by predicate)
    target = (START + dt.timedelta(days=1)).isoformat()
    secs, _ = timed(lambda: fmt.delete(rec, f"date = '{target}'"))
    res["delete_day_s"] = round(secs, 3)
    res["rows_after_delete_ok"] = fmt.read_polars(rec).height == expect - tables[rec].height
    if local_root is not None:
        res["before_expire"] = tree(local_root)
    secs, removed = timed(lambda: sum(fmt.expire(n) for n in tables))
    res["expire_all_s"] = round(secs, 3)
    res["expire_removed_files"] = removed
    if local_root is not None:
        res["after_expire"] = tree(local_root)
    # additive column on a new date: visible to every reader, null on older dates?
    new_day = START + dt.timedelta(days=days)
    fmt.publish({rec: dated(tables[rec], new_day, extra=True)}, new_day)
    pl_frame = fmt.read_polars(rec)
    pa_table = fmt.read_pyarrow(rec)
    res["added_col_polars"] = (
        "added_col" in pl_frame.columns and pl_frame["added_col"].null_count() > 0
    )
    res["added_col_pyarrow"] = "added_col" in pa_table.column_names
    try:
        files = fmt.read_pyarrow_files(rec)
        res["added_col_pyarrow_files_first_schema"] = "added_col" in files.column_names
    except Exception as exc:  # pyarrow's dataset takes the first file's schema by default
        res["added_col_pyarrow_files_first_schema"] = type(exc).__name__
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_run(tables: dict[str, pl.DataFrame], days: int) -> dict[str, dict[str, Any]]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    out: dict[str, dict[str, Any]] = {}
    try:
        delta = Delta(
            "s3://bench/delta",
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ALLOW_HTTP": "true",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "conditional_put": "etag",
            },
        )
        ice = Iceberg(
            "s3://bench/iceberg",
            {
                "s3.endpoint": endpoint,
                "s3.access-key-id": "bench",
                "s3.secret-access-key": "bench",
                "s3.region": "us-east-1",
            },
            polars_options={
                "aws_endpoint_url": endpoint,
                "aws_allow_http": "true",
                "aws_region": "us-east-1",
            },
        )
        for fmt in (delta, ice):
            try:
                pub = []
                for i in range(days):
                    day = START + dt.timedelta(days=i)
                    arrow = {n: dated(f, day) for n, f in tables.items()}
                    pub.append(
                        timed(lambda arrow=arrow, day=day, fmt=fmt: fmt.publish(arrow, day))[0]
                    )
                secs, frame = timed(lambda fmt=fmt: fmt.read_polars("anonymized/page_views"))
                out[fmt.name] = {
                    "publish_day_median_s": round(statistics.median(pub), 3),
                    "read_polars_records_s": round(secs, 3),
                    "rows_ok": frame.height == tables["anonymized/page_views"].height * days,
                    "delete_day_s": round(
                        timed(
                            lambda fmt=fmt: fmt.delete(
                                "anonymized/page_views", f"date = '{START.isoformat()}'"
                            )
                        )[0],
                        3,
                    ),
                }
            except Exception as exc:
                out[fmt.name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    finally:
        server.stop()
    return out


def portable(tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """Publish 2 days, move the folder (and for Iceberg its catalog DB), read at the new place."""
    got = {}
    base = Path(tempfile.mkdtemp())
    d = Delta(str(base / "delta"))
    for i in range(2):
        day = START + dt.timedelta(days=i)
        d.publish({n: dated(f, day) for n, f in tables.items()}, day)
    shutil.move(str(base / "delta"), str(base / "moved_delta"))
    try:
        got["delta"] = (
            pl.scan_delta(str(base / "moved_delta/stats/daily_active_users")).collect().height > 0
        )
    except Exception as exc:
        got["delta"] = type(exc).__name__
    db = base / "ice.db"
    ice = Iceberg(str(base / "ice"), db=db)
    for i in range(2):
        day = START + dt.timedelta(days=i)
        ice.publish({n: dated(f, day) for n, f in tables.items()}, day)
    shutil.move(str(base / "ice"), str(base / "moved_ice"))
    try:
        from pyiceberg.catalog.sql import SqlCatalog

        cat = SqlCatalog("bench", uri=f"sqlite:///{db}", warehouse=str(base / "moved_ice"))
        got["iceberg"] = cat.load_table("stats.daily_active_users").scan().to_arrow().num_rows > 0
    except Exception as exc:
        got["iceberg"] = type(exc).__name__
    shutil.rmtree(base, ignore_errors=True)
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--published", type=Path, required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--s3-days", type=int, default=5)
    args = ap.parse_args()
    tables = load_tables(args.published)
    import deltalake
    import pyiceberg

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"load before {os.getloadavg()[0]:.1f}"
    )
    print(
        f"deltalake {deltalake.__version__}, pyiceberg {pyiceberg.__version__}, "
        f"polars {pl.__version__}, duckdb {duckdb.__version__}, pyarrow {pa.__version__}"
    )
    print("tables of one day: " + ", ".join(f"{n} {f.height}" for n, f in tables.items()))
    for cls in (Delta, Iceberg):
        root = Path(tempfile.mkdtemp()) / cls.name
        fmt = cls(str(root))
        res = run_format(fmt, tables, args.days, root)
        print(f"{cls.name} local, {args.days} days: {res}")
        shutil.rmtree(root.parent, ignore_errors=True)
    print(f"s3 (moto server), {args.s3_days} days: {s3_run(tables, args.s3_days)}")
    print(f"folder moved, still readable: {portable(tables)}")
    print(f"load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
