"""Cost of single column expressions on the 10M-event work layer (which column makes a step slow).

    uv run python bench/column_costs.py [--root /tmp/scr]

Needs a work layer kept by ``bench/step_rerun.py prep`` (and ``step ... anonymize_records`` for
the second part). Two parts, each timing one expression at a time over the whole partition:

1. **generalize**: each generalized events column (``builtin(...).expr`` at the policy's level,
   ``map_distinct`` for the UA classes, the JIS mesh) scanned from the pseudonymized layer and
   sunk to a scratch Parquet file, beside a plain copy of one string column (the I/O floor).
2. **validate**: GX's PII check on the anonymized dataset's ``url_template`` column, as pandas
   runs it (``str.contains`` on the Arrow-backed column): once per pattern of ``PII_PATTERNS``
   (OR-ed) against once with the combined ``PII_ANY``; both must flag the same rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(label: str, fn) -> float:  # noqa: ANN001 - any zero-argument callable
    t0 = time.perf_counter()
    fn()
    took = time.perf_counter() - t0
    print(f"  {label:24s} {took:6.2f} s", flush=True)
    return took


def main() -> None:
    """Print per-expression seconds for both parts."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("/tmp/scr"))
    args = ap.parse_args()

    import polars as pl

    import tokumei.pipeline.steps as steps
    from tokumei.anonymize.hierarchies import ua_os
    from tokumei.expectations.patterns import PII_ANY, PII_PATTERNS
    from tokumei.expectations.runner import to_validation_frame
    from tokumei.infra.settings import Settings

    run_id = (args.root / "run_id").read_text().strip()
    work = args.root / "out" / "_work" / run_id
    src = work / "pseudo" / "events" / "part-0000.parquet"
    landing = Path("/tmp/scale/landing")
    settings = Settings(landing=landing, db_url="sqlite:///unused", out=args.root / "out")
    policy = steps._policy(settings.resolved())

    def level(column: str) -> int:
        return steps._level(policy, "events", column)

    exprs = {
        "copy person (I/O floor)": pl.col("person"),
        "time": steps.builtin("time").expr(pl.col("ts"), level("ts")),
        "url": steps.builtin("url").expr(pl.col("url"), level("url")),
        "referrer": steps.builtin("url").expr(pl.col("referrer"), level("referrer")),
        "device_class": steps.map_distinct(pl.col("user_agent"), steps.ua_device_class),
        "os_family": steps.map_distinct(pl.col("user_agent"), ua_os),
        "ua_family": steps.builtin("user_agent").expr(pl.col("user_agent"), level("user_agent")),
        "ip": steps.builtin("ip").expr(pl.col("ip"), level("ip")),
        "mesh": steps.builtin("mesh").expr(
            steps.to_mesh_1km(pl.col("lat"), pl.col("lon")), level("lat")
        ),
    }
    rows = pl.scan_parquet(src).select(pl.len()).collect().item()
    print(f"generalize: one expression at a time over {rows:,} events -> scratch Parquet")
    scratch = args.root / "column_costs.parquet"
    for name, expr in exprs.items():
        _timed(name, lambda e=expr: pl.scan_parquet(src).select(e.alias("x")).sink_parquet(scratch))
    scratch.unlink(missing_ok=True)

    anon = next((work / "anonymized").glob("*.parquet"), None)
    if anon is None:
        print("validate: no anonymized dataset (run step_rerun.py step anonymize_records)")
        return
    frame = to_validation_frame(pl.read_parquet(anon))
    col = frame["url_template"].astype(str)
    print(f"validate: PII regexes on url_template of {anon.name} ({len(col):,} rows)")
    hits: dict[str, object] = {}

    def one_by_one() -> None:
        mask = None
        for rx in PII_PATTERNS.values():
            m = col.str.contains(rx)
            mask = m if mask is None else (mask | m)
        hits["list"] = mask

    def combined() -> None:
        hits["any"] = col.str.contains(PII_ANY)

    _timed(f"{len(PII_PATTERNS)} patterns, one by one", one_by_one)
    _timed("PII_ANY, one scan", combined)
    print(f"  same rows flagged: {bool((hits['list'] == hits['any']).all())}")


if __name__ == "__main__":
    main()
