"""Cost of single column expressions on the 10M-event day (which column makes a step slow).

    uv run python bench/column_costs.py [--root /tmp/scr] [--landing /tmp/scale/landing]

Two parts, each timing one expression at a time:

1. **generalize**: each output of the compiled events plan (tokumei/anonymize/compile.py: the
   hierarchy and level the policy names) over the typed rows of the first events landing file,
   sunk to a scratch Parquet file, beside a plain copy of one string column (the I/O floor). The
   hierarchies read the raw quasi-identifiers, so the typed landing rows are their real input
   (since the one-pass ingest there is no pseudonymized layer on disk to read them from).
2. **validate**: GX's PII check on the anonymized dataset's ``url_template`` column, as pandas
   runs it (``str.contains`` on the Arrow-backed column): once per pattern of ``PII_PATTERNS``
   (OR-ed) against once with the combined ``PII_ANY``; both must flag the same rows. Needs a work
   layer kept by ``bench/step_rerun.py prep`` and ``step ... anonymize_records``.
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
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    args = ap.parse_args()

    from datetime import date

    import polars as pl

    from tokumei.anonymize.compile import compile_policy
    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.expectations.patterns import PII_ANY, PII_PATTERNS
    from tokumei.expectations.runner import to_validation_frame
    from tokumei.ingest.sources import read_landing_file

    policy = load_policy(default_policy_dir())
    first = sorted((args.landing / "events").rglob("*.jsonl*"))[0]
    args.root.mkdir(parents=True, exist_ok=True)
    src = args.root / "column_costs_input.parquet"
    read_landing_file(first, policy.source("events"))[0].write_parquet(src)
    plan = compile_policy(policy, ("events",))["events"]
    exprs = {"copy user_agent (I/O floor)": pl.col("user_agent")}
    exprs |= {g.output: g.expr(date(2026, 11, 24)) for g in plan.generalizations}
    rows = pl.scan_parquet(src).select(pl.len()).collect().item()
    print(f"generalize: one expression at a time over {rows:,} events -> scratch Parquet")
    scratch = args.root / "column_costs.parquet"
    for name, expr in exprs.items():
        _timed(name, lambda e=expr: pl.scan_parquet(src).select(e.alias("x")).sink_parquet(scratch))
    scratch.unlink(missing_ok=True)

    run_id_file = args.root / "run_id"
    work = (
        args.root / "out" / "_work" / run_id_file.read_text().strip()
        if run_id_file.exists()
        else args.root
    )
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
