"""The Polars prefilter is a superset of what the recognizers match (hypothesis + corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokumei.anonymize.pii import TokumeiAnalyzer
from tokumei.anonymize.pii import analyzer as analyzer_module
from tokumei.anonymize.pii.prefilter import (
    ENTITY_RULES,
    RECOGNIZER_PATTERNS_SHA256,
    candidate_expr,
    entity_candidates,
    recognizer_patterns_digest,
)
from tokumei.anonymize.pii.recognizers import PATTERN_ENTITIES

CORPUS = Path(__file__).parent / "data" / "pii_corpus.jsonl"
ANALYZER = TokumeiAnalyzer()
ENGINE = TokumeiAnalyzer(direct=False)


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
    "口座 1234567",
    "３７８２－８２２４６３－１０００５",
    "3782 822463 10005",
    "T7000012050002",
    "+81-90-1234-5678",
    "＋８１ ９０ １２３４ ５６７８",
    "+81 - (0) 3-1234-5678",
    "(03)1234-5678",
    "+81 3 12 34 56 78",
    "0120 12 34 56",
    "0120-12-3456",
    "0３ー１２３４ー５６７８",
    "在留カードＡＢ１２３４５６７８ＣＤ",
    "東京都文京区後楽28-11-27 パレス432",
    "大阪府大阪市北区梅田一丁目２番３号",
    "北海道札幌市中央区北一条西2丁目",
    "ユーザー名 kathleen_carp1296",
    "ユーザー名はｆｕｊｉｉ３２５７",
    "ｱｶｳﾝﾄ名： yamada.t",
    "username: taro_y",
    "my name is Joseph Roberts",
    "Regards, Mary-Jane",
    "ＭＹ ＮＡＭＥ ＩＳ Ｊｏｅ",
    "Maria Chenと申します",
    "Timothy Anderson様の代理",
    "microsoft.com",
    "ｍｉｃｒｏｓｏｆｔ．ｃｏｍ",
    "google.co.il/path",
    "a@xn--d1acufc.xn--p1ai",
    "user@пример.рф",
    "+1 415 555 0132",
    "＋４４ (20) 7123 4567",
    "(415) 555-0132",
    "09-7625400",
    "fe80::1%eth0/64",
    "192.168.1.0/24",
    "::",
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
    "住所",
    "ユーザー名は",
    "Hello, my name is ",
    "phone ",
]
NOISE = st.text(
    alphabet=st.sampled_from(
        list(
            "0123456789０１２３４５６７８９-－ー‐ .．:：/／@＠wWｗ()（）〒あア漢①⑩⒈…aAfF+＋"
            "都道府県市区町丁目番号東京大阪北海ﾕｰｻﾞ名ログイＩＤｱｶｳﾝﾄ"
            "JRmyneisIaNMEgd,'ｍＪ\u3000様さん氏とすで申"
            "comxnjpｃｏ㎝㏂%/"
        )
    ),
    max_size=20,
)
# Digit groups joined by runs of (widened) separators: the shapes the digit rules of the
# prefilter are about, with enough digits that phone / My Number / card / postal validators
# sometimes accept them (so the superset property is tested near each shape's boundary).
DIGIT = st.sampled_from(list("0123456789０１２３４５６７８９"))
SEP = st.sampled_from(list("-－ー‐− .．()（）\u3000"))
GROUP = st.tuples(
    st.text(alphabet=DIGIT, min_size=1, max_size=7), st.text(alphabet=SEP, max_size=3)
).map("".join)
DIGITS = st.tuples(
    st.sampled_from(["", "0", "〒", "+81", "＋８１ ", "(0", "T", "TK", "AB", "+1 ", "+", "＋"]),
    st.lists(GROUP, min_size=1, max_size=5).map("".join),
).map("".join)
TEXT = st.lists(
    st.one_of(NOISE, DIGITS, st.sampled_from(ENTITY_SAMPLES), st.sampled_from(CONTEXT)),
    max_size=5,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_prefilter_superset_of_recognizers(texts):
    flags = prefilter(texts)
    findings = ANALYZER.analyze_batch(texts, "ja")
    # the direct recognizer path (ANALYZER) finds exactly what Presidio's engine finds
    assert findings == ENGINE.analyze_batch(texts, "ja")
    assert ANALYZER.analyze_batch(texts, "en") == ENGINE.analyze_batch(texts, "en")
    for _text, flag, found in zip(texts, flags, findings, strict=True):
        if found:
            assert flag, f"prefilter missed a value with {[f.entity_type for f in found]}"


def test_entity_samples_are_found_and_flagged():
    texts = [f"{c}{e}" for e in ENTITY_SAMPLES for c in CONTEXT]
    found = ANALYZER.analyze_batch(texts, "ja")
    assert all(prefilter(texts))
    # every sample is a real entity under some context (else it would not test anything)
    for i, sample in enumerate(ENTITY_SAMPLES):
        assert any(found[i * len(CONTEXT) + j] for j in range(len(CONTEXT))), sample


def test_digit_shapes_pinned_to_recognizer_patterns():
    # The digit rules in prefilter.py were derived from the recognizer regexes by hand. If a
    # pattern changes, re-check the shapes in the prefilter module doc, then update the digest.
    assert recognizer_patterns_digest() == RECOGNIZER_PATTERNS_SHA256


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
        "配送日 2024-05-03 12:00",
        "2024/05/03 注文 123",
        "version 2.3.1 bug",
        "サイズ 27.5cm",
        "…続きは明日",
        "こんにちは",
        None,
    ]
    assert prefilter(plain) == [False] * len(plain)


def _gates_hold(texts: list[str], lang: str) -> None:
    """Every pattern finding's entity has its per-entity prefilter firing on that text."""
    gates = dict(
        zip(PATTERN_ENTITIES, entity_candidates(texts, list(PATTERN_ENTITIES)), strict=True)
    )
    for k, found in enumerate(ANALYZER.analyze_batch(texts, lang)):
        for f in found:
            if f.entity_type in gates:
                assert gates[f.entity_type][k], f"{f.entity_type} gate missed text {k}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_entity_prefilters_superset_of_their_recognizers(texts):
    # batches under GATE_MIN_TEXTS: every recognizer runs, so this checks each gate on its own
    _gates_hold(texts, "ja")
    _gates_hold(texts, "en")


def _corpus_and_samples() -> list[str]:
    """The labelled corpus's texts and every entity sample after every context word."""
    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    return [r["text"] for r in records] + [f"{c}{e}" for e in ENTITY_SAMPLES for c in CONTEXT]


def test_entity_prefilters_on_corpus_and_samples():
    texts = _corpus_and_samples()
    for lang in ("ja", "en"):
        for start in range(0, len(texts), 20):  # ungated batches
            _gates_hold(texts[start : start + 20], lang)


def test_gated_analyzer_finds_what_every_recognizer_finds(monkeypatch):
    texts = _corpus_and_samples()
    assert len(texts) >= analyzer_module.GATE_MIN_TEXTS
    gated = ANALYZER.analyze_batch(texts)
    monkeypatch.setattr(analyzer_module, "GATE_MIN_TEXTS", len(texts) + 1)
    assert gated == ANALYZER.analyze_batch(texts)
    assert sum(map(bool, gated)) > len(texts) // 2  # the texts hold findings to lose


def test_entity_rules_name_real_rules_and_entities():
    from tokumei.anonymize.pii.prefilter import _rules

    assert set(ENTITY_RULES) <= set(PATTERN_ENTITIES)
    assert all(r in _rules() for rules in ENTITY_RULES.values() for r in rules)
    # every rule gates some entity (else the union would be narrower than the prefilter)
    used = {r for rules in ENTITY_RULES.values() for r in rules} | {"escape"}
    assert used == set(_rules())
