"""Per-step wall time and peak memory of one ``tokumei run`` (where does the memory go?).

    uv run python bench/step_memory.py --landing /tmp/scale/landing --out /tmp/scale/out_mem \
        [--date 2026-11-24] [--partitions 1] [--interval 0.25]

``bench/scale_10m.py`` gives one peak for the whole run; this script attributes it. It starts
``tokumei run`` (the venv's entry point) as a child, samples the resident set size (RSS) of the main process and the sum
over its process tree every ``--interval`` seconds with psutil, and reads the run's "✓ step
(N s)" progress lines as they are printed to know which step each sample belongs to (a step's
samples are those taken after the previous step's line and before its own). Prints a Markdown
table: step, seconds, peak RSS of the main process, peak RSS of the tree (forked NER workers
share pages with the parent, so the tree sum over-counts), load average before and after.
Same environment as ``scale_10m.py``: random pseudonym key, ``TOKUMEI_PII_WORKERS=2``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from scale_10m import STEP_RE, this_checkout_first

GIB = 1024**3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--landing", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--date", default="2026-11-24")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.25)
    args = ap.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    env = dict(os.environ)
    env["TOKUMEI_PSEUDONYM_KEY"] = secrets.token_hex(32)
    env.setdefault("TOKUMEI_PII_WORKERS", "2")
    this_checkout_first(env)
    env["COLUMNS"] = "200"  # one progress line per step, unwrapped
    cmd = [
        str(Path(sys.executable).with_name("tokumei")), "run", "--landing", str(args.landing),
        "--out", str(args.out), "--date", args.date, "--partitions", str(args.partitions),
    ]  # fmt: skip
    load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    samples: list[tuple[float, int, int]] = []  # (t, main rss, tree rss)
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append((p, p.memory_info().rss))
                    except psutil.Error:
                        continue
                # the uv launcher is tiny; the Python process with the largest RSS is the run
                main_rss = max((r for _, r in rss), default=0)
                samples.append((time.monotonic() - start, main_rss, sum(r for _, r in rss)))
            except psutil.Error:
                pass
            time.sleep(args.interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    steps: list[tuple[str, float, float]] = []  # (step, seconds, time the line appeared)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        print(line, flush=True)
        m = STEP_RE.search(line)
        if m:
            steps.append((m.group(1), float(m.group(2)), time.monotonic() - start))
    rc = proc.wait()
    wall = time.monotonic() - start
    done.set()
    thread.join()
    load_after = "/".join(f"{x:.2f}" for x in os.getloadavg())

    print()
    print(f"exit {rc}, wall {wall:.1f} s, load {load_before} -> {load_after}, "
          f"{len(samples)} samples every {args.interval} s")  # fmt: skip
    print()
    print("| step | s | peak RSS main | peak RSS tree |")
    print("|---|---:|---:|---:|")
    prev = 0.0
    for name, secs, at in steps:
        window = [s for s in samples if prev <= s[0] <= at]
        main_peak = max((s[1] for s in window), default=0) / GIB
        tree_peak = max((s[2] for s in window), default=0) / GIB
        print(f"| {name} | {secs:.1f} | {main_peak:.2f} GiB | {tree_peak:.2f} GiB |")
        prev = at
    print(f"| **run** | {wall:.1f} | {max((s[1] for s in samples), default=0) / GIB:.2f} GiB "
          f"| {max((s[2] for s in samples), default=0) / GIB:.2f} GiB |")  # fmt: skip


if __name__ == "__main__":
    main()
