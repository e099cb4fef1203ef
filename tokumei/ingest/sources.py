"""Read landing files (docs/architecture.md §3) into typed Parquet, quarantining every malformed line with a reason.

Why DuckDB for the parsing: a landing file may hold invalid UTF-8, broken JSON, arrays instead of
objects, numbers where strings belong and impossible timestamps, all mixed with good lines. Polars'
JSON reader fails a whole file on the first bad line; DuckDB's ``json_valid`` / ``json_type`` /
``TRY_CAST`` judge each line in one vectorized pass, so bad lines are set aside with a reason and
good lines keep flowing. The types come from the policy (the contract), never from inference.

Why the JSON Lines path looks the way it does (issue 6, 10M events a day): every copy of a line
and every JSON parse costs seconds per million lines. So the decompressed bytes are read in
bounded chunks (:data:`CHUNK_BYTES`), split with numpy and handed to DuckDB *zero-copy* as one
Arrow binary column (no Python object per line), and one streaming SELECT (no temp table)
decodes, validates and parses each line a fixed, small number of times: ``json_valid``, one
``json_extract_string`` with the list of all policy paths, one ``json_keys`` for the unknown-column
rule, and ``json_type`` only on the rare lines where a value looks like an object or array. Memory
is bounded by a chunk plus the typed result, not by the file.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
from isal import igzip

from tokumei.anonymize.policy import NOT_READ_ROLES, ColumnPolicy, SourcePolicy
from tokumei.ingest import jsonl_native
from tokumei.ingest.landing import DATA_SUFFIXES, is_data_file

LANDING_SUFFIXES = DATA_SUFFIXES

#: Decompressed bytes parsed per DuckDB query. Bounds extraction memory (the chunk, its Arrow view
#: and DuckDB's streaming buffers) independently of the file size; 128 MiB is ~230k event lines,
#: large enough that per-query overhead is negligible.
CHUNK_BYTES = 128 * 1024 * 1024

#: DuckDB limits per connection. The JSON query streams and needs little memory; the limit keeps
#: a pathological file (or a large CSV, which is loaded into a temp table) from growing without
#: bound. Spilling is switched off: DuckDB's default spill directory is ``./.tmp``, and spilled
#: pages would be raw landing data outside the landing zone and the run's work directory
#: (docs/architecture.md §1), so an over-limit file fails instead. Threads: the machine's cores, at most 4.
DUCKDB_MEMORY_LIMIT = "2GB"
DUCKDB_THREADS = min(os.cpu_count() or 1, 4)

#: Decompressed bytes per read call (Arrow's gzip stream is cheapest with ~1 MiB reads).
_READ_STEP = 1 << 20

#: Bytes scanned per numpy comparison when looking for newlines (cache-sized; a single comparison
#: over a whole chunk would allocate a bool array as large as the chunk).
_SCAN_STEP = 1 << 22

#: JSON whitespace, for "is the top-level value an object" without a second parse.
_JSON_WS = "' ' || chr(9) || chr(10) || chr(13)"

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
    """Row accounting for one source and date (docs/architecture.md §1.3)."""

    input: int = 0
    kept: int = 0
    quarantined: int = 0
    files: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def landing_files(landing: Path, source: str, day: str) -> list[Path]:
    """Landing files of one source and date, sorted for a deterministic order.

    The producer's own files (``_SUCCESS.json``, names starting with ``_`` or ``.``) are not
    data (docs/landing.md), though ``.json`` is a landing suffix.
    """
    part = Path(landing) / source / f"date={day}"
    if not part.is_dir():
        return []
    return sorted(p for p in part.iterdir() if p.is_file() and is_data_file(p.name))


def _connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with bounded memory and threads, timestamps in UTC."""
    con = duckdb.connect(
        config={
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "threads": DUCKDB_THREADS,
            "temp_directory": "",
        },
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def _open(path: Path) -> BinaryIO | pa.NativeFile:
    """The file's decompressed byte stream.

    ISA-L's inflate (``isal.igzip``: concatenated members included, the GIL released while it
    inflates) reads a 550 MB part in 0.51 CPU-s, Arrow's zlib stream in 1.25 and Python's
    ``gzip`` in 1.7 (1 MiB pieces; bench/results/scale.md, session 11).
    """
    if path.name.endswith(".gz"):
        return igzip.open(path, "rb")
    return pa.OSFile(str(path))


def _read_block(fh: BinaryIO | pa.NativeFile, size: int) -> bytes:
    """About ``size`` decompressed bytes (fewer only at the end of the file)."""
    pieces: list[bytes] = []
    got = 0
    while got < size:
        piece = fh.read(min(_READ_STEP, size - got))
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _fill(fh: BinaryIO | pa.NativeFile, into: memoryview) -> int:
    """Read into ``into`` until it is full or the stream ends; the number of bytes read."""
    got = 0
    while got < len(into):
        n = fh.readinto(into[got : got + _READ_STEP])
        if not n:
            break
        got += n
    return got


def _last_newline(data: np.ndarray) -> int:
    """Index of the last ``\\n`` in ``data``, or -1 (looked for from the end, a window at a
    time: a chunk's last newline is within one line of its end)."""
    end = len(data)
    while end > 0:
        start = max(0, end - _SCAN_STEP)
        found = np.flatnonzero(data[start:end] == 10)
        if len(found):
            return start + int(found[-1])
        end = start
    return -1


def _chunks(path: Path, chunk_bytes: int | None = None) -> Iterator[memoryview]:
    """Decompressed content of ``path`` in pieces of about ``chunk_bytes`` that end at a newline.

    A line is never split across pieces (the tail after the last newline is carried over), so
    each piece can be typed on its own. Each piece is decompressed straight into a buffer of its
    own and handed on as a memoryview: reading 1 MiB pieces, joining them and prepending the
    carried tail copied every byte twice, 1.13 against 0.47 CPU-s for a 550 MB part
    (bench/results/scale.md, session 15).
    """
    size = chunk_bytes or CHUNK_BYTES  # read at call time, so tests can shrink it
    carry = np.empty(0, np.uint8)
    with _open(path) as fh:
        while True:
            buf = np.empty(len(carry) + size, np.uint8)
            buf[: len(carry)] = carry
            try:
                got = _fill(fh, memoryview(buf)[len(carry) :])
            except EOFError as exc:  # ISA-L's word for a cut gzip stream; an OSError as before
                raise OSError(f"{path.name}: truncated compressed stream") from exc
            if not got:
                break
            data = buf[: len(carry) + got]
            cut = _last_newline(data) + 1
            if cut == 0:  # one line longer than a chunk: keep reading
                carry = data
                continue
            carry = data[cut:]  # copied to the front of the next buffer
            yield memoryview(data[:cut])
    if len(carry):
        yield memoryview(carry)


def _prefetch(chunks: Iterator[memoryview]) -> Iterator[memoryview]:
    """Produce ``chunks`` one item ahead in a thread.

    zlib (and file reads) release the GIL, so the next chunk decompresses on one core while
    DuckDB types the current one; decompression is ~20 % of extraction when done in series.
    At most two chunks (plus the one being filled) are alive at once.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="tokumei-read") as pool:
        ahead = pool.submit(next, chunks, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, chunks, None)
            yield item


def _int64(values: np.ndarray) -> pa.Array:
    """A numpy int64 array as Arrow without copying (``pa.array`` takes a slow path here)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


@dataclass
class _Lines:
    """The lines of one chunk: an Arrow table for DuckDB plus where each line's bytes are."""

    table: pa.Table  # _line (1-based number in the file), _n (bytes without "\n"), _raw
    starts: np.ndarray  # byte offset of each line in ``data``
    sizes: np.ndarray  # length of each line without its newline
    data: memoryview
    first: int  # number of the chunk's first line

    def raw(self, line: int) -> bytes:
        """The line exactly as received (without its newline)."""
        i = line - self.first
        s = int(self.starts[i])
        return bytes(self.data[s : s + int(self.sizes[i])])


def _split_lines(data: memoryview, first: int) -> _Lines:
    """Split a chunk into lines with numpy; the Arrow column points into ``data`` (no copy).

    Arrow offsets must be contiguous, so each value keeps its trailing newline (JSON whitespace:
    it changes no verdict); ``_n`` is the length without it and ``raw`` cuts it off again.
    """
    buf = np.frombuffer(data, np.uint8)
    found = [
        np.flatnonzero(buf[i : i + _SCAN_STEP] == 10) + i for i in range(0, len(buf), _SCAN_STEP)
    ]
    nl = np.concatenate(found) if found else np.empty(0, np.int64)
    ends = nl + 1
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    offsets = np.zeros(len(ends) + 1, np.int64)
    offsets[1:] = ends
    sizes = np.diff(offsets) - (buf[ends - 1] == 10 if len(ends) else 0)
    raw = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    numbers = np.arange(first, first + len(ends), dtype=np.int64)
    table = pa.table({"_line": _int64(numbers), "_n": _int64(sizes), "_raw": raw})
    return _Lines(table, offsets[:-1], sizes, data, first)


def _sql_str(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _sql_lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


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
    policy: SourcePolicy,
    from_sql: str,
    raw: Callable[[int, str], str],
    pre: tuple[tuple[str, str], ...] = (),
    wrong_type: Callable[[int, str], str] | None = None,
    require_offset: bool = True,
    extra: tuple[str, ...] = (),
    text_out: bool = True,
) -> str:
    """One SELECT that types every column and names the first problem of each line.

    ``raw(i, name)`` is the SQL text of column ``name`` (policy position ``i``) before typing;
    ``pre`` are line-level checks that come first (UTF-8, JSON, object); ``wrong_type(i, name)``
    flags a JSON object or array where a scalar belongs. The order of the checks is the order
    of the reasons: the first failing one is the line's reason. ``text_out=False`` leaves the
    ``string`` columns out of the result (they are checked, and typing leaves them as they are).
    """
    typed_cols: list[str] = []
    selects: list[str] = ["_line", *extra]
    reasons: list[tuple[str, str]] = list(pre)
    for i, (name, col) in enumerate(policy.columns.items()):
        src = raw(i, name)
        expr, _ = _typed_sql(name, col, src, require_offset)
        # Typed once in the inner SELECT; the checks below read the typed column, so a
        # timestamp's regexp and cast run once per line, not once per check.
        typed = f'"_t{i}"'
        typed_cols.append(f"{expr} AS {typed}")
        if wrong_type is not None:
            reasons.append((wrong_type(i, name), f"field {name}: wrong type"))
        if col.required:
            reasons.append((f"{src} IS NULL", f"missing required field {name}"))
        if col.type != "string":
            bad = f"({src} IS NOT NULL AND {typed} IS NULL)"
            reasons.append((bad, f"field {name}: not a valid {col.type}"))
        if col.allowed is not None:
            allowed = ", ".join(_sql_lit(a) for a in col.allowed)
            reasons.append((f"{src} NOT IN ({allowed})", f"field {name}: value not allowed"))
        if col.min is not None:
            reasons.append((f"{typed} < {col.min}", f"field {name}: below minimum"))
        if col.max is not None:
            reasons.append((f"{typed} > {col.max}", f"field {name}: above maximum"))
        if text_out or col.type != "string":
            selects.append(f"{typed} AS {_sql_str(name)}")
    case = " ".join(f"WHEN {cond} THEN {_sql_lit(why)}" for cond, why in reasons)
    selects.append(f"CASE {case} END AS _reason" if reasons else "NULL::VARCHAR AS _reason")
    inner = f"(SELECT *{''.join(', ' + t for t in typed_cols)} FROM {from_sql}) AS typed"
    return f"SELECT {', '.join(selects)} FROM {inner}"


def _json_sql(policy: SourcePolicy) -> str:
    """The streaming SELECT over the registered ``lines`` table of one JSON Lines chunk.

    Each line is decoded once and parsed by ``json_valid``, one ``json_extract_string`` over all
    policy paths and one ``json_keys``. Measured per 1M lines (one thread), each of those is
    ~0.5-0.8 s of CPU, so everything else avoids parsing: whether the top level is an object is read
    from its first non-blank character (exact for valid JSON); ``json_type`` runs only on lines
    where some extracted value starts like an object or array; and the unknown-key test compares
    the key list with the policy's columns in policy order (what exporters write) before falling
    back to the ~3x dearer ``list_has_all``. ``_known`` is FALSE on an object carrying a key the
    policy does not classify.
    """
    readable = policy.readable()  # special-care keys are allowed, but never extracted
    names = list(readable.columns)
    paths = "[" + ", ".join(_sql_lit("$." + n) for n in names) + "]"
    known = "[" + ", ".join(_sql_lit(n) for n in policy.columns) + "]::VARCHAR[]"
    values = "".join(f', _v[{i + 1}] AS "_v{i}"' for i in range(len(names)))
    nested = " OR ".join(
        f"starts_with(\"_v{i}\", '{{') OR starts_with(\"_v{i}\", '[')" for i in range(len(names))
    )
    parsed = (
        "(WITH d AS (SELECT _line, TRY(decode(_raw)) AS _u FROM lines WHERE _n > 0), "
        "v AS (SELECT _line, _u, coalesce(json_valid(_u), FALSE) AS _valid FROM d), "
        "o AS (SELECT *, _valid AND CASE WHEN starts_with(_u, '{') THEN TRUE "
        f"ELSE starts_with(ltrim(_u, {_JSON_WS}), '{{') END AS _obj FROM v), "
        f"x AS (SELECT *, CASE WHEN _obj THEN json_extract_string(_u, {paths}) END AS _v, "
        f"CASE WHEN NOT _obj THEN NULL WHEN json_keys(_u) = {known} THEN TRUE "
        f"ELSE list_has_all({known}, json_keys(_u)) END AS _known FROM o), "
        f"y AS (SELECT _line, _u, _valid, _obj, _known{values} FROM x) "
        f"SELECT *, CASE WHEN {nested or 'FALSE'} THEN json_type(_u, {paths}) END AS _ty "
        "FROM y) AS parsed"
    )
    pre = (
        ("_u IS NULL", "invalid UTF-8"),
        ("NOT _valid", "malformed JSON"),
        ("NOT _obj", "not a JSON object"),
    )
    return _validation_sql(
        readable,
        parsed,
        raw=lambda i, _: f'"_v{i}"',
        pre=pre,
        wrong_type=lambda i, _: f"coalesce(_ty[{i + 1}] IN ('OBJECT', 'ARRAY'), FALSE)",
        extra=("_known",),
    )


def _unknown_keys(con: duckdb.DuckDBPyConnection, policy: SourcePolicy, path: Path) -> None:
    """Raise :class:`UnclassifiedColumnError` naming the keys of ``lines`` outside the policy.

    Only called when the main query found such a key, so the extra parse is on the error path.
    """
    keys = con.sql(
        "SELECT DISTINCT unnest(json_keys(_u)) AS k FROM "
        "(SELECT TRY(decode(_raw)) AS _u FROM lines WHERE _n > 0) "
        f"WHERE json_valid(_u) AND starts_with(ltrim(_u, {_JSON_WS}), '{{') ORDER BY k"
    ).fetchall()
    policy.check_columns([k for (k,) in keys], where=path.name)


def _native_sql(policy: SourcePolicy) -> str:
    """The typing SELECT over the C pass's accepted lines (registered as ``fast``: ``_line`` and
    the extracted text ``_v<i>`` of each readable column).

    The line-level checks and the wrong-type check are left out: the C pass only accepts valid
    JSON objects with known keys and no nested value where one is extracted, so for these lines
    those checks are false in :func:`_json_sql` too, and the first failing check (the reason)
    is the same. The ``string`` columns are checked but not returned: typing leaves them as
    they are, so :func:`_checked_native` takes them from the C pass's buffers instead of
    copying most of a chunk's bytes out of DuckDB again (bench/results/scale.md, session 17).
    """
    return _validation_sql(policy.readable(), "fast", raw=lambda i, _: f'"_v{i}"', text_out=False)


def _checked(
    con: duckdb.DuckDBPyConnection,
    lines: pa.Table,
    sql: str,
    check: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """``sql`` over ``lines`` (registered as ``lines`` while ``check`` runs)."""
    con.register("lines", lines)
    try:
        return check(con, con.sql(sql).pl())
    finally:
        con.unregister("lines")


def _checked_native(
    con: duckdb.DuckDBPyConnection,
    lines: _Lines,
    policy: SourcePolicy,
    keys: jsonl_native.Keys,
    fast_sql: str,
    sql: str,
    check: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """A chunk through the C pass, its leftover lines through ``sql``: the frame ``sql`` alone
    gives (same columns and rows; the good rows in line order, the failing ones not:
    tests/test_jsonl_native.py)."""
    parsed = jsonl_native.parse(lines.data, lines.starts, lines.sizes, lines.first, keys)
    con.register("fast", parsed.table)
    try:
        typed = con.sql(fast_sql).pl()
    finally:
        con.unregister("fast")
    fast = pl.from_arrow(parsed.table)
    assert isinstance(fast, pl.DataFrame)
    if not typed.get_column("_line").equals(fast.get_column("_line")):
        typed = typed.sort("_line")  # a projection keeps DuckDB's insertion order; be sure
    columns = list(policy.columns)
    text = {f"_v{i}": n for i, n in enumerate(columns) if policy.columns[n].type == "string"}
    if text:
        typed = pl.concat([typed, fast.select(list(text)).rename(text)], how="horizontal")
    checked = typed.select("_line", *columns, "_reason")
    if len(parsed.rest):
        rest = _checked(con, lines.table.take(pa.array(parsed.rest)), sql, check)
        checked = pl.concat([checked, rest])
        if not rest.get_column("_reason").is_not_null().all():  # a good line among the rest
            checked = checked.sort("_line")
    return checked


def _read_chunks(
    path: Path,
    policy: SourcePolicy,
    sql: str,
    check: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame], pl.DataFrame],
    raws: Callable[[list[bytes]], list[bytes | None]],
    native: jsonl_native.Keys | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A text file (optionally gzip) chunk by chunk, so memory follows the chunk, not the file.

    Each chunk's lines go through ``sql`` in DuckDB (registered as ``lines``); ``check`` sees the
    checked frame while ``lines`` is registered (and may stop the file); failing lines go to the
    quarantine with ``raws`` made of their bytes (special-care values redacted). With
    ``native`` (JSON Lines), the C pass parses the chunk first and only the lines it leaves
    over go through ``sql``.
    """
    readable = policy.readable()
    goods: list[pl.DataFrame] = []
    bads: list[pl.DataFrame] = []
    first = 1
    con = _connect()
    fast_sql = _native_sql(policy) if native else ""
    try:
        for data in _prefetch(_chunks(path)):
            lines = _split_lines(data, first)
            first += len(lines.sizes)
            if native is None:
                checked = _checked(con, lines.table, sql, check)
            else:
                checked = _checked_native(con, lines, readable, native, fast_sql, sql, check)
            good, bad = _split_checked(checked, readable)
            bad = bad.sort("_line")  # the C pass's rejects come after its accepted lines
            del checked
            goods.append(good)
            if bad.height:
                raw = raws([lines.raw(n) for n in bad["_line"].to_list()])
                bads.append(_quarantine(bad, pl.Series("_raw", raw, pl.Binary), path.name))
            del lines, data
    finally:
        con.close()
    good = pl.concat(goods, rechunk=False) if goods else _typed_empty(policy)
    bad = pl.concat(bads) if bads else empty_quarantine()
    return good, bad


def _read_json_lines(path: Path, policy: SourcePolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """JSON Lines (optionally gzip); a key the policy does not classify stops the file."""

    def check(con: duckdb.DuckDBPyConnection, checked: pl.DataFrame) -> pl.DataFrame:
        if checked["_known"].eq(False).any():
            _unknown_keys(con, policy, path)
        return checked.drop("_known")

    native = jsonl_native.Keys.of(policy) if jsonl_native.available() else None
    return _read_chunks(
        path, policy, _json_sql(policy), check, lambda raws: _redact_raw(raws, policy), native
    )


#: One CSV field (RFC 4180): quoted with doubled quotes inside, or unquoted without quotes.
_CSV_FIELD = r'("(?:[^"]|"")*"|[^",]*)'
#: A whole well-formed CSV line.
_CSV_LINE = "^" + _CSV_FIELD + "(?:," + _CSV_FIELD + ")*$"


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first line (UTF-8, an optional BOM)."""
    import csv

    with _open(path) as fh:
        first = _read_block(fh, 1 << 16).split(b"\n", 1)[0]
    try:
        text = first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        from tokumei.infra.errors import TokumeiError

        raise TokumeiError(f"{path.name}: the CSV header line is not UTF-8") from None
    return next(csv.reader([text]), [])


def _csv_sql(policy: SourcePolicy, header: list[str]) -> str:
    """The streaming SELECT over the registered ``lines`` table of one CSV chunk.

    Why not DuckDB's ``read_csv``: one line with an extra field or an unterminated quote failed
    the whole file (or, with ``ignore_errors``, an unterminated quote swallowed the lines after
    it without a trace). Here each physical line is one record: it is checked against the
    RFC 4180 shape, split into fields and typed like a JSON line, and a line of the wrong shape
    is quarantined with its reason. The price: a quoted field cannot hold a newline (the landing
    contract, docs/landing.md, says so). Lines without a quote (almost all) are split with
    ``string_split``; only the others go through the regular expressions.
    """
    n = len(header)
    pos = {c: i + 1 for i, c in reversed(list(enumerate(header)))}  # first occurrence wins
    field_re = _sql_lit(_CSV_FIELD + ",")
    parsed = (
        "(WITH d AS (SELECT _line, rtrim(TRY(decode(_raw)), chr(13) || chr(10)) AS _u "
        "FROM lines WHERE _n > 0 AND _line > 1), "
        "q AS (SELECT *, contains(_u, '\"') AS _q FROM d), "
        f"s AS (SELECT *, NOT _q OR regexp_matches(_u, {_sql_lit(_CSV_LINE)}) AS _shape FROM q) "
        "SELECT _line, _u, _shape, "
        "(length(_u) - length(replace(_u, '\"', ''))) % 2 = 1 AS _oddq, "
        "CASE WHEN NOT _q THEN list_transform(string_split(_u, ','), lambda x: nullif(x, '')) "
        f"WHEN _shape THEN list_transform(regexp_extract_all(_u || ',', {field_re}, 1), "
        "lambda x: CASE WHEN starts_with(x, '\"') THEN replace(x[2:-2], '\"\"', '\"') "
        "ELSE nullif(x, '') END) END AS _f FROM s) AS parsed"
    )
    pre = (
        ("_u IS NULL", "invalid UTF-8"),
        ("NOT _shape AND _oddq", "CSV: unterminated quote"),
        ("NOT _shape", "CSV: stray quote inside a field"),
        (f"len(_f) > {n}", "CSV: more fields than the header"),
        (f"len(_f) < {n}", "CSV: fewer fields than the header"),
    )
    return _validation_sql(
        policy,
        parsed,
        raw=lambda _, name: f"_f[{pos[name]}]" if name in pos else "NULL::VARCHAR",
        pre=pre,
    )


def _csv_raws(raws: list[bytes], header: list[str], policy: SourcePolicy) -> list[bytes | None]:
    """Quarantined CSV lines in the form an operator replays, without special-care values.

    A line with the header's shape becomes a JSON object of the columns that are read (as
    before); any other line is kept as received when the source has no special-care column,
    else dropped (None): a value we cannot locate may be one.
    """
    import csv

    drop = _not_read(policy)
    out: list[bytes | None] = []
    for raw in raws:
        try:
            fields = next(csv.reader([raw.decode("utf-8").rstrip("\r")]), [])
        except (UnicodeDecodeError, csv.Error):
            fields = []
        if len(fields) == len(header):
            kept = {c: (v or None) for c, v in zip(header, fields, strict=True) if c not in drop}
            out.append(json.dumps(kept, ensure_ascii=False).encode("utf-8"))
        else:
            out.append(None if drop else raw)
    return out


def _read_csv_lines(path: Path, policy: SourcePolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """CSV (optionally gzip) with a header line, chunk by chunk like JSON Lines.

    Line numbers are the file's physical lines (the header is line 1).
    """
    header = _csv_header(path)
    policy.check_columns(header, where=path.name)
    return _read_chunks(
        path,
        policy,
        _csv_sql(policy.readable(), header),
        lambda _con, checked: checked,
        lambda raws: _csv_raws(raws, header, policy),
    )


def _not_read(policy: SourcePolicy) -> set[str]:
    """Columns of ``policy`` whose role says they are never read (special care)."""
    return {c for c, p in policy.columns.items() if p.role in NOT_READ_ROLES}


def _redact_raw(raws: list[bytes], policy: SourcePolicy) -> list[bytes | None]:
    """Quarantined JSON lines without the special-care keys, so the quarantine holds none.

    A line that parses as a JSON object is written again without those keys; any other line
    (invalid UTF-8, broken JSON) may carry a special-care value we cannot locate, so its raw
    text is not kept (None): the quarantine's file and line number still point the operator
    to it in the landing zone. Sources without special-care columns keep lines as received.
    """
    drop = _not_read(policy)
    if not drop:
        return list(raws)
    out: list[bytes | None] = []
    for raw in raws:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            out.append(None)
            continue
        if not isinstance(obj, dict):
            out.append(None)
            continue
        kept = {k: v for k, v in obj.items() if k not in drop}
        out.append(json.dumps(kept, ensure_ascii=False).encode("utf-8"))
    return out


def read_landing_file(path: Path, policy: SourcePolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse one landing file into (typed good rows, quarantined rows with ``reason``).

    Quarantined rows keep the raw line (binary, exactly as received) so that an operator can
    repair and replay them; the quarantine folder is access-restricted like the landing zone.
    """
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        return _read_json_lines(path, policy)
    if name.endswith((".csv", ".csv.gz")):
        return _read_csv_lines(path, policy)
    con = _connect()
    try:
        reader = f"read_parquet({_sql_lit(str(path))}, hive_partitioning = false)"
        cols = con.sql(f"SELECT * FROM {reader} LIMIT 0").columns
        policy.check_columns(cols, where=name)
        # special-care columns are classified (checked above) but never selected or typed
        drop = _not_read(policy)
        cols = [c for c in cols if c not in drop]
        policy = policy.readable()
        missing = "".join(
            f", NULL::VARCHAR AS {_sql_str(m)}" for m in policy.columns if m not in cols
        )
        # Streamed twice (all rows, then the bad ones' raw text) instead of a temp table, so a
        # large CSV costs the typed result, not a second copy of the file in DuckDB.
        picked = ", ".join(_sql_str(c) for c in cols) or "NULL AS _none"
        parsed = (
            f"(SELECT row_number() OVER () AS _line, {picked}{missing} FROM {reader}) AS parsed"
        )
        sql = _validation_sql(policy, parsed, raw=lambda _, n: f"CAST({_sql_str(n)} AS VARCHAR)")
        pack = ", ".join(_sql_str(c) for c in cols)
        raw_sql = f"SELECT _line, CAST(to_json(struct_pack({pack})) AS BLOB) AS _raw FROM {parsed}"
        return _split(con, sql, raw_sql, policy, name)
    finally:
        con.close()


def _split_checked(
    checked: pl.DataFrame, policy: SourcePolicy
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good rows cast to the policy's Polars types, bad ``_line``/``_reason`` pairs)."""
    good = checked.filter(pl.col("_reason").is_null())
    good = good.select([pl.col(c).cast(POLARS_TYPES[p.type]) for c, p in policy.columns.items()])
    bad = checked.filter(pl.col("_reason").is_not_null()).select("_line", "_reason")
    return good, bad


def _quarantine(bad: pl.DataFrame, raw: pl.Series, name: str) -> pl.DataFrame:
    """The quarantine schema for ``bad`` (``_line``, ``_reason``) with the raw lines in order.

    The reasons are copied into fresh memory on purpose: a filtered string column is a view
    that keeps the whole chunk's DuckDB result alive, and the extract step holds every file's
    quarantine until the source is done (measured: +0.4 GiB resident per 1M-line part, 4.9 GiB
    over a 10M-event day, against ~1k bad rows per part).
    """
    reasons = pl.Series("_reason", bad["_reason"].to_list(), pl.String)
    return bad.with_columns(raw, reasons).select(
        pl.lit(name).alias("file"),
        pl.col("_line").cast(pl.Int64).alias("line"),
        pl.col("_reason").alias("reason"),
        pl.col("_raw").alias("raw"),
    )


def _split(
    con: duckdb.DuckDBPyConnection, sql: str, raw_sql: str, policy: SourcePolicy, name: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run ``sql``; fetch the raw text (``raw_sql``: ``_line``, ``_raw``) of the bad rows only."""
    good, bad = _split_checked(con.sql(sql).pl(), policy)
    if not bad.height:
        return good, empty_quarantine()
    con.register("_bad_lines", bad.select("_line").to_arrow())
    raws = con.sql(
        f"SELECT _line, _raw FROM ({raw_sql}) AS r WHERE _line IN (SELECT _line FROM _bad_lines)"
    ).pl()
    bad = bad.join(raws, on="_line", how="left")
    return good, _quarantine(bad.drop("_raw"), bad["_raw"], name)


def type_records(
    records: pl.DataFrame, policy: SourcePolicy, name: str, require_offset: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type a frame of text columns (e.g. rows read from the operational DB) by the policy.

    The same checks as for landing files apply; ``require_offset=False`` accepts timestamps
    without an offset as UTC (how SQLite and most ORMs store them).
    """
    policy.check_columns(records.columns, where=name)
    records = records.drop(_not_read(policy), strict=False)  # special care: never typed
    policy = policy.readable()
    text = records.select(pl.all().cast(pl.String)).with_row_index("_line", offset=1)
    text = text.with_columns(pl.col("_line").cast(pl.Int64))
    for missing in set(policy.columns) - set(records.columns):
        text = text.with_columns(pl.lit(None, dtype=pl.String).alias(missing))
    con = _connect()
    try:
        con.register("parsed", text.to_arrow())
        sql = _validation_sql(
            policy,
            "parsed",
            raw=lambda _, n: f"CAST({_sql_str(n)} AS VARCHAR)",
            require_offset=require_offset,
        )
        pack = ", ".join(_sql_str(c) for c in records.columns) or "x := NULL"
        raw_sql = f"SELECT _line, CAST(to_json(struct_pack({pack})) AS BLOB) AS _raw FROM parsed"
        return _split(con, sql, raw_sql, policy, name)
    finally:
        con.close()


def _typed_empty(policy: SourcePolicy) -> pl.DataFrame:
    """No rows, the policy's columns and Polars types (what a file without good lines yields)."""
    cols = policy.readable().columns
    return pl.DataFrame(schema={c: POLARS_TYPES[p.type] for c, p in cols.items()})


def empty_quarantine() -> pl.DataFrame:
    """The quarantine schema with no rows."""
    return pl.DataFrame(
        schema={"file": pl.String, "line": pl.Int64, "reason": pl.String, "raw": pl.Binary}
    )


def empty_frame(policy: SourcePolicy) -> pl.DataFrame:
    """A typed frame with the policy's columns and no rows (a source with no files that day)."""
    return _typed_empty(policy)
