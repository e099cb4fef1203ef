"""NER once per distinct *sentence* vs once per distinct masked text (measured, not adopted).

    uv run python bench/ner_sentences.py [--texts 2000]

The masked texts (``masking.py``) of ``--texts`` distinct generated inquiry texts
(``pii_scrub.inquiry_texts``) go through ``ner_spans`` whole, then split after 。！？ with each
distinct sentence through ``ner_spans`` once and the spans shifted back. Prints the sizes, the
CPU seconds of both and the NER spans (type, start, end) found by one way only, with examples.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def main() -> None:
    """Compare both ways on the same masked texts and print counts."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=2000)
    args = ap.parse_args()

    from pii_scrub import inquiry_texts

    import tokumei.anonymize.pii.analyzer as an

    masked: list[str] = []

    def capture(texts: list[str], entities: list[str]) -> list[list]:
        masked.extend(texts)
        return [[] for _ in texts]

    texts = inquiry_texts(args.texts)
    an.TokumeiAnalyzer(ner=True, ner_runner=capture).analyze_batch(texts, "auto", an.ALL_ENTITIES)
    an.ner_spans(masked[:50])  # load and warm up
    t0 = time.process_time()
    whole = [sorted((e, s, t) for e, s, t, _ in f) for f in an.ner_spans(masked)]
    cpu_whole = time.process_time() - t0
    pieces: list[list[tuple[int, str]]] = []
    for text in masked:
        pos, parts = 0, []
        for sentence in SENTENCE_END.split(text):
            if sentence:
                parts.append((pos, sentence))
                pos += len(sentence)
        pieces.append(parts)
    distinct = list(dict.fromkeys(s for parts in pieces for _, s in parts))
    t0 = time.process_time()
    by_sentence = dict(zip(distinct, an.ner_spans(distinct), strict=True))
    cpu_sentences = time.process_time() - t0
    split = [
        sorted((e, p + s, p + t) for p, snt in parts for e, s, t, _ in by_sentence[snt])
        for parts in pieces
    ]
    print(
        f"masked texts {len(masked):,} ({sum(map(len, masked)):,} chars); distinct sentences "
        f"{len(distinct):,} ({sum(map(len, distinct)):,} chars)"
    )
    print(f"NER CPU s: per text {cpu_whole:.1f}, per sentence {cpu_sentences:.1f}")
    lost = gained = 0
    for text, a, b in zip(masked, whole, split, strict=True):
        only_a, only_b = set(a) - set(b), set(b) - set(a)
        lost += len(only_a)
        gained += len(only_b)
        if only_a:
            print("  per text only:", [f"{text[s:t]}:{e}" for e, s, t in sorted(only_a)])
    print(f"spans found per text only: {lost}; per sentence only: {gained}")


if __name__ == "__main__":
    main()
