"""Precision/recall per entity type on tests/data/pii_corpus.jsonl: Presidio as shipped vs tokumei.

Run: ``uv run python bench/pii_eval.py [--no-ner] [--out bench/results/pii_eval.md]``

* "presidio": Presidio 2.2 default English recognizers, offline-configured (NoOp NLP engine
  instead of the en_core_web_lg download, so no NER; e-mail TLDs from tldextract's bundled
  snapshot). Its entity names are mapped onto ours (PHONE_NUMBER -> JP_PHONE, ...).
* "tokumei": ``TokumeiAnalyzer`` patterns; PERSON/LOCATION/ORGANIZATION with GiNZA (ner=True).

A prediction is a true positive when a gold span of the same type overlaps it. Each gold span
counts once for recall. Only the types in the corpus are scored.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from tokumei.anonymize.pii.analyzer import TokumeiAnalyzer, build_presidio_default_engine

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_corpus.jsonl"
PRESIDIO_MAP = {
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "JP_PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "URL": "URL",
    "PERSON": "PERSON",
    "US_PASSPORT": "JP_PASSPORT",
    "US_DRIVER_LICENSE": "JP_DRIVERS_LICENSE",
    "US_BANK_NUMBER": "JP_BANK_ACCOUNT",
    "LOCATION": "LOCATION",
}

Span = tuple[int, int, str]


def load_corpus(path: Path = CORPUS) -> list[dict]:
    """The corpus records."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def score(records: list[dict], predictions: list[list[Span]]) -> dict[str, dict[str, float]]:
    """Per-type tp/fp/fn, precision and recall."""
    types = {s["entity_type"] for r in records for s in r["spans"]}
    tp: dict[str, int] = defaultdict(int)
    fp: dict[str, int] = defaultdict(int)
    fn: dict[str, int] = defaultdict(int)
    for rec, preds in zip(records, predictions, strict=True):
        gold = [(s["start"], s["end"], s["entity_type"]) for s in rec["spans"]]
        for gs, ge, gt in gold:
            hit = any(pt == gt and ps < ge and gs < pe for ps, pe, pt in preds)
            fn[gt] += 0 if hit else 1
        for ps, pe, pt in preds:
            if pt not in types:
                continue
            if any(pt == gt and ps < ge and gs < pe for gs, ge, gt in gold):
                tp[pt] += 1
            else:
                fp[pt] += 1
    out: dict[str, dict[str, float]] = {}
    for t in sorted(types):
        p_den = tp[t] + fp[t]
        gold_n = sum(1 for r in records for s in r["spans"] if s["entity_type"] == t)
        out[t] = {
            "gold": gold_n,
            "tp": tp[t],
            "fp": fp[t],
            "fn": fn[t],
            "precision": tp[t] / p_den if p_den else float("nan"),
            "recall": (gold_n - fn[t]) / gold_n if gold_n else float("nan"),
        }
    return out


def unlabelled(records: list[dict], predictions: list[list[Span]]) -> dict[str, int]:
    """Findings per type the corpus does not label at all (``score`` leaves them out).

    Each is a false positive unless the corpus missed a value: the corpus labels no foreign
    phone numbers, so every ``PHONE_NUMBER`` here is one (issue 19 asks that the
    international recognizer add none to Japanese text).
    """
    types = {s["entity_type"] for r in records for s in r["spans"]}
    counts: dict[str, int] = defaultdict(int)
    for preds in predictions:
        for _, _, pt in preds:
            if pt not in types:
                counts[pt] += 1
    return dict(sorted(counts.items()))


def predict_tokumei(records: list[dict], ner: bool) -> list[list[Span]]:
    """tokumei findings per record (language from the script)."""
    analyzer = TokumeiAnalyzer(ner=ner)
    found = analyzer.analyze_batch([r["text"] for r in records], "auto")
    return [[(f.start, f.end, f.entity_type) for f in fs] for fs in found]


def predict_presidio(records: list[dict]) -> list[list[Span]]:
    """Presidio-as-shipped findings (English engine, names mapped)."""
    engine = build_presidio_default_engine()
    out = []
    for r in records:
        res = engine.analyze(r["text"], language="en")
        keep = [x for x in res if x.entity_type in PRESIDIO_MAP]
        out.append([(x.start, x.end, PRESIDIO_MAP[x.entity_type]) for x in keep])
    return out


def to_markdown(presidio: dict, tokumei: dict) -> str:
    """Side-by-side table."""
    lines = [
        "| entity | gold | Presidio P | Presidio R | tokumei P | tokumei R | tokumei FP | FN |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in sorted(tokumei):
        p, k = presidio.get(t, {}), tokumei[t]
        lines.append(
            f"| {t} | {k['gold']} | {p.get('precision', float('nan')):.3f} | "
            f"{p.get('recall', 0.0):.3f} | {k['precision']:.3f} | {k['recall']:.3f} | "
            f"{k['fp']} | {k['fn']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Evaluate both and print (and optionally write) the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-ner", action="store_true", help="skip GiNZA (PERSON not scored)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    records = load_corpus()
    t0 = time.perf_counter()
    presidio = score(records, predict_presidio(records))
    t1 = time.perf_counter()
    predictions = predict_tokumei(records, ner=not args.no_ner)
    tokumei = score(records, predictions)
    t2 = time.perf_counter()
    table = to_markdown(presidio, tokumei)
    spans = sum(len(r["spans"]) for r in records)
    head = (
        f"corpus: {len(records)} records, {spans} labelled spans; "
        f"presidio {t1 - t0:.1f} s, tokumei {t2 - t1:.1f} s (ner={not args.no_ner})"
    )
    extra = (
        f"tokumei findings of types the corpus does not label: {unlabelled(records, predictions)}"
    )
    print(head)
    print(table)
    print(extra)
    if args.out:
        args.out.write_text(head + "\n\n" + table + "\n\n" + extra + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
