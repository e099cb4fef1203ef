"""Cost of the landing completeness check (docs/landing.md) against reading the same day.

Generates one day with ``tokumei generate`` (``--users`` x 20 events), then times, per source,
``tokumei.ingest.landing.check_day`` (SHA-256 + inflate + line count of every listed file: the
sensor's check), ``check_day(lines=False)`` (sizes and SHA-256: the extract step's check) and
``read_landing_file`` over the same files (the extract step's reader), single process.

    uv run python bench/landing_check.py --users 50000 [--root /tmp/landing-bench] [--reuse]
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from tokumei.anonymize.policy import LANDING_SOURCES, default_policy_dir, load_policy
from tokumei.ingest.landing import check_day, data_files, day_folder
from tokumei.ingest.sources import read_landing_file
from tokumei.synthetic import generate

DAY = "2026-11-24"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--root", type=Path, default=Path("/tmp/landing-bench"))
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    landing = args.root / "landing"
    if not (args.reuse and landing.exists()):
        t0 = time.perf_counter()
        generate(
            landing,
            f"sqlite:///{args.root / 'ops.db'}",
            date.fromisoformat(DAY),
            1,
            args.users,
            seed=1,
        )
        print(f"generated in {time.perf_counter() - t0:.1f} s")
    policy = load_policy(default_policy_dir())
    print("| source | files | MB | lines | check_day s | lines=False s | read s | full / read |")
    print("|---|---|---|---|---|---|---|---|")
    for source in LANDING_SOURCES:
        files = data_files(day_folder(landing, source, DAY))
        mb = sum(f.stat().st_size for f in files) / 1e6
        t0 = time.perf_counter()
        status = check_day(landing, source, DAY)
        t_check = time.perf_counter() - t0
        assert status.complete, status.reason
        t0 = time.perf_counter()
        assert check_day(landing, source, DAY, lines=False).complete
        t_sha = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in files:
            read_landing_file(f, policy.source(source))
        t_read = time.perf_counter() - t0
        print(
            f"| {source} | {len(files)} | {mb:.1f} | {status.lines:,} | {t_check:.2f} | "
            f"{t_sha:.2f} | {t_read:.2f} | {t_check / t_read:.0%} |"
        )


if __name__ == "__main__":
    main()
