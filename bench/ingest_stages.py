"""CPU seconds of each stage of one landing file's ingest, and of the DB tables' read.

    # once: a work layer with extract's dimensions (and its key), on the 10M-event landing
    uv run python bench/step_rerun.py prep --landing /tmp/scale/landing --root /tmp/scr --upto ingest
    # then, with the code of each checkout in turn (old and new alternated)
    uv run python bench/ingest_stages.py --root /tmp/scr [--part 0] [--rounds 3] [--policy DIR]

Why: ``tokumei run`` on the 10M-event day is CPU-bound (ingest at 196-200 % of two cores), so
a change to ingest or extract shows as CPU seconds of the stage it touches long before it shows
in a whole run, whose wall time drifts with the host. In this one process, round by round:

1. ``_chunks``: decompressing the part into newline-ended chunks (no typing);
2. one part's ingest stage by stage, as ``steps._ingest_file`` runs it: the typed read
   (``read_landing_file``), PII discovery, flags and the compiled plan, the pattern pre-mask,
   the write;
3. ``opdb.read_table`` of each operational DB table (``--db-url``, default the landing's).

Prints CPU seconds (user + system of this process) and the process's page faults at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    """Print each stage's CPU seconds for ``--rounds`` rounds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("/tmp/scr"))
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--policy", type=Path, help="policy directory (default: the shipped one)")
    ap.add_argument("--part", type=int, default=0, help="which events file (sorted), 0-based")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db-url", help="operational DB (default: sqlite <landing>/ops.db)")
    args = ap.parse_args()

    import polars as pl

    from tokumei.anonymize.compile import compile_policy
    from tokumei.anonymize.person_rows import RightsDims, flag_rows, generalized_rows, kept_rows
    from tokumei.anonymize.pii import analyzer, prefilter
    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.infra.storage import write_parquet
    from tokumei.ingest import opdb
    from tokumei.ingest.sources import _chunks, read_landing_file
    from tokumei.pipeline import steps

    policy = load_policy(args.policy or default_policy_dir())
    sp = policy.source("events")
    works = sorted((args.root / "out" / "_work").glob("*/dims"))
    if not works:
        raise SystemExit(f"no work layer under {args.root}: run bench/step_rerun.py prep first")
    dims = RightsDims.read(works[-1])
    key = (args.root / "key").read_text().strip()
    day = date(2026, 11, 24)
    plan = compile_policy(policy, ("events",))["events"]
    parts = sorted((args.landing / "events").rglob("*.jsonl*"))
    part = parts[args.part]
    sample = -(-policy.thresholds.pii_sample // len(parts))  # this file's share, as in a run
    db_url = args.db_url or f"sqlite:///{args.landing / 'ops.db'}"
    for language in analyzer.LANGUAGES:  # built once per worker in a run (warm_ingest_workers)
        analyzer._direct_recognizers(language)
    prefilter.candidate_pattern()
    print(f"part {part.name}; code {steps.__file__}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            t: dict[str, float] = {}
            c = _cpu()
            size = sum(len(chunk) for chunk in _chunks(part))
            t["chunks"], c = _cpu() - c, _cpu()
            good, _bad = read_landing_file(part, sp)
            t["typed read"], c = _cpu() - c, _cpu()
            steps._discovered(good, sp, sample)
            t["discover"], c = _cpu() - c, _cpu()
            flagged = generalized_rows(flag_rows(good.lazy(), sp, key, dims, day), plan, day)
            flagged = flagged.collect()
            t["flags+plan"], c = _cpu() - c, _cpu()
            rows, _ = steps._premask(kept_rows(flagged.lazy()), plan)
            rows = rows.collect()
            t["premask"], c = _cpu() - c, _cpu()
            write_parquet(rows, Path(tmp) / "part.parquet")
            t["write"], c = _cpu() - c, _cpu()
            for table in ("users", "consents"):
                opdb.read_table(db_url, table, policy.tables[table], steps.DROPPED_ROLES)
                t[f"db {table}"], c = _cpu() - c, _cpu()
            lines = good.height
            del good, flagged, rows
            print(
                f"round {n}: {lines:,} good lines, {size / 1e6:,.0f} MB: "
                + ", ".join(f"{k} {v:.2f}" for k, v in t.items()),
                flush=True,
            )
            time.sleep(0.5)
    r = resource.getrusage(resource.RUSAGE_SELF)
    print(f"process: page faults {r.ru_minflt:,}; pid {os.getpid()}; polars {pl.__version__}")


if __name__ == "__main__":
    main()
