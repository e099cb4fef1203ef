"""Extract, one 1M-line events part: plain-Polars floor vs tokumei's extract (new and old).

    uv run python bench/extract_part.py [--part FILE.jsonl.gz] [--methods floor,new,old]
                                        [--repeat 1] [--root /tmp/extract_part]

Why a separate bench: ``bench/scale_10m.py`` times a whole 10M-event run (tens of minutes);
extraction changes need a quick side-by-side on one part, under the same machine load.

1. Without ``--part``, generates a landing with ``tokumei generate`` (25,000 users x 40
   events/user-day, seed 1: one ~1M-line events part, 0.1 % planted malformed lines) unless
   it already exists under ``--root``.
2. Runs each method in its own child process under ``/usr/bin/time -v`` (wall, max RSS):
   - ``floor``: exactly the per-part body of ``bench/scale_10m.py``'s ``floor_worker``
     (lines via ``pl.read_csv`` with separator 0x1f and ``utf8-lossy``, truncated lines dropped,
     ``str.json_decode`` with an inferred schema, ``write_parquet``). It types nothing against
     the policy and quarantines nothing; it is the cost of reading the part at all.
   - ``new``: ``tokumei.ingest.sources.read_landing_file`` + ``write_parquet`` of the good rows and
     the quarantine (what ``tokumei.pipeline.steps.extract`` does per file).
   - ``old``: the same with the pre-issue-6 reader (``_old_read_landing_file`` below, a verbatim
     copy of its JSON Lines path), kept only so that the comparison can be re-run.
3. Checks that ``new`` and ``old`` produce identical good rows and quarantine rows, then writes
   the section "Extract, one 1M-line part" of ``bench/results/scale.md`` and prints it.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.md"
DATE = "2026-11-24"
TIME_WALL_RE = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")
TIME_RSS_RE = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
TIME_CPU_RE = re.compile(r"Percent of CPU this job got: (\d+)%")
TIME_USER_RE = re.compile(r"User time \(seconds\): ([\d.]+)")
TIME_SYS_RE = re.compile(r"System time \(seconds\): ([\d.]+)")
GIB = 1024**3
START, END = "<!-- extract-part:start -->", "<!-- extract-part:end -->"


# --------------------------------------------------------------------------- workers (children)


def floor_worker(part: Path, out: Path) -> None:
    """The per-part body of ``bench/scale_10m.py``'s ``floor_worker`` (the same function)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scale_10m import floor_part

    t0 = time.perf_counter()
    frame, route = floor_part(part)
    frame.write_parquet(out / "floor.parquet")
    print(f"rows {frame.height} bad 0 via {route} in {time.perf_counter() - t0:.1f} s")


def extract_worker(part: Path, out: Path, method: str) -> None:
    """Read one part with the new or old reader and write what the extract step writes."""
    from tokumei.anonymize.policy import default_policy_dir, load_policy

    policy = load_policy(default_policy_dir()).source("events")
    t0 = time.perf_counter()
    if method == "new":
        from tokumei.ingest.sources import read_landing_file

        good, bad = read_landing_file(part, policy)
    else:
        good, bad = _old_read_landing_file(part, policy)
    good.write_parquet(out / f"{method}-good.parquet")
    bad.write_parquet(out / f"{method}-bad.parquet")
    print(f"rows {good.height} bad {bad.height} in {time.perf_counter() - t0:.1f} s")


def _old_read_landing_file(path: Path, policy):
    """The JSON Lines path of ``tokumei.ingest.sources`` before issue 6 (for comparison only)."""
    import duckdb
    import polars as pl
    import pyarrow as pa

    from tokumei.ingest.sources import POLARS_TYPES, _typed_sql, empty_quarantine

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    line_no = pa.array(range(1, len(lines) + 1), pa.int64())
    table = pa.table({"_line": line_no, "_raw": pa.array(lines, pa.binary())})
    table = table.filter(pa.compute.greater(pa.compute.binary_length(table["_raw"]), 0))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("lines", table)
    con.execute(
        "CREATE TEMP TABLE parsed AS "
        "WITH d AS (SELECT _line, _raw, TRY(decode(_raw)) AS _utf8 FROM lines) "
        "SELECT _line, _raw, _utf8, coalesce(json_valid(_utf8), FALSE) AS _valid, "
        "CASE WHEN json_valid(_utf8) THEN _utf8::JSON END AS _j FROM d"
    )
    keys = con.sql(
        "SELECT DISTINCT unnest(json_keys(_j)) AS k FROM parsed "
        "WHERE _valid AND json_type(_j) = 'OBJECT'"
    ).fetchall()
    policy.check_columns([k for (k,) in keys], where=path.name)
    selects = ["_line"]
    reasons = [
        ("_utf8 IS NULL", "invalid UTF-8"),
        ("NOT _valid", "malformed JSON"),
        ("json_type(_j) <> 'OBJECT'", "not a JSON object"),
    ]
    for name, col in policy.columns.items():
        q = '"' + name.replace('"', '""') + '"'
        p = "'$." + name.replace("'", "''") + "'"
        raw = f"json_extract_string(_j, {p})"
        reasons.append((f"json_type(_j, {p}) IN ('OBJECT', 'ARRAY')", f"field {name}: wrong type"))
        typed, bad = _typed_sql(name, col, raw)
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
    checked = con.sql(f"SELECT {', '.join(selects)} FROM parsed").pl()
    good = checked.filter(pl.col("_reason").is_null()).drop("_reason")
    good = good.select([pl.col(c).cast(POLARS_TYPES[p.type]) for c, p in policy.columns.items()])
    bad = checked.filter(pl.col("_reason").is_not_null()).select("_line", "_reason")
    if bad.height:
        raws = con.sql("SELECT _line, _raw FROM parsed").pl()
        bad = bad.join(raws, on="_line", how="left").select(
            pl.lit(path.name).alias("file"),
            pl.col("_line").alias("line"),
            pl.col("_reason").alias("reason"),
            pl.col("_raw").alias("raw"),
        )
    else:
        bad = empty_quarantine()
    con.close()
    return good, bad


# --------------------------------------------------------------------------- driver


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def timed(method: str, part: Path, out: Path) -> dict:
    """One method in a child process under ``/usr/bin/time -v``."""
    cmd = ["/usr/bin/time", "-v", sys.executable, __file__, "--worker", method, str(part), str(out)]
    before = loadavg()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    wall = TIME_WALL_RE.search(text)
    secs = 0.0
    for piece in (wall.group(1) if wall else "nan").split(":"):
        secs = secs * 60 + float(piece)
    rss = TIME_RSS_RE.search(text)
    cpu = TIME_CPU_RE.search(text)
    user, system = TIME_USER_RE.search(text), TIME_SYS_RE.search(text)
    m = re.search(r"rows (\d+) bad (\d+) .*in ([\d.]+) s", text)
    if proc.returncode != 0:
        print(text[-3000:], file=sys.stderr)
    return {
        "method": method,
        "rc": proc.returncode,
        "wall": secs,
        "maxrss": int(rss.group(1)) * 1024 if rss else 0,
        "cpu": cpu.group(1) if cpu else "?",
        "cpu_s": float(user.group(1)) + float(system.group(1)) if user and system else 0.0,
        "rows": int(m.group(1)) if m else 0,
        "bad": int(m.group(2)) if m else 0,
        "inner": float(m.group(3)) if m else float("nan"),
        "load": f"{before} → {loadavg()}",
    }


LABELS = {
    "floor": "floor: plain Polars lines → json_decode → Parquet (no typing, no quarantine)",
    "new": "new `read_landing_file` (chunked, zero-copy lines, one streaming DuckDB query)",
    "old": "old `read_landing_file` (whole file, Python line list, DuckDB temp table)",
}


def section(info: dict) -> str:
    """Every run, then per method the median wall and CPU seconds against the floor's."""
    import statistics

    by: dict[str, list[dict]] = {}
    for r in info["runs"]:
        by.setdefault(r["method"], []).append(r)
    med = {
        m: (statistics.median(r["wall"] for r in rs), statistics.median(r["cpu_s"] for r in rs))
        for m, rs in by.items()
    }
    floor_wall, floor_cpu = med.get("floor", (float("nan"), float("nan")))
    lines = [
        "## Extract, one 1M-line part",
        "",
        f"`uv run python bench/extract_part.py {info['argv']}` — part `{info['part']}` "
        f"({info['lines']:,} lines, {info['mb_gz']:.0f} MB gzip, {info['mb_raw']:.0f} MB "
        f"decompressed; generated with 25,000 users x 40 events/user-day, seed 1). Machine: "
        f"{info['nproc']} cores, shared with other sessions' jobs (load average 1/5/15 min "
        "before → after each run below), so wall times swing by up to 2x between identical "
        "runs; CPU seconds (user + sys) are steadier. Each run is a child process under "
        '`/usr/bin/time -v`; "s after imports" is the worker\'s own timer from the read to the '
        "written Parquet (importing duckdb/pyarrow costs the extract runs ~1 s more than the "
        "floor's polars-only import; a pipeline pays it once, not per part). new == old (good "
        f"and quarantine frames identical): **{info['same']}**.",
        "",
        "| method | runs | median wall s | × floor (wall) | median CPU s | × floor (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m, (wall, cpu) in med.items():
        lines.append(
            f"| {m} | {len(by[m])} | {wall:.1f} | **{wall / floor_wall:.2f}** | {cpu:.1f} | "
            f"**{cpu / floor_cpu:.2f}** |"
        )
    lines += [
        "",
        "| run (in order) | wall s | s after imports | CPU s | CPU % | peak RSS | rows kept "
        "| quarantined | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in info["runs"]:
        lines.append(
            f"| {LABELS[r['method']]} | {r['wall']:.1f} | {r['inner']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['cpu']}% | {r['maxrss'] / GIB:.2f} GiB | {r['rows']:,} | {r['bad']:,} | "
            f"{r['load']} |"
        )
    return "\n".join(lines) + "\n"


def write_results(body: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Scale on one machine\n"
    block = f"{START}\n{body}{END}\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text)


def ensure_part(root: Path) -> Path:
    landing = root / "landing"
    part = landing / "events" / f"date={DATE}" / "part-00000.jsonl.gz"
    if not part.exists():
        subprocess.run(
            [
                "uv", "run", "tokumei", "generate", "--landing", str(landing),
                "--db-url", f"sqlite:///{landing / 'ops.db'}", "--start", DATE, "--days", "1",
                "--users", "25000", "--events-per-user-day", "40", "--seed", "1",
            ],
            cwd=ROOT,
            check=True,
        )  # fmt: skip
    return part


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/extract_part"))
    ap.add_argument("--part", type=Path)
    ap.add_argument("--methods", default="floor,new,old")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print, do not update scale.md")
    ap.add_argument("--worker", nargs=3, metavar=("METHOD", "PART", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        method, part, out = args.worker
        if method == "floor":
            floor_worker(Path(part), Path(out))
        else:
            extract_worker(Path(part), Path(out), method)
        return

    import polars as pl

    part = args.part or ensure_part(args.root)
    out = args.root / "out"
    out.mkdir(parents=True, exist_ok=True)
    raw = n_lines = 0
    with gzip.open(part, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            raw += len(block)
            n_lines += block.count(b"\n")
    info = {
        "argv": " ".join(sys.argv[1:]),
        "part": part.name,
        "lines": n_lines,
        "mb_gz": part.stat().st_size / 1e6,
        "mb_raw": raw / 1e6,
        "nproc": os.cpu_count(),
        "runs": [],
    }
    methods = [m for m in args.methods.split(",") if m]
    for _ in range(args.repeat):
        for method in methods:
            run = timed(method, part, out)
            print(
                f"{method}: {run['wall']:.1f} s, {run['maxrss'] / GIB:.2f} GiB, "
                f"rc {run['rc']}, load {run['load']}",
                flush=True,
            )
            info["runs"].append(run)
    same = "not compared"
    if {"new", "old"} <= set(methods):
        same = all(
            pl.read_parquet(out / f"new-{k}.parquet").equals(
                pl.read_parquet(out / f"old-{k}.parquet")
            )
            for k in ("good", "bad")
        )
        same = "yes" if same else "NO"
    info["same"] = same
    body = section(info)
    if not args.no_write:
        write_results(body)
    print()
    print(body)


if __name__ == "__main__":
    main()
