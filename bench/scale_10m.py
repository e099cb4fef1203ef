"""Scale on one machine: a day of ~10M events through ``tokumei run`` beside a plain-Polars floor.

    uv run python bench/scale_10m.py [--users 500000] [--events-per-user-day 20] [--reuse]
                                     [--partitions 1,4] [--root /tmp/scale]

1. Generates a landing zone for 2026-11-24 with ``tokumei generate`` (skipped with ``--reuse``
   when the landing already exists; 500,000 users x 20 events ~ 10M event lines).
2. Floor: a plain Polars conversion of every landing JSONL.gz part (events, devices,
   measurements, cookies) to Parquet, in a child process timed by ``/usr/bin/time -v``. The
   generator plants malformed lines (truncated JSON, invalid UTF-8, wrong types), which make
   ``pl.read_ndjson``/``pl.scan_ndjson`` fail even with ``ignore_errors=True``, so the floor is
   the fastest tolerant plain-Polars route measured: the gzip part is read as one string column
   of lines with ``pl.read_csv`` (separator 0x1f, no quoting, ``encoding="utf8-lossy"``),
   truncated lines are dropped (``not ends_with("}")``), and the lines are decoded with
   ``str.json_decode`` against the schema ``pl.read_ndjson`` infers from the first 10,000 kept
   lines (falling back to ``pl.read_ndjson(ignore_errors=True)`` on the joined lines when
   ``json_decode`` rejects a value); the frame is written with ``write_parquet``.
3. ``tokumei run`` for the date with a random pseudonym key and ``TOKUMEI_PII_WORKERS=2``, once
   per ``--partitions`` value, timed by ``/usr/bin/time -v`` (its max RSS is that of the largest
   single process it waited for) while psutil samples the RSS of the whole process tree (sum
   over processes, every 0.2 s). Per-step times come from the "✓ step (N s)" progress lines.
4. Writes the section for this scale into ``bench/results/scale.md`` (other scales' sections
   are kept) and prints it.

Targets (issue): peak memory under 4 GiB, tokumei time <= 3x the floor.

Extraction alone (one 1M-line part: this floor vs the new and the old reader, minutes instead of
the hour this script takes) is ``bench/extract_part.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # polars is imported inside the child processes only
    import polars as pl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.md"
DATE = "2026-11-24"
SOURCES = ("events", "devices", "measurements", "cookies")
STEP_RE = re.compile(r"✓\s+(\w+)\s+\(([\d.]+) s\)")
TIME_WALL_RE = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")
TIME_RSS_RE = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
TIME_CPU_RE = re.compile(r"Percent of CPU this job got: (\d+)%")
GIB = 1024**3
#: The venv's console script (``uv run`` would re-resolve and needs uv on PATH).
TOKUMEI = str(Path(sys.executable).with_name("tokumei"))


# --------------------------------------------------------------------------- floor (child)


def floor_part(part: Path) -> tuple[pl.DataFrame, str]:
    """One JSONL.gz part -> (frame, route): the fastest tolerant plain-Polars route measured.

    Also used by ``bench/extract_part.py`` so both benches time the same floor.
    """
    import io

    import polars as pl

    lines = pl.read_csv(
        part,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
        encoding="utf8-lossy",
    ).filter(pl.col("line").str.ends_with("}"))
    head = "\n".join(lines["line"].head(10_000).to_list())
    schema = pl.read_ndjson(io.StringIO(head), ignore_errors=True, infer_schema_length=None).schema
    try:
        frame = lines.select(pl.col("line").str.json_decode(pl.Struct(schema))).unnest("line")
        return frame, "json_decode"
    except pl.exceptions.ComputeError:
        joined = lines["line"].str.join("\n").item().encode()
        frame = pl.read_ndjson(io.BytesIO(joined), ignore_errors=True, infer_schema_length=10_000)
        return frame, "read_ndjson"


def floor_worker(landing: Path, out: Path) -> None:
    """Plain Polars: every landing JSONL.gz part of the date -> one Parquet file per part."""
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for source in SOURCES:
        for part in sorted((landing / source / f"date={DATE}").glob("*.jsonl*")):
            t0 = time.perf_counter()
            frame, route = floor_part(part)
            frame.write_parquet(out / f"{source}-{part.name.split('.')[0]}.parquet")
            total += frame.height
            print(
                f"floor {source}/{part.name}: {frame.height:,} rows x {frame.width} cols "
                f"via {route} in {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
            del frame
    print(f"floor rows {total}", file=sys.stderr)


# --------------------------------------------------------------------------- measuring


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def parse_wall(text: str) -> float:
    m = TIME_WALL_RE.search(text)
    if not m:
        return float("nan")
    secs = 0.0
    for piece in m.group(1).split(":"):
        secs = secs * 60 + float(piece)
    return secs


def timed(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``; sample the process tree's RSS with psutil."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the environment
        psutil = None
    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", *cmd],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = {"tree": 0, "procs": 0}
    done = threading.Event()

    def sample() -> None:
        if psutil is None:
            return
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            rss = 0
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            peak["tree"] = max(peak["tree"], rss)
            peak["procs"] = max(peak["procs"], len(tree))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        out_lines.append(line)
        if STEP_RE.search(line) or line.startswith("floor"):
            print("   ", line.rstrip(), flush=True)
    rc = proc.wait()
    done.set()
    sampler.join()
    text = "".join(out_lines)
    if log is not None:
        log.write_text(text)
    rss = TIME_RSS_RE.search(text)
    cpu = TIME_CPU_RE.search(text)
    steps: dict[str, list[float]] = defaultdict(list)
    for name, secs in STEP_RE.findall(text):
        steps[name].append(float(secs))
    return {
        "rc": rc,
        "wall": parse_wall(text),
        "maxrss": int(rss.group(1)) * 1024 if rss else 0,
        "tree_peak": peak["tree"] if psutil is not None else None,
        "procs": peak["procs"],
        "cpu": cpu.group(1) if cpu else "?",
        "steps": dict(steps),
        "tail": text.strip().splitlines()[-25:],
    }


# --------------------------------------------------------------------------- report


def gib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / GIB:.2f} GiB"


def section(info: dict) -> str:
    floor = info["floor"]
    lines = [
        f"## {info['events']:,} events ({info['users']:,} users x "
        f"{info['epud']:g} events/user-day, seed 1, date {DATE})",
        "",
        f"Machine: {info['nproc']} cores, {info['mem_gib']:.1f} GiB RAM, Python "
        f"{info['python']}, polars {info['polars']}. Command: `uv run python bench/scale_10m.py "
        f"{info['argv']}`. Landing: {info['lines_total']:,} lines in "
        f"{info['landing_mb']:.0f} MB of JSONL.gz ({info['lines_detail']}); "
        f"{info['malformed']:,} planted malformed lines.",
        "",
        "| run | wall s | × floor | peak RSS (largest process, `time -v`) | peak RSS (process "
        "tree sum, psutil) | CPU | exit | load avg before → after |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| floor: plain Polars JSONL.gz → Parquet ({floor['rows']:,} rows) | "
        f"{floor['wall']:.1f} | 1.00 | {gib(floor['maxrss'])} | {gib(floor['tree_peak'])} | "
        f"{floor['cpu']}% | {floor['rc']} | {floor['load_before']} → {floor['load_after']} |",
    ]
    for run in info["runs"]:
        ratio = run["wall"] / floor["wall"] if floor["wall"] else float("nan")
        lines.append(
            f"| `tokumei run --partitions {run['partitions']}` | {run['wall']:.1f} | "
            f"**{ratio:.2f}** | {gib(run['maxrss'])} | {gib(run['tree_peak'])} "
            f"(≤{run['procs']} procs) | {run['cpu']}% | {run['rc']} | "
            f"{run['load_before']} → {run['load_after']} |"
        )
    names: list[str] = []
    for run in info["runs"]:
        names += [n for n in run["steps"] if n not in names]
    if names:
        lines += [
            "",
            "Per-step times from tokumei's progress lines (s; with partitions > 1 the mapped "
            "steps print once per partition — summed, count in brackets):",
            "",
            "| step | " + " | ".join(f"partitions {r['partitions']}" for r in info["runs"]) + " |",
            "|---|" + "---:|" * len(info["runs"]),
        ]
        for name in names:
            cells = []
            for run in info["runs"]:
                v = run["steps"].get(name, [])
                if not v:
                    cells.append("–")
                elif len(v) == 1:
                    cells.append(f"{v[0]:.1f}")
                else:
                    cells.append(f"{sum(v):.1f} ({len(v)}×)")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for run in info["runs"]:
            total = sum(sum(v) for v in run["steps"].values())
            top = sorted(run["steps"].items(), key=lambda kv: -sum(kv[1]))[:3]
            share = ", ".join(f"{n} {sum(v) / run['wall'] * 100:.0f}%" for n, v in top)
            lines.append("")
            lines.append(
                f"partitions {run['partitions']}: steps sum to {total:.1f} s of "
                f"{run['wall']:.1f} s wall (rest: interpreter/import start-up); largest: {share}."
            )
    return "\n".join(lines) + "\n"


def write_results(key: str, body: str) -> None:
    """Put ``body`` in ``RESULTS`` as the section of scale ``key`` (``--results`` moves it)."""
    start, end = f"<!-- scale:{key}:start -->", f"<!-- scale:{key}:end -->"
    header = (
        "# Scale on one machine — `tokumei run` vs a plain-Polars floor\n\n"
        "Reproduce with `uv run python bench/scale_10m.py` (see its docstring); each scale "
        "rewrites only its own section. Targets (issue): a day of 10M events with peak memory "
        "under 4 GiB, and ≤ 3× the time of a plain Polars conversion of the same landing files "
        "to Parquet (the floor for any pipeline that reads them).\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else header
    block = f"{start}\n{body}{end}\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text)


# --------------------------------------------------------------------------- main


def this_checkout_first(env: dict[str, str]) -> None:
    """Put this checkout first on ``PYTHONPATH`` in ``env`` (for a ``tokumei`` child process).

    The venv's ``tokumei`` imports the project through its editable install, whichever checkout
    the script is in: comparing two checkouts that share a venv would measure one of them twice.
    """
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--events-per-user-day", type=float, default=20.0)
    ap.add_argument("--reuse", action="store_true", help="keep an existing landing zone")
    ap.add_argument("--partitions", default="1,4", help="comma-separated --partitions values")
    ap.add_argument("--results", type=Path, help="write the section here, not to scale.md")
    ap.add_argument("--policy", type=Path, help="tokumei run --policy (e.g. without NER)")
    ap.add_argument("--floor-worker", nargs=2, metavar=("LANDING", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_worker:
        floor_worker(Path(args.floor_worker[0]), Path(args.floor_worker[1]))
        return

    import polars as pl
    import psutil

    if args.results:  # e.g. a run under another policy (--policy), kept apart
        global RESULTS
        RESULTS = args.results
    landing = args.root / "landing"
    if not (args.reuse and (landing / "_generator" / "manifest.json").exists()):
        shutil.rmtree(landing, ignore_errors=True)
        landing.mkdir(parents=True)
        print(f"generating {landing} ({args.users:,} users)", flush=True)
        subprocess.run(
            [
                TOKUMEI, "generate", "--landing", str(landing),
                "--db-url", f"sqlite:///{landing / 'ops.db'}", "--start", DATE, "--days", "1",
                "--users", str(args.users), "--seed", "1",
                "--events-per-user-day", str(args.events_per_user_day),
            ],
            cwd=ROOT,
            check=True,
        )  # fmt: skip
    manifest = json.loads((landing / "_generator" / "manifest.json").read_text())
    parts = manifest["partitions"]
    counts = {s: parts[s][DATE]["lines"] for s in SOURCES if s in parts}
    malformed = sum(sum(parts[s][DATE]["malformed"].values()) for s in counts)
    size = sum(f.stat().st_size for s in SOURCES for f in (landing / s).rglob("*.jsonl*"))
    info = {
        "users": manifest["users"],
        "epud": manifest["events_per_user_day"],
        "events": counts.get("events", 0),
        "lines_total": sum(counts.values()),
        "lines_detail": ", ".join(f"{s} {n:,}" for s, n in counts.items()),
        "malformed": malformed,
        "landing_mb": size / 1e6,
        "nproc": os.cpu_count(),
        "mem_gib": psutil.virtual_memory().total / GIB,
        "python": sys.version.split()[0],
        "polars": pl.__version__,
        "argv": " ".join(sys.argv[1:]),
        "runs": [],
    }
    print(f"landing: {info['lines_detail']}", flush=True)

    floor_out = args.root / "floor"
    shutil.rmtree(floor_out, ignore_errors=True)
    before = loadavg()
    print(f"floor (plain Polars) … load {before}", flush=True)
    floor = timed(
        [sys.executable, __file__, "--floor-worker", str(landing), str(floor_out)],
        log=args.root / "floor.log",
    )
    floor.update(load_before=before, load_after=loadavg())
    m = re.search(r"floor rows (\d+)", "\n".join(floor["tail"]))
    floor["rows"] = int(m.group(1)) if m else 0
    if floor["rc"] != 0:
        print("\n".join(floor["tail"]))
    info["floor"] = floor
    print(f"  floor {floor['wall']:.1f} s, {gib(floor['maxrss'])}", flush=True)

    env = dict(os.environ)
    env["TOKUMEI_PSEUDONYM_KEY"] = secrets.token_hex(32)
    env["TOKUMEI_PII_WORKERS"] = "2"
    this_checkout_first(env)
    for n in [int(x) for x in args.partitions.split(",") if x]:
        out = args.root / f"out_p{n}"
        shutil.rmtree(out, ignore_errors=True)
        before = loadavg()
        print(f"tokumei run --partitions {n} … load {before}", flush=True)
        run = timed(
            [
                TOKUMEI, "run", "--landing", str(landing), "--out", str(out),
                "--date", DATE, "--partitions", str(n),
                *(["--policy", str(args.policy)] if args.policy else []),
            ],
            env=env,
            log=args.root / f"run_p{n}.log",
        )  # fmt: skip
        run.update(partitions=n, load_before=before, load_after=loadavg())
        if run["rc"] != 0:
            print("\n".join(run["tail"]))
        print(f"  {run['wall']:.1f} s, {gib(run['maxrss'])} / tree {gib(run['tree_peak'])}")
        info["runs"].append(run)
        shutil.rmtree(out, ignore_errors=True)
        write_results(str(info["events"]), section(info))  # keep partial results

    body = section(info)
    write_results(str(info["events"]), body)
    print()
    print(body)


if __name__ == "__main__":
    main()
