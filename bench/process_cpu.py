"""CPU seconds of every process of one ``tokumei run``: which step's process spends the run's CPU.

    uv run python bench/process_cpu.py [--landing /tmp/scale/landing] [--policy DIR]

Why: the 10M-event day keeps both cores busy from its second second to its last few, so its
wall time follows the CPU the processes spend, not waiting. ``/usr/bin/time`` gives the sum;
this samples every process of the run's tree (psutil, every 0.1 s) and prints, per process,
when it lived and the CPU it had used when last seen, so the step processes (extract, the
ingest workers, the DB readers, one per later step) can be told apart by their lifetimes and
the progress lines (written to ``<root>/process_cpu.log``). Runs with this checkout's code, a
random pseudonym key and ``--partitions 1``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run ``tokumei run`` once and print each process's lifetime and CPU seconds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--root", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--date", default="2026-11-24")
    ap.add_argument("--policy", type=Path, help="policy directory (e.g. one without NER)")
    args = ap.parse_args()

    import psutil

    out = args.root / "process_cpu_out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        TOKUMEI_PSEUDONYM_KEY=secrets.token_hex(32),
        TOKUMEI_PII_WORKERS="2",
        GX_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
    )
    cmd = [
        str(Path(sys.executable).with_name("tokumei")), "run",
        "--landing", str(args.landing), "--out", str(out), "--date", args.date,
        "--partitions", "1", *(["--policy", str(args.policy)] if args.policy else []),
    ]  # fmt: skip
    log = args.root / "process_cpu.log"
    seen: dict[int, dict[str, float | str]] = {}
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            now = time.perf_counter() - t0
            for p in tree:
                try:
                    c = p.cpu_times()
                    info = seen.setdefault(p.pid, {"start": now, "cmd": p.name()})
                    # the run's own process: without its waited-for children's CPU
                    info["cpu"] = c.user + c.system
                    info["end"] = now
                except psutil.Error:
                    pass
            time.sleep(0.1)
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    print(f"exit {proc.returncode}; wall {wall:.1f} s; progress lines in {log}")
    total = 0.0
    for pid, info in sorted(seen.items(), key=lambda kv: float(kv[1]["start"])):
        cpu = float(info.get("cpu", 0.0))
        total += cpu
        print(f"  pid {pid}: {info['start']:5.1f}-{info['end']:5.1f} s, CPU {cpu:5.1f} s")
    print(f"CPU of all processes {total:.1f} s ({100 * total / wall:.0f} % of one core)")


if __name__ == "__main__":
    main()
