"""The Polars prefilter is a superset of what the recognizers match (hypothesis + corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymize.pii import TokumeiAnalyzer
from anonymize.pii.prefilter import candidate_expr

CORPUS = Path(__file__).parent / "data" / "pii_corpus.jsonl"
ANALYZER = TokumeiAnalyzer()


def prefilter(values: list[str]) -> list[bool]:
    return (
        pl.DataFrame({"v": values}, schema={"v": pl.String})
        .select(candidate_expr(pl.col("v")))["v"]
        .to_list()
    )


ENTITY_SAMPLES = [
    "taro@example.co.jp",
    "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
    "090-1234-5678",
    "０３（１２３４）５６７８",
    "+81 (0)3 1234 5678",
    "0120-123-456",
    "1234 5678 9018",
    "7000012050002",
    "〒150-0002",
    "TK1234567",
    "AB12345678CD",
    "4111-1111-1111-1111",
    "192.168.0.1",
    "１９２．１６８．０．１",
    "::1",
    "fe80::1",
    "https://ex.com/a",
    "ＨＴＴＰＳ：／／ｅｘ．ｃｏｍ",
    "www.example.com",
    "ＷＷＷ．ｅｘａｍｐｌｅ．ｃｏｍ",
    "1234567",
]
CONTEXT = [
    "マイナンバー",
    "電話",
    "口座番号",
    "運転免許証",
    "郵便番号",
    "パスポート",
    "在留カード",
    "〒",
]
NOISE = st.text(
    alphabet=st.sampled_from(
        list("0123456789０１２３４５６７８９-－ー‐ .．:：/／@＠wWｗ()（）〒あア漢①⑩⒈…aAfF+")
    ),
    max_size=20,
)
TEXT = st.lists(
    st.one_of(NOISE, st.sampled_from(ENTITY_SAMPLES), st.sampled_from(CONTEXT)), max_size=5
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_prefilter_superset_of_recognizers(texts):
    flags = prefilter(texts)
    findings = ANALYZER.analyze_batch(texts, "ja")
    for _text, flag, found in zip(texts, flags, findings, strict=True):
        if found:
            assert flag, f"prefilter missed a value with {[f.entity_type for f in found]}"


def test_prefilter_superset_on_corpus():
    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    texts = [r["text"] for r in records]
    flags = prefilter(texts)
    for _text, flag, found in zip(texts, flags, ANALYZER.analyze_batch(texts), strict=True):
        assert flag or not found
    labelled = [f for r, f in zip(records, flags, strict=True) if r["spans"]]
    non_person = [
        f
        for r, f in zip(records, flags, strict=True)
        if r["spans"] and r["spans"][0]["entity_type"] != "PERSON"
    ]
    assert all(non_person) and len(labelled) > len(non_person)


def test_prefilter_is_selective():
    plain = [
        "渋谷 カフェ",
        "価格は3,980円",
        "2024年5月1日",
        "営業時間10:00〜19:00",
        "こんにちは",
        None,
    ]
    assert prefilter(plain) == [False] * len(plain)
