"""The direct recognizer path gives exactly the findings of Presidio's AnalyzerEngine path.

``TokumeiAnalyzer`` (default, ``direct=True``) runs the pattern engine's recognizers without
the engine; ``direct=False`` runs them through ``AnalyzerEngine``. Findings (type, original
offsets, score) must be identical: on the labelled corpus, on generated texts (in
``test_pii_prefilter.py``, which shares its examples with the superset test) and on a sample
of the scrubbing benchmark's column.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_bench

from tokumei.anonymize.pii import TokumeiAnalyzer

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "pii_corpus.jsonl"


@pytest.fixture(scope="module")
def corpus_texts() -> list[str]:
    return [json.loads(line)["text"] for line in CORPUS.open(encoding="utf-8")]


@pytest.mark.parametrize("threshold", [0.0, 0.7])
@pytest.mark.parametrize("language", ["auto", "ja", "en"])
def test_direct_equals_engine_on_corpus(corpus_texts, language, threshold):
    direct = TokumeiAnalyzer(score_threshold=threshold).analyze_batch(corpus_texts, language)
    engine = TokumeiAnalyzer(score_threshold=threshold, direct=False).analyze_batch(
        corpus_texts, language
    )
    assert direct == engine
    assert sum(map(len, direct)) > 400  # the corpus is full of entities: this compares a lot


def test_direct_equals_engine_with_entity_subsets(corpus_texts):
    for entities in (["URL"], ["EMAIL_ADDRESS", "JP_PHONE"], ["JP_MY_NUMBER", "PERSON"], []):
        direct = TokumeiAnalyzer().analyze_batch(corpus_texts, "auto", entities)
        engine = TokumeiAnalyzer(direct=False).analyze_batch(corpus_texts, "auto", entities)
        assert direct == engine, entities


def test_direct_equals_engine_on_benchmark_sample():
    bench = load_bench("pii_scrub")
    sample = bench.make_column(100_000).sample(n=10_000, seed=3).to_list()
    direct = TokumeiAnalyzer().analyze_batch(sample, "ja")
    engine = TokumeiAnalyzer(direct=False).analyze_batch(sample, "ja")
    assert direct == engine
    assert sum(1 for f in direct if f) >= 70  # ~1% of the rows carry PII
