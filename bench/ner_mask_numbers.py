"""NER inputs with standalone digit runs zeroed (``masking.zero_numbers``) vs as they were.

    uv run python bench/ner_mask_numbers.py day [--texts-file /tmp/ner_pipe_texts.json] [--every 1]
    uv run python bench/ner_mask_numbers.py corpus

``day``: the distinct texts the scrub step of a 10M-event day handed to NER before the change
(``bench/ner_pipe.py texts``, pattern findings masked), each ``--every``-th. NER (``ner_spans``,
one process, one BLAS thread) runs on them as they are, and once per distinct text after
``zero_numbers``; prints distinct inputs, CPU seconds, and the PERSON / LOCATION / ORGANIZATION
findings (type, start, end: the zeroing keeps offsets) that only one side has, by type.

``corpus``: ``bench/pii_eval.py``'s scoring of ``TokumeiAnalyzer(ner=True)`` on
tests/data/pii_corpus.jsonl with and without the zeroing (``zero_numbers`` replaced by the
identity in this process for "without").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import tokumei.anonymize.pii.analyzer as A  # noqa: E402
from tokumei.anonymize.pii.masking import zero_numbers  # noqa: E402


def day(texts_file: Path, every: int) -> None:
    """Distinct inputs, CPU and findings that differ, on the day's NER inputs."""
    texts = json.loads(texts_file.read_text())
    zeroed_all = {zero_numbers(t) for t in texts}
    print(f"day: {len(texts):,} distinct NER inputs, {len(zeroed_all):,} after zero_numbers")
    texts = texts[::every]
    A.ner_spans(texts[:50])  # load and warm up
    t0 = time.process_time()
    plain = A.ner_spans(texts)
    cpu_plain = time.process_time() - t0
    zeroed = [zero_numbers(t) for t in texts]
    distinct = list(dict.fromkeys(zeroed))
    t0 = time.process_time()
    by_text = dict(zip(distinct, A.ner_spans(distinct), strict=True))
    cpu_zeroed = time.process_time() - t0
    lost: Counter[str] = Counter()
    gained: Counter[str] = Counter()
    changed = 0
    for p, z in zip(plain, zeroed, strict=True):
        ps, zs = {f[:3] for f in p}, {f[:3] for f in by_text[z]}
        changed += ps != zs
        lost.update(e for e, _, _ in ps - zs)
        gained.update(e for e, _, _ in zs - ps)
    total = Counter(f[0] for fs in plain for f in fs)
    print(f"texts {len(texts):,} (every {every}); NER inputs {len(texts):,} -> {len(distinct):,}; "
          f"CPU {cpu_plain:.1f} -> {cpu_zeroed:.1f} s; findings as they were {dict(total)}; "
          f"texts whose NER findings differ {changed}; lost {dict(lost)}; gained {dict(gained)}; "
          f"load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip


def corpus() -> None:
    """NER precision and recall on the labelled corpus, with and without the zeroing."""
    import pii_eval

    recs = pii_eval.load_corpus()
    for on in (False, True):
        A.zero_numbers = zero_numbers if on else (lambda text: text)
        found = A.TokumeiAnalyzer(ner=True).analyze_batch([r["text"] for r in recs], "auto")
        spans = [[(f.start, f.end, f.entity_type) for f in fs] for fs in found]
        sc = pii_eval.score(recs, spans)
        print(f"zero_numbers {on}: " + "; ".join(
            f"{k} P {v['precision']:.3f} R {v['recall']:.3f} FN {v['fn']}"
            for k, v in sorted(sc.items()) if k in A.NER_ENTITIES or v["fn"] or v["fp"]
        ))  # fmt: skip


def main() -> None:
    """``day`` or ``corpus``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=("day", "corpus"))
    ap.add_argument("--texts-file", type=Path, default=Path("/tmp/ner_pipe_texts.json"))
    ap.add_argument("--every", type=int, default=1)
    args = ap.parse_args()
    if args.command == "day":
        day(args.texts_file, args.every)
    else:
        corpus()


if __name__ == "__main__":
    main()
