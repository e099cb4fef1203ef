"""A small day end to end: `tokumei run` with steps in their own processes vs in one process.

Why: issue 16 asks for a 500-person day in <= 15 s; most of a small day is interpreter start-up
and imports per step, which `--no-isolate-steps` pays once. The two modes run alternately (A B
A B ...) on one generated landing, each into a fresh --out, so drift of the shared machine
hits both; the figure to quote is the median and the ratio.

    .venv/bin/python bench/small_day.py [--users 500] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKUMEI = str(REPO / ".venv" / "bin" / "tokumei")
DAY = "2026-11-24"


def run(landing: Path, root: Path, extra: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (children included) of one `tokumei run`."""
    out = Path(tempfile.mkdtemp(dir=root))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [TOKUMEI, "run", "--landing", str(landing), "--out", str(out), "--date", DAY, *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"run failed: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="small_day_"))
    env = dict(
        os.environ,
        TOKUMEI_PSEUDONYM_KEY=secrets.token_hex(32),
        GX_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
    )
    landing = root / "landing"
    subprocess.run(
        [TOKUMEI, "generate", "--landing", str(landing), "--db-url",
         f"sqlite:///{landing / 'ops.db'}", "--start", DAY, "--days", "1",
         "--users", str(args.users), "--seed", "3"],
        env=env, check=True, capture_output=True,
    )
    modes = {"isolated (default)": [], "in one process (--no-isolate-steps)": ["--no-isolate-steps"]}
    run(landing, root, [], env)  # warm-up: page cache, .pyc files
    got: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for _ in range(args.pairs):
        for mode, extra in modes.items():
            got[mode].append(run(landing, root, extra, env))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"landing: {args.users} users, one day; {args.pairs} runs per mode, alternated")
    for mode, rows in got.items():
        walls, cpus = [w for w, _ in rows], [c for _, c in rows]
        print(f"{mode}: wall median {statistics.median(walls):.1f} s "
              f"(min {min(walls):.1f}, max {max(walls):.1f}); CPU median {statistics.median(cpus):.1f} s")
    a, b = (got[m] for m in modes)
    ratios = [x[0] / y[0] for x, y in zip(a, b, strict=True)]
    print(f"wall ratio isolated / in one process, pair by pair: median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
