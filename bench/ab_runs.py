"""Whole ``tokumei run``s of two checkouts, alternated, with the CPU use of every second.

    uv run python bench/ab_runs.py --old /tmp/wt_old --new . [--rounds 2] [--policy DIR]

Why: on a 2-core host whose speed drifts within the hour, a change is only seen in old and
new runs taken in turn on the same landing (``bench/scale_10m.py`` builds it). Each run uses
this venv's interpreter with ``PYTHONPATH`` set to the checkout, a random pseudonym key and a
fresh ``--out``; prints the wall time, CPU share and peak RSS (``/usr/bin/time``), the step
times from the progress lines, and the seconds where the machine used less than 160 % of its
200 % (from ``/proc/stat``), which are where a run waits rather than computes.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def _busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def _sample(out: list[float], stop: threading.Event) -> None:
    """Per second: the machine's busy share in % of all cores (200 % on two)."""
    cores = os.cpu_count() or 1
    a = _busy()
    while not stop.wait(1.0):
        b = _busy()
        total, idle = b[0] - a[0], b[1] - a[1]
        out.append(100 * cores * (total - idle) / max(total, 1))
        a = b


def run_once(code: Path, args: argparse.Namespace, log: Path) -> dict[str, object]:
    """One ``tokumei run`` with ``code`` first on the path."""
    out = args.root / "ab_out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(code.resolve()),
        TOKUMEI_PSEUDONYM_KEY=secrets.token_hex(32),
        TOKUMEI_PII_WORKERS="2",
        GX_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
    )
    cmd = [
        "/usr/bin/time", "-f", "TIME %e %M %P",
        str(Path(sys.executable).with_name("tokumei")), "run",
        "--landing", str(args.landing), "--out", str(out), "--date", args.date,
        "--partitions", "1", *(["--policy", str(args.policy)] if args.policy else []),
    ]  # fmt: skip
    busy: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(busy, stop), daemon=True)
    sampler.start()
    with log.open("w") as fh:
        rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    stop.set()
    sampler.join()
    from scale_10m import STEP_RE  # the "✓ step (N s)" progress lines, as scale_10m reads them

    text = log.read_text()
    shutil.rmtree(out, ignore_errors=True)
    m = re.search(r"TIME ([\d.]+) (\d+) (\d+)%", text)
    return {
        "rc": rc,
        "wall": float(m.group(1)) if m else float("nan"),
        "peak_gib": int(m.group(2)) / 1024**2 if m else float("nan"),
        "cpu": int(m.group(3)) if m else 0,
        "steps": {name: float(s) for name, s in STEP_RE.findall(text)},
        "low_seconds": [(i + 1, round(b)) for i, b in enumerate(busy) if b < 160],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", type=Path, required=True, help="checkout of the old code")
    ap.add_argument("--new", type=Path, default=ROOT, help="checkout of the new code")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--root", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--date", default="2026-11-24")
    ap.add_argument("--policy", type=Path, help="policy directory (e.g. one without NER)")
    args = ap.parse_args()
    for n in range(args.rounds):
        for label, code in (("old", args.old), ("new", args.new)):
            r = run_once(code, args, args.root / f"ab_{label}_{n}.log")
            steps = " ".join(f"{k} {v}" for k, v in r["steps"].items())  # type: ignore[union-attr]
            print(
                f"{label} round {n}: {r['wall']:.1f} s, {r['cpu']}% CPU, largest process "
                f"{r['peak_gib']:.2f} GiB, rc {r['rc']} | {steps} | seconds under 160 %: "
                f"{r['low_seconds']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
