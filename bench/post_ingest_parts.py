"""CPU seconds of each statistics map and of the record release's stages, on a kept work layer.

    # once: a work layer up to anonymize_records (and its key), e.g. on the 10M-event landing
    uv run python bench/step_rerun.py prep --root /tmp/scr --upto anonymize_records [--policy DIR]
    # then, with the code of each checkout in turn
    uv run python bench/post_ingest_parts.py --root /tmp/scr [--rounds 2] [--policy DIR]

Why: after ingest, stats_map and anonymize_records are the run's largest steps, and each is
many small Polars plans; a change to one map or stage shows here as its own CPU seconds (and
the row count it gives), long before it shows in a whole run. In one process, round by round:
every output of ``stats_map`` for partition 0 collected alone, then ``page_view_records``,
``published_cells_only``, ``fold_rare`` and ``bound_contributions`` as ``release_records``
runs them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DAY = "2026-11-24"


def main() -> None:
    """Print each map's and stage's CPU seconds for ``--rounds`` rounds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("/tmp/scr"))
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--policy", type=Path, help="policy directory (default: the shipped one)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = (args.root / "key").read_text().strip()

    import polars as pl
    from step_rerun import _settings

    from tokumei.anonymize import records
    from tokumei.anonymize.folding import fold_rare
    from tokumei.pipeline import steps
    from tokumei.stats import periods
    from tokumei.stats import tables as stats

    settings = _settings(args.landing, args.root, 1, args.policy)
    run_id = (args.root / "run_id").read_text().strip()
    paths = steps._paths(settings, DAY, run_id)
    policy = steps._policy(settings)
    special_care = policy.special_care_values.matcher()
    persons = pl.scan_parquet(paths.work / "generalized" / "persons.parquet")
    events = steps.scrubbed_scan(paths, "events", 0)
    ms = steps.partition_scan(paths, "generalized", "measurements", 0)
    pairs = pl.scan_parquet(paths.layer("stats_map/pv_pairs") / "part-0000.parquet")
    maps: dict[str, pl.LazyFrame] = {
        "pv_pairs": stats.page_view_pairs(events),
        "dau": stats.dau_map(events, persons),
        "pv_templates": stats.template_persons(pairs),
        "measurements": stats.measurements_map(ms, persons),
        "sessions": stats.sessions_map(events),
        "search_volume": stats.search_volume_map(events, special_care),
        "funnel": stats.funnel_map(events),
        "revenue": stats.revenue_map(events),
        "activity": periods.activity_rows(events, ms, persons, DAY),
        "purchases": periods.purchase_rows(events, DAY, stats.price_band(pl.col("amount_jpy"))),
    }
    qis = list(steps.anonymized_qis())
    person, value, link = steps.PERSON, "url_template", "device_class"
    k = policy.thresholds.k
    m = policy.records.max_records_per_person_class
    table = pl.read_parquet(paths.staged_table("stats", "page_views"))
    print(f"work layer {paths.work}; code {steps.__file__}", flush=True)
    for n in range(args.rounds):
        t: dict[str, str] = {}
        for name, lf in maps.items():
            _timed(t, name, lf.collect)
        recs = _timed(t, "page_view_records", lambda: steps.page_view_records(paths))
        pub = records.published_cells_only(recs.lazy(), table, value, link)
        pub = _timed(t, "published_cells_only", pub.collect)
        folded = _timed(
            t, "fold_rare", fold_rare(pub.lazy(), value, person, k, special_care).collect
        )
        bound = records.bound_contributions(folded.lazy(), person, qis, value, m)
        _timed(t, "bound_contributions", bound.collect)
        print(f"round {n}: " + ", ".join(f"{a} {b}" for a, b in t.items()), flush=True)
        time.sleep(0.5)


def _timed(into: dict[str, str], name: str, fn: Any) -> Any:
    """``fn()``, its CPU seconds and row count recorded under ``name``."""
    from ingest_stages import _cpu  # this process's user + system CPU seconds

    c = _cpu()
    out = fn()
    into[name] = f"{_cpu() - c:.2f} ({out.height:,} rows)"
    return out


if __name__ == "__main__":
    main()
