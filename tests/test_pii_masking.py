"""NER on masked texts: offsets map back exactly, pattern findings are untouched, NER runs once
per distinct masked text, and nothing the unmasked NER finds in the labelled corpus is lost.

Masking (``tokumei/anonymize/pii/masking.py``) replaces each pattern finding by ``<ENTITY>`` before
GiNZA reads the text, so texts that differ only in an identifier go through NER once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_bench
from hypothesis import given
from hypothesis import strategies as st

from tokumei.anonymize.pii import TokumeiAnalyzer
from tokumei.anonymize.pii.analyzer import NER_ENTITIES, ner_spans
from tokumei.anonymize.pii.masking import mask_spans
from tokumei.anonymize.pii.normalize import detect_language

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "pii_corpus.jsonl"


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, list[tuple[str, int, int]]]:
    text = draw(st.text(alphabet="あいう山田 -@x0123", min_size=0, max_size=40))
    n = len(text)
    spans = []
    for _ in range(draw(st.integers(0, 4))):
        a = draw(st.integers(0, n))
        b = draw(st.integers(0, n))
        spans.append((draw(st.sampled_from(["JP_PHONE", "EMAIL_ADDRESS"])), min(a, b), max(a, b)))
    return text, spans


@given(text_and_spans())
def test_unmasked_text_maps_back_exactly(case):
    """Every span of the masked text outside the tags maps to the same characters of the
    source; a span reaching into a tag covers that tag's whole source span."""
    text, spans = case
    m = mask_spans(text, spans)
    covered = [False] * len(text)
    for _, s, e in spans:
        for i in range(s, e):
            covered[i] = True
    # the characters outside the masked spans are kept, in order
    assert m.text.count("<") - text.count("<") == len(m.masks)
    assert "".join(c for c, cov in zip(text, covered, strict=True) if not cov) == "".join(
        ch for i, ch in enumerate(m.text) if not any(ms <= i < me for ms, me, _, _ in m.masks)
    )
    for start in range(len(m.text) + 1):
        for end in range(start + 1, len(m.text) + 1):
            src_s, src_e = m.to_source(start, end)
            touches = [mk for mk in m.masks if start < mk[1] and end > mk[0]]
            if not touches:
                assert text[src_s:src_e] == m.text[start:end]
            else:
                assert src_s <= touches[0][2] and src_e >= touches[-1][3]


def test_mask_example():
    m = mask_spans(
        "連絡先 a@b.jp と 090-1234-5678", [("EMAIL_ADDRESS", 4, 10), ("JP_PHONE", 13, 26)]
    )
    assert m.text == "連絡先 <EMAIL_ADDRESS> と <JP_PHONE>"
    assert m.to_source(0, 3) == (0, 3)
    assert m.to_source(m.text.index("と"), m.text.index("と") + 1) == (11, 12)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    corpus = [json.loads(line)["text"] for line in CORPUS.open(encoding="utf-8")]
    generated = load_bench("pii_scrub").inquiry_texts(150, seed=7)
    return generated + [t for t in corpus if detect_language(t) == "ja"]


def test_pattern_findings_are_the_same_with_and_without_the_mask(texts):
    masked = TokumeiAnalyzer(ner=True).analyze_batch(texts, "ja")
    plain = TokumeiAnalyzer(ner=True, mask_for_ner=False).analyze_batch(texts, "ja")
    for m, p in zip(masked, plain, strict=True):
        assert [f for f in m if f.entity_type not in NER_ENTITIES] == [
            f for f in p if f.entity_type not in NER_ENTITIES
        ]
    assert sum(1 for fs in masked for f in fs if f.entity_type == "PERSON") >= 100


def _counting_ner() -> tuple[list[list[str]], Any]:
    """A NER runner that records the distinct texts of each call, and those calls."""
    calls: list[list[str]] = []

    def counting(distinct: list[str], entities: list[str]) -> list:
        calls.append(distinct)
        return ner_spans(distinct, entities)

    return calls, counting


def test_ner_runs_once_per_distinct_masked_text():
    """Two inquiries that differ only in the phone number and e-mail: one NER pass, and the
    name is found in both."""
    calls, counting = _counting_ner()
    texts = [
        "山田太郎です。連絡先は090-1234-5678、taro@example.co.jp です。",
        "山田太郎です。連絡先は080-2222-3333、yamada.t@example.ne.jp です。",
    ]
    found = TokumeiAnalyzer(ner=True, ner_runner=counting).analyze_batch(texts, "ja")
    assert [len(c) for c in calls] == [1]
    assert "090" not in calls[0][0] and "<JP_PHONE>" in calls[0][0]
    for text, fs in zip(texts, found, strict=True):
        persons = [text[f.start : f.end] for f in fs if f.entity_type == "PERSON"]
        assert persons == ["山田太郎"]
        assert {f.entity_type for f in fs} >= {"JP_PHONE", "EMAIL_ADDRESS"}


def test_masking_loses_no_labelled_ner_span_of_the_corpus():
    """Every gold PERSON/LOCATION/ORGANIZATION span of the corpus that NER finds in the text as
    it is, NER also finds with the identifiers masked (measured: the same 58 of 60 names)."""
    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    texts = [r["text"] for r in records]
    gold = [
        {(s["start"], s["end"]) for s in r["spans"] if s["entity_type"] in NER_ENTITIES}
        for r in records
    ]

    def hits(found: list) -> set[tuple[int, int, int]]:
        return {
            (i, f.start, f.end)
            for i, fs in enumerate(found)
            for f in fs
            if f.entity_type in NER_ENTITIES and (f.start, f.end) in gold[i]
        }

    masked = hits(TokumeiAnalyzer(ner=True).analyze_batch(texts, "auto"))
    plain = hits(TokumeiAnalyzer(ner=True, mask_for_ner=False).analyze_batch(texts, "auto"))
    assert len(plain) >= 50
    assert plain <= masked


def test_texts_differing_in_an_order_number_go_through_ner_once():
    """A standalone run of 5+ digits reads as zeros of the same length (``zero_numbers``):
    inquiries that differ only in an order number share one NER pass; a user name keeps its
    digits (GiNZA tags some as PERSON), and a name next to the number is still found."""
    from tokumei.anonymize.pii.masking import zero_numbers

    assert zero_numbers("ORD-8337625949と1234と123456") == "ORD-0000000000と1234と000000"
    assert zero_numbers("naoto_okad2284 x12345 12345y") == "naoto_okad2284 x12345 12345y"
    calls, counting = _counting_ner()
    texts = [
        "山田太郎です。返品したいです。注文番号はORD-8337625949です。",
        "山田太郎です。返品したいです。注文番号はORD-1204417730です。",
    ]
    found = TokumeiAnalyzer(ner=True, ner_runner=counting).analyze_batch(texts, "ja")
    assert [len(c) for c in calls] == [1] and "ORD-0000000000" in calls[0][0]
    for text, fs in zip(texts, found, strict=True):
        assert [text[f.start : f.end] for f in fs if f.entity_type == "PERSON"] == ["山田太郎"]
