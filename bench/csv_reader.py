"""The line-by-line CSV reader (issue 17) against the read_csv-based one it replaced.

Writes a clean measurements CSV of ``--lines`` lines and times ``read_landing_file`` now and
the reader of commit 9abaa12 (``git show`` into a temporary module), checking equal output.

    uv run python bench/csv_reader.py --lines 500000
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tokumei.anonymize.policy import default_policy_dir, load_policy
from tokumei.ingest.sources import read_landing_file

OLD = "9abaa12"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=500_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    old_src = tmp / "old_sources.py"
    old_src.write_text(
        subprocess.run(
            ["git", "show", f"{OLD}:tokumei/ingest/sources.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    spec = importlib.util.spec_from_file_location("old_sources", old_src)
    assert spec and spec.loader
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_sources"] = old
    spec.loader.exec_module(old)
    path = tmp / "m.csv"
    with path.open("w") as fh:
        fh.write("device_id,user_id,ts,weight_kg,body_fat_pct\n")
        for i in range(args.lines):
            fh.write(f"scale-{i},user-{i:07d},2026-11-24T07:00:00+09:00,{50 + i % 40}.5,20.1\n")
    policy = load_policy(default_policy_dir()).source("measurements")
    print("| run | old (read_csv) s | new (line by line) s | equal output |")
    print("|---|---|---|---|")
    for run in (1, 2, 3):
        t0 = time.perf_counter()
        good_old, _ = old.read_landing_file(path, policy)
        t_old = time.perf_counter() - t0
        t0 = time.perf_counter()
        good_new, _ = read_landing_file(path, policy)
        t_new = time.perf_counter() - t0
        print(f"| {run} | {t_old:.2f} | {t_new:.2f} | {good_old.equals(good_new)} |")


if __name__ == "__main__":
    main()
