"""Read landing files (DESIGN §3) into typed Parquet, quarantining every malformed line with a reason.

Why DuckDB for the parsing: a landing file may hold invalid UTF-8, broken JSON, arrays instead of
objects, numbers where strings belong and impossible timestamps, all mixed with good lines. Polars'
JSON reader fails a whole file on the first bad line; DuckDB's ``json_valid`` / ``json_type`` /
``TRY_CAST`` judge each line in one vectorized pass, so bad lines are set aside with a reason and
good lines keep flowing. The types come from the policy (the contract), never from inference.

Each landing file is processed on its own, so memory is bounded by the largest file, not the day.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from anonymize.policy import ColumnPolicy, SourcePolicy

LANDING_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv", ".csv.gz", ".parquet")

_TS_SHAPE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$"

POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
}


@dataclass
class ExtractCounts:
    """Row accounting for one source and date (DESIGN §1.3)."""

    input: int = 0
    kept: int = 0
    quarantined: int = 0
    files: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def landing_files(landing: Path, source: str, day: str) -> list[Path]:
    """Landing files of one source and date, sorted for a deterministic order."""
    part = Path(landing) / source / f"date={day}"
    if not part.is_dir():
        return []
    return sorted(p for p in part.iterdir() if p.is_file() and p.name.endswith(LANDING_SUFFIXES))


def _read_lines(path: Path) -> pa.Table:
    """Raw lines of a JSON Lines file as binary (invalid UTF-8 must survive to be quarantined)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    line_no = pa.array(range(1, len(lines) + 1), pa.int64())
    table = pa.table({"_line": line_no, "_raw": pa.array(lines, pa.binary())})
    # Blank lines are not records (a trailing newline leaves one); they are neither input nor kept.
    return table.filter(pa.compute.greater(pa.compute.binary_length(table["_raw"]), 0))


def _sql_str(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _typed_sql(
    name: str, col: ColumnPolicy, src: str, require_offset: bool = True
) -> tuple[str, str]:
    """(typed value expression, failure condition) for one column, given its raw text ``src``."""
    t = col.type
    if t == "string":
        return src, "FALSE"
    if t == "int":
        expr = f"TRY_CAST({src} AS BIGINT)"
    elif t == "float":
        expr = f"TRY_CAST({src} AS DOUBLE)"
    elif t == "bool":
        expr = (
            f"CASE lower({src}) WHEN 'true' THEN TRUE WHEN '1' THEN TRUE "
            f"WHEN 'false' THEN FALSE WHEN '0' THEN FALSE END"
        )
    elif t == "timestamp":
        shape = _TS_SHAPE if require_offset else _TS_SHAPE.replace(")$", ")?$")
        expr = f"CASE WHEN regexp_matches({src}, '{shape}') THEN TRY_CAST({src} AS TIMESTAMPTZ) END"
    elif t == "date":
        expr = f"TRY_CAST({src} AS DATE)"
    else:  # pragma: no cover - the policy model restricts types
        raise ValueError(t)
    return expr, f"({src} IS NOT NULL AND {expr} IS NULL)"


def _validation_sql(
    policy: SourcePolicy, from_sql: str, json_mode: bool, require_offset: bool = True
) -> str:
    """One SELECT that types every column and names the first problem of each line."""
    selects: list[str] = ["_line"]
    reasons: list[tuple[str, str]] = []
    if json_mode:
        reasons += [
            ("_utf8 IS NULL", "invalid UTF-8"),
            ("NOT _valid", "malformed JSON"),
            ("json_type(_j) <> 'OBJECT'", "not a JSON object"),
        ]
    for name, col in policy.columns.items():
        q = _sql_str(name)
        if json_mode:
            path = "'$." + name.replace("'", "''") + "'"
            raw = f"json_extract_string(_j, {path})"
            jt = f"json_type(_j, {path})"
            reasons.append((f"{jt} IN ('OBJECT', 'ARRAY')", f"field {name}: wrong type"))
        else:
            raw = f"CAST({q} AS VARCHAR)"
        typed, bad = _typed_sql(name, col, raw, require_offset)
        if col.required:
            reasons.append((f"{raw} IS NULL", f"missing required field {name}"))
        reasons.append((bad, f"field {name}: not a valid {col.type}"))
        if col.allowed is not None:
            allowed = ", ".join("'" + a.replace("'", "''") + "'" for a in col.allowed)
            reasons.append((f"{raw} NOT IN ({allowed})", f"field {name}: value not allowed"))
        if col.min is not None:
            reasons.append((f"{typed} < {col.min}", f"field {name}: below minimum"))
        if col.max is not None:
            reasons.append((f"{typed} > {col.max}", f"field {name}: above maximum"))
        selects.append(f"{typed} AS {q}")
    case = " ".join(f"WHEN {cond} THEN '{why}'" for cond, why in reasons)
    selects.append(f"CASE {case} END AS _reason")
    return f"SELECT {', '.join(selects)} FROM {from_sql}"


def _check_keys(con: duckdb.DuckDBPyConnection, policy: SourcePolicy, path: Path) -> None:
    keys = con.sql(
        "SELECT DISTINCT unnest(json_keys(_j)) AS k FROM parsed "
        "WHERE _valid AND json_type(_j) = 'OBJECT'"
    ).fetchall()
    policy.check_columns([k for (k,) in keys], where=path.name)


def read_landing_file(path: Path, policy: SourcePolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse one landing file into (typed good rows, quarantined rows with ``reason``).

    Quarantined rows keep the raw line (binary, exactly as received) so that an operator can
    repair and replay them; the quarantine folder is access-restricted like the landing zone.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        lines = _read_lines(path)
        con.register("lines", lines)
        con.execute(
            "CREATE TEMP TABLE parsed AS "
            "WITH d AS (SELECT _line, _raw, TRY(decode(_raw)) AS _utf8 FROM lines) "
            "SELECT _line, _raw, _utf8, coalesce(json_valid(_utf8), FALSE) AS _valid, "
            "CASE WHEN json_valid(_utf8) THEN _utf8::JSON END AS _j FROM d"
        )
        _check_keys(con, policy, path)
        sql = _validation_sql(policy, "parsed", json_mode=True)
        raw_sql = "SELECT _line, _raw FROM parsed"
    else:
        reader = (
            f"read_parquet('{path}', hive_partitioning = false)"
            if name.endswith(".parquet")
            else f"read_csv('{path}', all_varchar = true, header = true, hive_partitioning = false)"
        )
        con.execute(
            f"CREATE TEMP TABLE parsed AS SELECT row_number() OVER () AS _line, * FROM {reader}"
        )
        cols = [c for c in con.table("parsed").columns if c != "_line"]
        policy.check_columns(cols, where=name)
        for missing in set(policy.columns) - set(cols):
            con.execute(f"ALTER TABLE parsed ADD COLUMN {_sql_str(missing)} VARCHAR")
        sql = _validation_sql(policy, "parsed", json_mode=False)
        pack = ", ".join(_sql_str(c) for c in cols)
        raw_sql = f"SELECT _line, CAST(to_json(struct_pack({pack})) AS BLOB) AS _raw FROM parsed"
    return _split(con, sql, raw_sql, policy, name)


def _split(
    con: duckdb.DuckDBPyConnection, sql: str, raw_sql: str, policy: SourcePolicy, name: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    checked = con.sql(sql).pl()
    good = checked.filter(pl.col("_reason").is_null()).drop("_reason")
    good = good.select([pl.col(c).cast(POLARS_TYPES[p.type]) for c, p in policy.columns.items()])
    bad = checked.filter(pl.col("_reason").is_not_null()).select("_line", "_reason")
    if bad.height:
        raws = con.sql(raw_sql).pl()
        bad = bad.join(raws, on="_line", how="left").select(
            pl.lit(name).alias("file"),
            pl.col("_line").alias("line"),
            pl.col("_reason").alias("reason"),
            pl.col("_raw").alias("raw"),
        )
    else:
        bad = empty_quarantine()
    con.close()
    return good, bad


def type_records(
    records: pl.DataFrame, policy: SourcePolicy, name: str, require_offset: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type a frame of text columns (e.g. rows read from the operational DB) by the policy.

    The same checks as for landing files apply; ``require_offset=False`` accepts timestamps
    without an offset as UTC (how SQLite and most ORMs store them).
    """
    policy.check_columns(records.columns, where=name)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    text = records.select(pl.all().cast(pl.String)).with_row_index("_line", offset=1)
    text = text.with_columns(pl.col("_line").cast(pl.Int64))
    for missing in set(policy.columns) - set(records.columns):
        text = text.with_columns(pl.lit(None, dtype=pl.String).alias(missing))
    con.register("parsed", text.to_arrow())
    sql = _validation_sql(policy, "parsed", json_mode=False, require_offset=require_offset)
    pack = ", ".join(_sql_str(c) for c in records.columns) or "x := NULL"
    raw_sql = f"SELECT _line, CAST(to_json(struct_pack({pack})) AS BLOB) AS _raw FROM parsed"
    return _split(con, sql, raw_sql, policy, name)


def empty_quarantine() -> pl.DataFrame:
    """The quarantine schema with no rows."""
    return pl.DataFrame(
        schema={"file": pl.String, "line": pl.Int64, "reason": pl.String, "raw": pl.Binary}
    )


def iter_source(
    landing: Path, source: str, day: str, policy: SourcePolicy
) -> Iterator[tuple[Path, pl.DataFrame, pl.DataFrame]]:
    """Yield (file, good, quarantined) per landing file of a source and date."""
    for path in landing_files(landing, source, day):
        good, bad = read_landing_file(path, policy)
        yield path, good, bad


def empty_frame(policy: SourcePolicy) -> pl.DataFrame:
    """A typed frame with the policy's columns and no rows (a source with no files that day)."""
    return pl.DataFrame(schema={c: POLARS_TYPES[p.type] for c, p in policy.columns.items()})
