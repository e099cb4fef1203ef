"""k-map and δ-presence on Adult: a seeded 10 % sample against the whole file as population.

What the population models cost next to plain k-anonymity on the same sample (8 QIs, 5 %
suppression): the chosen transformation, suppressed records, granularity loss, nodes evaluated
and CPU/wall seconds. k-map prunes like k (monotone); δ-presence with ``d_min > 0`` and a limit is
not monotone, so its search tags only from k (docs/adr/0005-kanon-quality-models.md, point 6).

    uv run python bench/kanon_population.py [--repeat 3] [--out bench/results/kanon_population.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kanon_adult import QIS  # noqa: E402  (the same 8 Adult QIs as the main Adult bench)

from tokumei.anonymize.hierarchy_csv import load_hierarchies  # noqa: E402
from tokumei.anonymize.kanon import anonymize  # noqa: E402

SETTINGS: list[tuple[str, dict]] = [
    ("k-anonymity k=5 (no population)", {"k": 5}),
    ("k-map k=5", {"k": 1, "k_map": 5}),
    ("k-map k=20", {"k": 1, "k_map": 20}),
    ("k=2 + δ-presence δ ≤ 0.2", {"k": 2, "delta_max": 0.2}),
    ("k=2 + δ-presence 0.05 ≤ δ ≤ 0.2", {"k": 2, "delta_min": 0.05, "delta_max": 0.2}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kanon_population.md")
    args = ap.parse_args()
    shared = os.environ.get("TOKUMEI_SHARED")
    d = ((Path(shared) if shared else ROOT / ".." / "shared") / "data" / "adult").resolve()
    population = pl.read_csv(d / "adult.csv", separator=";", infer_schema=False)
    sample = population.sample(fraction=0.1, seed=0)
    hs = load_hierarchies(d, QIS)
    rows = []
    for name, kw in SETTINGS:
        pop = population if "k_map" in kw or "delta_max" in kw else None
        walls, cpus = [], []
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            r = anonymize(sample.select(QIS), hs, max_suppression=0.05, population=pop, **kw)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        m = r.metrics
        rows.append(
            f"| {name} | {list(r.transformation.values())} | {m['suppressed']} | "
            f"{m['granularity_loss']:.4f} | {r.search['evaluated']:,} | "
            f"{statistics.median(cpus):.2f} | {statistics.median(walls):.2f} |"
        )
        print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    text = "\n".join(
        [
            "# k-map and δ-presence on Adult (bench/kanon_population.py)",
            "",
            f"Sample: a seeded 10 % of Adult ({sample.height:,} of {population.height:,} "
            "records, `DataFrame.sample(fraction=0.1, seed=0)`); population: the whole file. "
            f"8 QIs ({', '.join(QIS)}), 5 % suppression, granularity loss; "
            f"{r.search['nodes']:,} lattice nodes. Median of {args.repeat} runs in one process "
            f"on the shared 2-core host (load {load:.1f} at the end).",
            "",
            "| models | transformation | suppressed | loss | evaluated | CPU s | wall s |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
