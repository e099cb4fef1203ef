"""Sessions table: first event by one sortable string key (current) vs ``sort_by().first()``.

    uv run python bench/sessions_first_event.py cur|sort_by [--root /tmp/scr]

Polars 2.1 rewrites ``sort_by(...).first()`` inside ``agg`` to a streaming ``min_by``
(``tests/test_streaming_plans.py``), so the workaround in ``tokumei.stats.tables.sessions_map`` (a
``min`` over one string key) might look unnecessary. Run each variant in its own process on the
scrubbed events of a kept 10M work layer (``bench/step_rerun.py``): wall time, peak RSS of the
process, and the sorted table written to ``<root>/sessions_<variant>.parquet`` for comparison.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from tokumei.stats import tables as stats  # noqa: E402
from tokumei.stats.tables import DURATION_BANDS, PERSON, band, fold_os  # noqa: E402


def sort_by_first(events: pl.LazyFrame) -> pl.LazyFrame:
    """``sessions_map`` with the first event picked by ``sort_by([ts, dc, os]).first()``; the
    histogram over the sessions is the product's own (``stats.session_histogram``)."""
    keys = [pl.col("ts"), pl.col("_dc"), pl.col("_os")]
    sess = (
        stats.session_events(
            events,
            pl.col("device_class").fill_null("unknown").alias("_dc"),
            fold_os(pl.col("os_family")).alias("_os"),
        )
        .group_by(PERSON, "session_id")
        .agg(
            (pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds().alias("_secs"),
            pl.col("_dc").sort_by(keys).first().alias("device_class"),
            pl.col("_os").sort_by(keys).first().alias("os_family"),
        )
        .select(
            PERSON,
            "device_class",
            "os_family",
            band(pl.col("_secs"), DURATION_BANDS).alias("duration_band"),
        )
    )
    return stats.session_histogram(sess)


def main() -> None:
    """Time one variant; write its sorted table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("variant", choices=("cur", "sort_by"))
    ap.add_argument("--root", type=Path, default=Path("/tmp/scr"))
    args = ap.parse_args()
    run_id = (args.root / "run_id").read_text().strip()
    events = pl.scan_parquet(
        args.root / "out" / "_work" / run_id / "scrubbed" / "events" / "part-0000.parquet"
    )
    build = stats.sessions_map if args.variant == "cur" else sort_by_first
    t0 = time.perf_counter()
    out = build(events).collect(engine="streaming")
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.variant}: {took:.2f} s, peak RSS {peak:.2f} GiB, {out.height} rows")
    out.sort(out.columns).write_parquet(args.root / f"sessions_{args.variant}.parquet")


if __name__ == "__main__":
    main()
