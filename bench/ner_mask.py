"""NER on masked texts (pattern findings read ``<JP_PHONE>`` …) vs on the texts as they are.

    uv run python bench/ner_mask.py [--texts 3000] [--parquet day.parquet --column inquiry_text]

The scrubber runs GiNZA once per distinct text. With ``mask_for_ner`` (``masking.py``) it runs
once per distinct *masked* text, so texts that differ only in their identifiers share one NER
pass. This script measures, on the same texts, in one process (one BLAS thread, the model
loaded and warmed up first):

* distinct NER inputs and CPU seconds of ``TokumeiAnalyzer(ner=True).analyze_batch`` with and
  without the mask;
* how the findings differ: texts whose scrubbed output differs, NER findings (type, span) only
  the unmasked run has ("lost") and only the masked run has ("gained"), and whether each lost
  span is still scrubbed in the masked output (covered by another finding).

Texts: ``--texts`` distinct generated inquiry texts (``pii_scrub.inquiry_texts``), or the
distinct non-null values of ``--column`` in a Parquet file (e.g. a 10M-event day's work layer;
nothing from it is printed but counts). ``--count-only`` skips NER and prints how many distinct
texts NER would read with and without the mask.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Run both variants on the same texts and print counts."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--parquet", type=Path)
    ap.add_argument("--column", default="inquiry_text")
    ap.add_argument("--limit", type=int, default=0, help="first N distinct values (0 = all)")
    ap.add_argument(
        "--count-only",
        action="store_true",
        help="only count distinct NER inputs with and without the mask (no NER runs)",
    )
    args = ap.parse_args()

    import polars as pl

    from tokumei.anonymize.pii.analyzer import (
        NER_ENTITIES,
        TokumeiAnalyzer,
        ner_engine,
        replace_spans,
    )
    from tokumei.anonymize.pii.normalize import detect_language
    from tokumei.anonymize.pii.scrub import default_entities

    if args.parquet:
        texts = (
            pl.scan_parquet(args.parquet)
            .select(pl.col(args.column).drop_nulls().unique().sort())
            .collect()
            .to_series()
            .to_list()
        )
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from pii_scrub import inquiry_texts

        texts = inquiry_texts(args.texts)
    if args.limit:
        texts = texts[: args.limit]
    texts = [t for t in texts if detect_language(t) == "ja"]
    ents = default_entities(True)
    if args.count_only:
        seen: list[int] = []

        def count(distinct: list[str], _: list[str]) -> list[list[tuple[str, int, int, float]]]:
            seen.append(len(distinct))
            return [[] for _ in distinct]

        for mask in (False, True):
            TokumeiAnalyzer(ner=True, mask_for_ner=mask, ner_runner=count).analyze_batch(
                texts, "ja", ents
            )
        print(
            f"texts: {len(texts):,} distinct Japanese; NER inputs unmasked {seen[0]:,}, masked {seen[1]:,}"
        )
        return
    ner_engine()
    TokumeiAnalyzer(ner=True).analyze_batch(
        ["山田太郎です。東京都に住んでいます。"] * 8, "ja", ents
    )

    inputs: dict[bool, int] = {}

    def counting(mask: bool):  # noqa: ANN202 - local helper
        from tokumei.anonymize.pii.analyzer import ner_spans

        def run(distinct: list[str], wanted: list[str]) -> list[list[tuple[str, int, int, float]]]:
            inputs[mask] = inputs.get(mask, 0) + len(distinct)
            return ner_spans(distinct, wanted)

        return run

    results = {}
    cpu = {}
    for mask in (False, True):
        analyzer = TokumeiAnalyzer(ner=True, mask_for_ner=mask, ner_runner=counting(mask))
        t0 = time.process_time()
        results[mask] = analyzer.analyze_batch(texts, "ja", ents)
        cpu[mask] = time.process_time() - t0

    changed = lost = gained = lost_uncovered = 0
    for text, plain, masked in zip(texts, results[False], results[True], strict=True):
        if replace_spans(text, plain) != replace_spans(text, masked):
            changed += 1
        p_ner = {(f.entity_type, f.start, f.end) for f in plain if f.entity_type in NER_ENTITIES}
        m_ner = {(f.entity_type, f.start, f.end) for f in masked if f.entity_type in NER_ENTITIES}
        lost += len(p_ner - m_ner)
        gained += len(m_ner - p_ner)
        for _, s, e in p_ner - m_ner:
            if not any(f.start <= s and e <= f.end for f in masked):
                lost_uncovered += 1
    n_ner = sum(1 for r in results[False] for f in r if f.entity_type in NER_ENTITIES)
    print(f"texts: {len(texts):,} distinct Japanese; NER findings unmasked: {n_ner:,}")
    for mask in (False, True):
        label = "masked  " if mask else "unmasked"
        print(
            f"  {label}: NER inputs {inputs[mask]:,}, CPU {cpu[mask]:.1f} s "
            f"({1000 * cpu[mask] / len(texts):.2f} ms/text)"
        )
    print(f"  CPU ratio unmasked/masked: {cpu[False] / cpu[True]:.2f}x")
    print(f"  texts with a different scrubbed output: {changed:,}")
    print(
        f"  NER findings lost: {lost:,} (of which not covered by another finding: "
        f"{lost_uncovered:,}); gained: {gained:,}"
    )


if __name__ == "__main__":
    main()
