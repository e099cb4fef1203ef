"""Re-run one pipeline step on a kept work layer, to compare two versions of a step side by side.

    # once: run start .. the step before STEP on the landing, keep the work layer
    uv run python bench/step_rerun.py prep --landing /tmp/scale/landing --root /tmp/scr --upto scrub
    # then, alternately, with the code of each checkout (same work layer, same key)
    /work/main/.venv/bin/python /work/main/bench/step_rerun.py step scrub --root /tmp/scr
    /work/wt/.venv/bin/python /work/wt/bench/step_rerun.py step scrub --root /tmp/scr
    # the same step under another policy (e.g. ner: false on inquiry_text)
    uv run python bench/step_rerun.py step scrub --root /tmp/scr --policy /tmp/policy_noner
    # planted PII values (generator's list) left in a scrubbed text column
    uv run python bench/step_rerun.py leaks --root /tmp/scr --landing /tmp/scale/landing

Why: a whole ``bench/scale_10m.py`` run takes ~6-8 minutes and mixes every step's noise; a
step's fix is measured by re-running just that step, under the same load, with both versions.
The code imported is that of the checkout the script lives in. The pseudonym key is drawn once
at ``prep`` and stored in ``<root>/key`` (a benchmark key, not a secret store); prints the
step's wall seconds and its record (counts only).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-24"


def _settings(landing: Path, root: Path, partitions: int, policy: Path | None = None):  # noqa: ANN202 - lazy import
    from tokumei.infra.settings import Settings, default_policy_dir

    return Settings(
        landing=landing,
        db_url=f"sqlite:///{landing / 'ops.db'}",
        out=root / "out",
        partitions=partitions,
        policy_dir=policy or default_policy_dir(),
    ).resolved()


def main() -> None:
    """``prep``, ``step NAME`` or ``leaks``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=("prep", "step", "leaks"))
    ap.add_argument("name", nargs="?", help="the step to run (command 'step')")
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--root", type=Path, default=Path("/tmp/scr"))
    ap.add_argument("--upto", default="scrub", help="prep runs the steps before this one")
    ap.add_argument("--column", default="inquiry_text", help="column checked by 'leaks'")
    ap.add_argument("--partitions", type=int, default=1, help="person-hash partitions")
    ap.add_argument("--policy", type=Path, help="another policy directory (e.g. without NER)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TOKUMEI_PII_WORKERS", "2")
    from tokumei.pipeline import steps

    key_file = args.root / "key"
    if args.command == "prep":
        args.root.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = key_file.read_text().strip()
    settings = _settings(args.landing, args.root, args.partitions, args.policy)
    if args.command == "prep":
        run_id = steps.new_run_id(DAY)
        steps.start(settings, DAY, run_id=run_id)
        for name, fn in steps.STEPS:
            if name == args.upto:
                break
            t0 = time.perf_counter()
            fn(settings, DAY, run_id)
            print(f"{name} {time.perf_counter() - t0:.1f} s", flush=True)
        (args.root / "run_id").write_text(run_id)
        return
    run_id = (args.root / "run_id").read_text().strip()
    if args.command == "step":
        t0 = time.perf_counter()
        record = dict(steps.STEPS)[args.name](settings, DAY, run_id)
        print(f"{args.name} {time.perf_counter() - t0:.1f} s", flush=True)
        print(json.dumps(record, ensure_ascii=False, default=str)[:4000])
        return
    import polars as pl

    planted = pl.read_csv(
        args.landing / "_generator" / "planted_pii.txt",
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["v"],
    ).get_column("v")
    planted = planted.filter(planted.str.len_chars() >= 2).unique()
    scrubbed = args.root / "out" / "_work" / run_id / "scrubbed" / "events" / "part-0000.parquet"
    texts = pl.scan_parquet(scrubbed).select(pl.col(args.column).drop_nulls().unique()).collect()
    hits = texts.filter(pl.col(args.column).str.contains_any(planted.to_list())).height
    print(f"distinct scrubbed values: {texts.height:,}; holding a planted PII value: {hits:,}")


if __name__ == "__main__":
    main()
