"""A native one-parse JSON Lines pass (yyjson, compiled here) against the typed read's query.

    pip download --no-binary :all: --no-deps yyjson==4.0.6 -d /tmp/yy && tar xzf /tmp/yy/*.tar.gz -C /tmp/yy
    uv run python bench/native_json_probe.py --yyjson /tmp/yy/yyjson-4.0.6/yyjson [--part 0] [--rounds 3]

Why: the typed read (``tokumei.ingest.sources``) spends most of its CPU in DuckDB's JSON
functions, which parse each line three times (``json_valid``, ``json_extract_string``,
``json_keys``; bench/results/scale.md, sessions 14-17), and no reader on the registries this
machine reaches parses once, in memory, with a verdict per line (DuckDB's ``read_json`` from
memory, msgspec's ``decode_lines`` and Polars' readers were measured and are dearer or fail a
whole block on one bad line). This probe answers, before any such code is written, what one
native pass would cost: a ~60-line C loop over the same chunks, built with gcc against yyjson
(the parser DuckDB's JSON extension is built on), that parses each line once, rejects what is
not an object, stops at a key outside the policy or a nested value, and copies each policy
key's value (strings unescaped, other scalars as yyjson writes them) into Arrow string
buffers. It prints CPU seconds of both on the same chunks (one thread) and, on the lines the C
pass accepts, how many values differ from the query's ``json_extract_string``.

A probe, not tokumei code: the C source is written to a temporary directory and removed. It
is the measurement that decided ADR 0009; the pass tokumei runs is ``csrc/jsonl/jsonl.c``
(stricter: duplicate keys, number kinds, NUL in text and strict UTF-8 go to the query).
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokumei.anonymize.policy import SourcePolicy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# status: 0 accepted, 2 not JSON (or not UTF-8), 3 not an object, 4 a key outside the
# policy, 5 a nested value: every non-zero line would take the exact DuckDB path.
C_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "yyjson.h"

int64_t parse_lines(const char *buf, const int64_t *starts, const int64_t *lens, int64_t n,
                    const char **keys, const int64_t *klens, int nkeys, int8_t *status,
                    int64_t **offsets, char **data, int64_t *caps, uint8_t **valid) {
    int64_t ok = 0;
    int64_t *pos = calloc(nkeys, sizeof(int64_t));
    yyjson_val **vals = calloc(nkeys, sizeof(yyjson_val *));
    char *pool = malloc(1 << 20);
    yyjson_alc alc;
    yyjson_alc_pool_init(&alc, pool, 1 << 20);
    for (int64_t i = 0; i < n; i++) {
        memset(vals, 0, nkeys * sizeof(yyjson_val *));
        yyjson_doc *doc = yyjson_read_opts((char *)(buf + starts[i]), (size_t)lens[i], 0, &alc, NULL);
        int8_t st = 0;
        if (!doc) st = 2;
        else {
            yyjson_val *root = yyjson_doc_get_root(doc);
            if (!yyjson_is_obj(root)) st = 3;
            else {
                yyjson_obj_iter it = yyjson_obj_iter_with(root);
                yyjson_val *key;
                while ((key = yyjson_obj_iter_next(&it))) {
                    const char *ks = yyjson_get_str(key);
                    size_t kl = yyjson_get_len(key);
                    int found = -1;
                    for (int k = 0; k < nkeys; k++)
                        if ((size_t)klens[k] == kl && memcmp(keys[k], ks, kl) == 0) { found = k; break; }
                    if (found < 0) { st = 4; break; }
                    yyjson_val *v = yyjson_obj_iter_get_val(key);
                    if (yyjson_is_obj(v) || yyjson_is_arr(v)) { st = 5; break; }
                    if (!vals[found]) vals[found] = v; /* the first of duplicate keys */
                }
            }
        }
        status[i] = st;
        for (int k = 0; k < nkeys; k++) {
            yyjson_val *v = st == 0 ? vals[k] : NULL;
            const char *s = NULL;
            size_t l = 0;
            char *written = NULL;
            if (v && yyjson_is_str(v)) { s = yyjson_get_str(v); l = yyjson_get_len(v); }
            else if (v && !yyjson_is_null(v)) { written = yyjson_val_write(v, 0, &l); s = written; }
            valid[k][i] = s != NULL;
            if (s) {
                if (pos[k] + (int64_t)l > caps[k]) {
                    caps[k] = (caps[k] + (int64_t)l) * 2;
                    data[k] = realloc(data[k], caps[k]);
                }
                memcpy(data[k] + pos[k], s, l);
                pos[k] += (int64_t)l;
            }
            free(written);
            offsets[k][i + 1] = pos[k];
        }
        if (doc) yyjson_doc_free(doc);
        if (st == 0) ok++;
    }
    free(pos); free(vals); free(pool);
    return ok;
}
"""


def _build(yyjson: Path, where: Path) -> ctypes.CDLL:
    """The C pass as a shared library (gcc -O2, this machine's default target)."""
    (where / "lines.c").write_text(C_SOURCE)
    for name in ("yyjson.c", "yyjson.h"):
        shutil.copy(yyjson / name, where / name)
    lib = where / "liblines.so"
    cmd = ["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), "lines.c", "yyjson.c"]
    subprocess.run(cmd, cwd=where, check=True)
    so = ctypes.CDLL(str(lib))
    so.parse_lines.restype = ctypes.c_int64
    return so


def main() -> None:
    """Print the CPU seconds of the query's parse and of the C pass, and their agreement."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--yyjson", type=Path, required=True, help="folder with yyjson.c, yyjson.h")
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--part", type=int, default=0, help="which events file (sorted), 0-based")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import polars as pl
    import pyarrow as pa
    from ingest_stages import _cpu  # this process's user + system CPU seconds

    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.ingest import sources as S

    sp = load_policy(default_policy_dir()).source("events")
    names = list(sp.readable().columns)
    every = list(sp.columns)  # keys allowed in a line (special-care ones too, never copied)
    part = sorted((args.landing / "events").rglob("*.jsonl*"))[args.part]
    chunks = []
    first = 1
    for data in S._chunks(part):
        lines = S._split_lines(data, first)
        first += len(lines.sizes)
        chunks.append(lines)
    sql = S._json_sql(sp)
    inner = sql[sql.index("(WITH d AS") : sql.index(") AS parsed") + len(") AS parsed")]
    values = ", ".join(f'"_v{i}"' for i in range(len(names)))
    con = S._connect()
    con.execute("SET threads = 1")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    keys = (ctypes.c_char_p * len(every))(*[k.encode() for k in every])
    klens = np.array([len(k.encode()) for k in every], np.int64)
    pick = [every.index(n) for n in names]
    tmp = Path(tempfile.mkdtemp(prefix="tokumei-native-"))
    try:
        so = _build(args.yyjson, tmp)
        for n in range(args.rounds):
            c = _cpu()
            query = []
            for lines in chunks:
                con.register("lines", lines.table)
                query.append(con.sql(f"SELECT _line, _obj, _known, {values} FROM {inner}").pl())
                con.unregister("lines")
            t_query = _cpu() - c
            c = _cpu()
            native = []
            for lines in chunks:
                m = len(lines.sizes)
                status = np.zeros(m, np.int8)
                offs = [np.zeros(m + 1, np.int64) for _ in every]
                offp = (ctypes.c_void_p * len(every))(*[o.ctypes.data for o in offs])
                present = [np.zeros(m, np.uint8) for _ in every]
                validp = (ctypes.c_void_p * len(every))(*[v.ctypes.data for v in present])
                caps = np.full(len(every), 1 << 20, np.int64)
                bufs = (ctypes.c_void_p * len(every))(*[libc.malloc(1 << 20) for _ in every])
                sizes = np.ascontiguousarray(lines.sizes, np.int64)
                so.parse_lines(
                    ctypes.c_void_p(np.frombuffer(lines.data, np.uint8).ctypes.data),
                    ctypes.c_void_p(lines.starts.ctypes.data),
                    ctypes.c_void_p(sizes.ctypes.data),
                    ctypes.c_int64(m),
                    keys,
                    ctypes.c_void_p(klens.ctypes.data),
                    ctypes.c_int(len(every)),
                    ctypes.c_void_p(status.ctypes.data),
                    offp,
                    bufs,
                    ctypes.c_void_p(caps.ctypes.data),
                    validp,
                )
                cols = {}
                for i, k in zip(pick, names, strict=True):
                    raw = ctypes.string_at(bufs[i], int(offs[i][-1])) if offs[i][-1] else b""
                    bitmap = np.packbits(present[i], bitorder="little")
                    cols[k] = pa.LargeStringArray.from_buffers(
                        m, pa.py_buffer(offs[i]), pa.py_buffer(raw), pa.py_buffer(bitmap)
                    )
                for b in bufs:
                    libc.free(b)
                cols["_status"] = pa.array(status)
                native.append(pl.from_arrow(pa.table(cols)))
            t_native = _cpu() - c
            print(
                f"round {n}: DuckDB query's parse (decode, json_valid, extract, keys, to "
                f"Polars) {t_query:.2f} CPU-s; C pass with yyjson (to Polars) {t_native:.2f} "
                "CPU-s",
                flush=True,
            )
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    _msgspec(chunks, native, sp, args.rounds, _cpu)
    ours = pl.concat(query)
    fast = pl.concat(native, how="vertical_relaxed")
    both = pl.concat([ours, fast], how="horizontal")
    accepted = both.filter(pl.col("_status") == 0)
    print(f"lines {both.height:,}; accepted by the C pass {accepted.height:,}")
    print(
        f"  of them not a valid object with known keys for the query: "
        f"{accepted.filter(~(pl.col('_obj') & pl.col('_known'))).height:,}"
    )
    for i, name in enumerate(names):
        differ = accepted.filter(~pl.col(f"_v{i}").eq_missing(pl.col(name))).height
        print(f"  {name}: {differ:,} values differ")
    rejected = both.filter(pl.col("_status") != 0)
    print(
        f"rejected by the C pass {rejected.height:,} (would take the DuckDB path); of them "
        f"valid objects with known keys for the query: "
        f"{rejected.filter(pl.col('_obj') & pl.col('_known')).height:,}"
    )


def _msgspec(
    chunks: list[Any], native: list[Any], sp: SourcePolicy, rounds: int, cpu: Callable[[], float]
) -> None:
    """msgspec's ``decode_lines`` (the fastest decoder installed) on the lines the C pass
    accepted, joined per chunk (it fails a whole buffer on one bad line, so a real reader
    would also have to cut blocks around bad lines), and its objects' values into lists."""
    import msgspec

    names = list(sp.readable().columns)
    # any JSON scalar, as the C pass accepts (a number where text belongs fails later, in typing)
    fields = [(n, str | int | float | bool | None, None) for n in names]
    decoder = msgspec.json.Decoder(msgspec.defstruct("Line", fields, forbid_unknown_fields=True))
    blobs = []
    for lines, frame in zip(chunks, native, strict=True):
        ok = frame["_status"].to_numpy() == 0
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
