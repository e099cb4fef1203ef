"""Experiment (not adopted): also mask ASCII id-like tokens before NER, not only pattern findings.

    uv run python bench/ner_mask_ids.py 2000     # generated inquiry texts: CPU and lost findings
    uv run python bench/ner_mask_ids.py corpus   # labelled corpus: NER precision / recall

Id-like = a run of ``[A-Za-z0-9_.-]`` of 4+ characters with a letter and >= 3 digits (order
numbers ``ORD-8337625949``, user names ``naoto_okad2284``). Masking them would merge more
distinct texts before NER, but GiNZA tags some user names as PERSON, so they would no longer be
scrubbed (bench/results/pii.md). ``TokumeiAnalyzer._ner`` is replaced in this process only.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import tokumei.anonymize.pii.analyzer as A  # noqa: E402
from tokumei.anonymize.pii.masking import mask_spans  # noqa: E402
from tokumei.anonymize.pii.normalize import detect_language  # noqa: E402
from tokumei.anonymize.pii.scrub import default_entities  # noqa: E402

_RUN = re.compile(r"[A-Za-z0-9_\-.]{4,}")
_PATTERN_MASK = A.TokumeiAnalyzer._ner


def id_spans(text: str) -> list[tuple[str, int, int]]:
    """Id-like ASCII tokens of ``text`` as mask spans."""
    out = []
    for m in _RUN.finditer(text):
        v = m.group()
        if sum(c.isdigit() for c in v) >= 3 and any(c.isalpha() for c in v):
            out.append(("ID", m.start(), m.end()))
    return out


def _ner_with_ids(self, norms, patterns, ner_ents):  # noqa: ANN001, ANN202 - same as _ner
    masked = [
        mask_spans(n.text, [r[:3] for r in p] + id_spans(n.text))
        for n, p in zip(norms, patterns, strict=True)
    ]
    distinct = list(dict.fromkeys(m.text for m in masked))
    by_text = dict(zip(distinct, A.ner_spans(distinct, ner_ents), strict=True))
    return [[(e, *m.to_source(s, t), sc) for e, s, t, sc in by_text[m.text]] for m in masked]


def run(texts: list[str], ids: bool) -> tuple[list[list[A.Finding]], float]:
    """Findings and CPU seconds with the pattern mask, or pattern + id mask."""
    A.TokumeiAnalyzer._ner = _ner_with_ids if ids else _PATTERN_MASK
    analyzer = A.TokumeiAnalyzer(ner=True)
    t0 = time.process_time()
    found = analyzer.analyze_batch(texts, "auto", default_entities(True))
    return found, time.process_time() - t0


def main() -> None:
    """``corpus`` or a number of generated texts."""
    if sys.argv[1] == "corpus":
        import pii_eval

        recs = pii_eval.load_corpus()
        for ids in (False, True):
            found, _ = run([r["text"] for r in recs], ids)
            spans = [[(f.start, f.end, f.entity_type) for f in fs] for fs in found]
            sc = pii_eval.score(recs, spans)
            ner = {k: (v["precision"], v["recall"]) for k, v in sc.items() if k in A.NER_ENTITIES}
            print(f"id mask {ids}: NER precision/recall {ner}")
        return
    from pii_scrub import inquiry_texts

    texts = [t for t in inquiry_texts(int(sys.argv[1])) if detect_language(t) == "ja"]
    A.ner_engine()
    run(texts[:20], False)  # warm-up
    (plain, cpu_p), (masked, cpu_m) = run(texts, False), run(texts, True)
    changed, lost, gained = 0, [], 0
    for text, x, y in zip(texts, plain, masked, strict=True):
        if A.replace_spans(text, x) == A.replace_spans(text, y):
            continue
        changed += 1
        xs = {(f.entity_type, f.start, f.end) for f in x if f.entity_type in A.NER_ENTITIES}
        ys = {(f.entity_type, f.start, f.end) for f in y if f.entity_type in A.NER_ENTITIES}
        lost += [ty for ty, _, _ in xs - ys]
        gained += len(ys - xs)
    print(
        f"texts {len(texts)}: CPU pattern mask {cpu_p:.1f} s, + id mask {cpu_m:.1f} s; "
        f"texts scrubbed differently {changed}; NER findings lost {len(lost)} "
        f"({', '.join(sorted(set(lost)))}), gained {gained}"
    )


if __name__ == "__main__":
    main()
