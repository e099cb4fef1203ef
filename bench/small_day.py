"""A small day end to end: `tokumei run`'s step processes, reused or one per step, vs one process.

Why: issue 16 asks for a 500-person day in <= 15 s; with a fresh process per step most of a
small day was interpreter start-up and imports. Three modes of the same code run in turn (A B C
A B C ...) on one generated landing, each into a fresh --out, so drift of the shared machine
hits all; quote the medians and the ratios to the default:
- default: a step process is reused while the day is small (tokumei.infra.processes);
- a fresh process per step (TOKUMEI_STEP_PROCESS_MAX_WORK_MB=0: what a big day gets, and
  the default before);
- every step in the CLI's own process (--no-isolate-steps).
Peak memory is the largest single process's (wait4's ru_maxrss of the run and its children).

    .venv/bin/python bench/small_day.py [--users 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKUMEI = str(REPO / ".venv" / "bin" / "tokumei")
DAY = "2026-11-24"


Mode = tuple[list[str], dict[str, str]]  # extra CLI arguments, extra environment


def run(landing: Path, root: Path, mode: Mode, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall and CPU seconds and peak MiB (children included) of one `tokumei run`."""
    extra, extra_env = mode
    out = Path(tempfile.mkdtemp(dir=root))
    log = root / "last_run.log"
    t0 = time.perf_counter()
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [TOKUMEI, "run", "--landing", str(landing), "--out", str(out), "--date", DAY, *extra],
            env=env | extra_env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"run failed: {log.read_text()[-2000:]}")
    shutil.rmtree(out)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
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
        [
            TOKUMEI,
            "generate",
            "--landing",
            str(landing),
            "--db-url",
            f"sqlite:///{landing / 'ops.db'}",
            "--start",
            DAY,
            "--days",
            "1",
            "--users",
            str(args.users),
            "--seed",
            "3",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    modes: dict[str, Mode] = {
        "default (step process reused while small)": ([], {}),
        "a fresh process per step": ([], {"TOKUMEI_STEP_PROCESS_MAX_WORK_MB": "0"}),
        "in one process (--no-isolate-steps)": (["--no-isolate-steps"], {}),
    }
    run(landing, root, modes["default (step process reused while small)"], env)  # warm-up
    load = [os.getloadavg()[0]]
    got: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for name, mode in modes.items():
            got[name].append(run(landing, root, mode, env))
            load.append(os.getloadavg()[0])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; load average (1 min) "
        f"during the runs {min(load):.1f}-{max(load):.1f}"
    )
    print(f"landing: {args.users} users, one day; {args.rounds} runs per mode, in turn")
    for name, rows in got.items():
        walls, cpus, peaks = ([r[i] for r in rows] for i in range(3))
        print(
            f"{name}: wall median {statistics.median(walls):.1f} s "
            f"(min {min(walls):.1f}, max {max(walls):.1f}); CPU median "
            f"{statistics.median(cpus):.1f} s; peak {statistics.median(peaks):.0f} MiB"
        )
    base = got[next(iter(modes))]
    for name, rows in list(got.items())[1:]:
        ratios = [x[0] / y[0] for x, y in zip(rows, base, strict=True)]
        print(
            f"wall ratio {name} / default, round by round: median {statistics.median(ratios):.2f}"
        )
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
