"""The native one-parse JSON Lines pass against the typed read's DuckDB query, on the same chunks.

    make native   # part of make venv
    uv run python bench/native_json_probe.py [--landing /tmp/scale/landing] [--part 0] [--rounds 3]

Why: the typed read (``tokumei.ingest.sources``) used to parse each line three times in DuckDB
(``json_valid``, ``json_extract_string``, ``json_keys``); ADR 0009 put a C pass with yyjson
(``csrc/jsonl/jsonl.c``, ``tokumei.ingest.jsonl_native``) in front of it. This probe times, one
thread, on every chunk of one events file of a generated landing:

1. the query's parse, decode to extraction and keys, into Polars (what the pass stands in for);
2. the C pass, into Arrow and Polars;
3. msgspec's ``decode_lines`` (the fastest decoder installed) on the lines the pass accepted;

and checks, line by line, that every line the pass accepts is a valid object with known keys
for the query with every value equal to the query's ``json_extract_string`` text, and counts
the lines it leaves to the query.

The figures of session 17's probe (before the pass was built: a ~60-line prototype compiled by
this script) are those of this script as of commit 0395c64.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokumei.anonymize.policy import SourcePolicy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    """Print the CPU seconds of the query's parse and of the C pass, and their agreement."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--part", type=int, default=0, help="which events file (sorted), 0-based")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import polars as pl
    from ingest_stages import _cpu  # this process's user + system CPU seconds
    from read_json_probe import parsed_select

    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.ingest import jsonl_native
    from tokumei.ingest import sources as S

    if not jsonl_native.available():
        raise SystemExit("the native pass is not built: run `make native`")
    sp = load_policy(default_policy_dir()).source("events")
    keys = jsonl_native.Keys.of(sp)
    assert keys is not None
    names = list(sp.readable().columns)
    part = sorted((args.landing / "events").rglob("*.jsonl*"))[args.part]
    chunks = []
    first = 1
    for data in S._chunks(part):
        lines = S._split_lines(data, first)
        first += len(lines.sizes)
        chunks.append(lines)
    select = parsed_select(sp)
    con = S._connect()
    con.execute("SET threads = 1")
    try:
        for n in range(args.rounds):
            c = _cpu()
            query = []
            for lines in chunks:
                con.register("lines", lines.table)
                query.append(con.sql(select).pl())
                con.unregister("lines")
            t_query = _cpu() - c
            c = _cpu()
            native = []
            for lines in chunks:
                parsed = jsonl_native.parse(
                    lines.data, lines.starts, lines.sizes, lines.first, keys
                )
                native.append((pl.from_arrow(parsed.table), parsed.rest))
            print(
                f"round {n}: DuckDB query's parse (decode, json_valid, extract, keys, to "
                f"Polars) {t_query:.2f} CPU-s; C pass with yyjson (to Polars) {_cpu() - c:.2f} "
                "CPU-s",
                flush=True,
            )
    finally:
        con.close()
    _msgspec(chunks, [frame for frame, _ in native], sp, args.rounds, _cpu)
    ours = pl.concat(query)
    fast = pl.concat([frame for frame, _ in native])
    accepted = fast.join(ours, on="_line", how="left", suffix="_query")
    print(f"lines {ours.height:,}; accepted by the C pass {accepted.height:,}")
    print(
        "  of them not a valid object with known keys for the query: "
        f"{accepted.filter(~(pl.col('_obj') & pl.col('_known'))).height:,}"
    )
    for i, name in enumerate(names):
        differ = accepted.filter(~pl.col(f"_v{i}").eq_missing(pl.col(f"_v{i}_query"))).height
        print(f"  {name}: {differ:,} values differ")
    left = ours.join(fast.select("_line"), on="_line", how="anti")
    print(
        f"left to the query {sum(len(rest) for _, rest in native):,}; of them valid objects "
        f"with known keys for the query: {left.filter(pl.col('_obj') & pl.col('_known')).height:,}"
    )


def _msgspec(
    chunks: list[Any], native: list[Any], sp: SourcePolicy, rounds: int, cpu: Callable[[], float]
) -> None:
    """msgspec's ``decode_lines`` on the lines the C pass accepted, joined per chunk (it fails a
    whole buffer on one bad line, so a real reader would also have to cut blocks around bad
    lines), and its objects' values into lists."""
    import msgspec

    names = list(sp.readable().columns)
    # any JSON scalar, as the query accepts (a number where text belongs fails later, in typing)
    fields = [(n, str | int | float | bool | None, None) for n in names]
    decoder = msgspec.json.Decoder(msgspec.defstruct("Line", fields, forbid_unknown_fields=True))
    blobs = []
    for lines, frame in zip(chunks, native, strict=True):
        ok = frame["_line"].to_numpy() - lines.first
        starts, sizes = lines.starts[ok], lines.sizes[ok]
        data = lines.data
        blobs.append(b"\n".join(bytes(data[s : s + z]) for s, z in zip(starts, sizes, strict=True)))
    for n in range(rounds):
        c = cpu()
        decoded = [decoder.decode_lines(blob) for blob in blobs]
        t_decode = cpu() - c
        c = cpu()
        for objs in decoded:  # a lower bound of the columns: Python lists, not yet Arrow
            [[getattr(o, k) for o in objs] for k in names]
        rows = sum(len(objs) for objs in decoded)
        print(
            f"round {n}: msgspec decode_lines {t_decode:.2f} CPU-s, values into per-column "
            f"lists {cpu() - c:.2f} CPU-s ({rows:,} lines)"
        )
        del decoded


if __name__ == "__main__":
    main()
