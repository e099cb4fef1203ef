"""DuckDB's ``read_json`` as the one parse of a landing file, against the typed read's query.

    uv run python bench/read_json_probe.py [--landing /tmp/scale/landing] [--part 0] [--rounds 2]

Why: the typed read (``tokumei.ingest.sources``) parses each JSON line three times (validity,
extraction, keys; bench/results/scale.md, sessions 14-16). ``read_json`` parses once. This
probe answers two questions on one events file of a generated landing, before any code
changes: what ``read_json`` costs (CPU seconds, one thread, all policy columns as ``VARCHAR``,
``ignore_errors``), and whether it gives, line by line, the same text per column as the
query's ``json_extract_string`` on every valid object with known keys, and all-null rows
exactly where a line is not a valid JSON object. It also times the route tokumei could take,
each decompressed chunk handed to ``read_json`` from memory.

The decompressed file goes to a temporary directory that is removed at the end: generated
(synthetic) data only. tokumei itself never writes raw lines to disk.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from tokumei.anonymize.policy import SourcePolicy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    """Print ``read_json``'s CPU seconds and its agreement with the typed read's extraction."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--part", type=int, default=0, help="which events file (sorted), 0-based")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import polars as pl
    from ingest_stages import _cpu  # this process's user + system CPU seconds

    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.ingest import sources as S

    sp = load_policy(default_policy_dir()).source("events")
    names = list(sp.readable().columns)
    part = sorted((args.landing / "events").rglob("*.jsonl*"))[args.part]
    as_text = "{" + ", ".join(f"{S._sql_lit(n)}: 'VARCHAR'" for n in names) + "}"
    con = S._connect()
    con.execute("SET threads = 1")
    tmp = Path(tempfile.mkdtemp(prefix="tokumei-probe-"))
    try:
        plain = tmp / "part.jsonl"
        with plain.open("wb") as out:
            for chunk in S._chunks(part):
                out.write(chunk)
        reader = (
            f"read_json({S._sql_lit(str(plain))}, format = 'newline_delimited', "
            f"columns = {as_text}, ignore_errors = true)"
        )
        chunks = list(S._chunks(part))
        as_dict = dict.fromkeys(names, "VARCHAR")
        for n in range(args.rounds):
            c = _cpu()
            rows = con.sql(f"SELECT * FROM {reader}").to_arrow_table().num_rows
            from_file = _cpu() - c
            # the route tokumei could take (no raw line on disk): each chunk from memory
            c = _cpu()
            in_memory = sum(
                con.read_json(
                    io.BytesIO(chunk),
                    format="newline_delimited",
                    columns=as_dict,
                    ignore_errors=True,
                )
                .to_arrow_table()
                .num_rows
                for chunk in chunks
            )
            print(
                f"round {n}: read_json from the file {from_file:.2f} CPU-s ({rows:,} rows), "
                f"chunks from memory (io.BytesIO) {_cpu() - c:.2f} CPU-s ({in_memory:,} rows)",
                flush=True,
            )
        del chunks
        fast = (
            con.sql(f"SELECT * FROM {reader}")
            .pl()
            .with_row_index("_line", offset=1)
            .with_columns(pl.col("_line").cast(pl.Int64))
        )
        ours = _extracted(con, sp, part)
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    both = ours.join(fast, on="_line", how="left")
    objects = both.filter(pl.col("_obj") & pl.col("_known"))
    print(f"lines {ours.height:,}; read_json rows {fast.height:,}")
    print(f"valid objects with known keys: {objects.height:,}")
    for i, name in enumerate(names):
        differ = objects.filter(~pl.col(f"_v{i}").eq_missing(pl.col(name))).height
        print(f"  {name}: {differ:,} lines differ")
    other = both.filter(~pl.col("_obj"))
    all_null = other.filter(pl.all_horizontal(pl.col(n).is_null() for n in names)).height
    rows_null = fast.filter(pl.all_horizontal(pl.col(n).is_null() for n in names)).height
    print(
        f"not valid JSON objects: {other.height:,}, all-null in read_json: {all_null:,}; "
        f"all-null rows in read_json: {rows_null:,}"
    )


def parsed_select(sp: SourcePolicy) -> str:
    """The typed read's query cut before typing (its inner ``parsed`` relation, over the
    registered ``lines``): ``_line``, ``_obj``, ``_known`` and the extracted ``_v<i>``."""
    from tokumei.ingest import sources as S

    sql = S._json_sql(sp)
    inner = sql[sql.index("(WITH d AS") : sql.index(") AS parsed") + len(") AS parsed")]
    values = ", ".join(f'"_v{i}"' for i in range(len(sp.readable().columns)))
    return f"SELECT _line, _obj, _known, {values} FROM {inner}"


def _extracted(con: duckdb.DuckDBPyConnection, sp: SourcePolicy, part: Path) -> pl.DataFrame:
    """:func:`parsed_select` over every line of ``part``."""
    import polars as pl

    from tokumei.ingest import sources as S

    select = parsed_select(sp)
    frames = []
    first = 1
    for data in S._chunks(part):
        lines = S._split_lines(data, first)
        first += len(lines.sizes)
        con.register("lines", lines.table)
        frames.append(con.sql(select).pl())
        con.unregister("lines")
    return pl.concat(frames)


if __name__ == "__main__":
    main()
