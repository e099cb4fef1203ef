"""The direct batched NER path gives exactly the findings of Presidio's engine path.

``TokumeiAnalyzer(ner=True)`` runs GiNZA through ``ner_spans`` (``nlp.pipe`` in batches, the
pipeline cut after ``ner``) and the pattern recognizers directly; ``direct=False`` sends every
Japanese text through Presidio's ``AnalyzerEngine`` on ``SpacyNlpEngine`` (full pipeline, one
artifact per text). Findings (type, original offsets, score) must be identical, in one process
and in the scrubber's NER worker pool. The engine reads texts as they are, so the comparison
turns masking off (``mask_for_ner=False``; masking has its own tests, ``test_pii_masking.py``).
Real GiNZA, no mocks: the point is the model's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_bench

from tokumei.anonymize.pii import TokumeiAnalyzer
from tokumei.anonymize.pii import scrub as scrub_mod
from tokumei.anonymize.pii.analyzer import ALL_ENTITIES, NER_ENTITIES, ner_engine, ner_spans
from tokumei.anonymize.pii.normalize import detect_language, normalize
from tokumei.anonymize.pii.recognizers.ginza import GINZA_LABEL_MAP
from tokumei.anonymize.pii.scrub import analyze_distinct, default_entities

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "pii_corpus.jsonl"

#: Names in several shapes: kanji, kana, with honorifics, next to identifiers, full-width.
NAMED = [
    "山田太郎です。注文した商品がまだ届きません。連絡先は090-1234-5678です。",
    "お世話になっております。佐藤 花子と申します。メールを変更したいです。",
    "配送先を東京都渋谷区神南1-2-3に変更してください。鈴木一郎",
    "田中様の代理で問い合わせます。携帯：０８０－１１１１－２２２２",
    "高橋さんと伊藤さんに株式会社トヨタの件で大阪駅で会いました。",
    "やまだ　はなこ です。退会したいです。",
    "渡辺健太 taro@example.co.jp 〒150-0001",
    "ポイントが反映されていません。確認をお願いします。",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    corpus = [json.loads(line)["text"] for line in CORPUS.open(encoding="utf-8")]
    generated = load_bench("pii_scrub").inquiry_texts(120, seed=5)
    return NAMED + generated + [t for t in corpus if detect_language(t) == "ja"]


@pytest.fixture(scope="module")
def engine_findings(texts):
    return TokumeiAnalyzer(ner=True, direct=False).analyze_batch(texts, "auto")


def test_direct_ner_equals_engine(texts, engine_findings):
    direct = TokumeiAnalyzer(ner=True, mask_for_ner=False).analyze_batch(texts, "auto")
    assert direct == engine_findings
    persons = sum(1 for fs in direct for f in fs if f.entity_type == "PERSON")
    assert persons >= 60  # names are found, so this compares NER output, not empty lists
    assert sum(1 for f in direct[: len(NAMED)] if any(x.entity_type == "PERSON" for x in f)) >= 5


@pytest.mark.parametrize("entities", [["PERSON"], ["PERSON", "JP_PHONE"], ["LOCATION"]])
def test_direct_ner_equals_engine_with_subsets(texts, entities):
    sample = texts[:60]
    direct = TokumeiAnalyzer(ner=True, mask_for_ner=False).analyze_batch(sample, "ja", entities)
    engine = TokumeiAnalyzer(ner=True, direct=False).analyze_batch(sample, "ja", entities)
    assert direct == engine


def test_direct_ner_equals_engine_with_threshold(texts):
    sample = texts[:60]
    for threshold in (0.8, 0.9):
        direct = TokumeiAnalyzer(
            ner=True, score_threshold=threshold, mask_for_ner=False
        ).analyze_batch(sample, "ja")
        engine = TokumeiAnalyzer(ner=True, direct=False, score_threshold=threshold).analyze_batch(
            sample, "ja"
        )
        assert direct == engine


def test_ner_spans_batching_and_pruning_do_not_change_entities(texts):
    """Batch size is irrelevant, and the cut pipeline (nothing after ``ner``) reports what the
    full pipeline, one text at a time, reports after Presidio's label mapping and filter."""
    norm = [normalize(t).text for t in texts[:80] if detect_language(t) == "ja"]
    batched = ner_spans(norm, NER_ENTITIES, batch_size=128)
    assert ner_spans(norm, NER_ENTITIES, batch_size=1) == batched
    nlp = ner_engine().nlp_engine.get_nlp("ja")
    assert nlp.pipe_names.index("parser") < nlp.pipe_names.index("ner")  # the parser stays
    full = []
    for t in norm:
        found = []
        for e in nlp(t).ents:  # every component, as SpacyNlpEngine.process_text runs them
            label = GINZA_LABEL_MAP.get(e.label_, e.label_)
            if label in NER_ENTITIES:
                found.append((label, e.start_char, e.end_char, 0.85))
        full.append(found)
    assert batched == full
    assert sum(map(len, batched)) >= 20


def test_ner_worker_pool_equals_in_process(texts, monkeypatch):
    """The NER pool (2 forked workers, small chunks) returns the in-process findings, in
    order."""
    monkeypatch.setattr(scrub_mod, "NER_PARALLEL_MIN", 10)
    monkeypatch.setattr(scrub_mod, "_NER_CHUNK", 64)
    pooled = analyze_distinct(texts, "auto", True, ALL_ENTITIES, workers=2)
    assert pooled == TokumeiAnalyzer(ner=True).analyze_batch(texts, "auto", ALL_ENTITIES)
    assert sum(1 for fs in pooled for f in fs if f.entity_type == "PERSON") >= 60


def test_ner_pool_only_from_threshold_on(monkeypatch):
    """Below NER_PARALLEL_MIN Japanese texts the NER stays in process (no pool is started)."""

    def no_pool(*args, **kwargs):
        raise AssertionError("pool started below the threshold")

    monkeypatch.setattr(scrub_mod, "ProcessPoolExecutor", no_pool)
    found = analyze_distinct(NAMED, "auto", True, default_entities(True), workers=2)
    assert any(f.entity_type == "PERSON" for fs in found for f in fs)


def test_parser_decoded_with_gil_held_equals_spacy_loop(texts):
    """``_greedy_decode`` on GiNZA's parser: the heads, labels and sentence starts of spaCy's
    own ``Parser.pipe`` (the NER reads the sentence starts, so they must not move)."""
    from tokumei.anonymize.pii.analyzer import _greedy_decode

    nlp = ner_engine().nlp_engine.get_nlp("ja")
    tok2vec, parser = nlp.get_pipe("tok2vec"), nlp.get_pipe("parser")

    def encoded() -> list:
        return list(tok2vec.pipe([nlp.make_doc(normalize(t).text) for t in texts]))

    spacy_docs = list(parser.pipe(encoded(), batch_size=64))
    ours = encoded()
    for i in range(0, len(ours), 64):
        _greedy_decode(parser, sorted(ours[i : i + 64], key=len))

    def annotations(doc) -> list[tuple[int, str, bool]]:
        return [(t.head.i, t.dep_, bool(t.is_sent_start)) for t in doc]

    assert [annotations(d) for d in ours] == [annotations(d) for d in spacy_docs]
    assert sum(len(list(d.sents)) for d in ours) > len(ours)  # sentences were really split


#: GiNZA's parser starts a sentence inside the name here, and NER without sentence starts reads
#: the name as one entity: the case where ``_decode_entities`` must decode the NER again.
CROSSED = "お世話になっております。佐藤 太郎と申します。登録メールアドレス(<EMAIL_ADDRESS>)を変更したいです。"


def test_words_only_tokenizer_gives_the_models_words(texts):
    """``_ner_tokenizer`` (words and spaces only) gives the words and spaces of GiNZA's own
    tokenizer, spaces and the characters Sudachi drops included."""
    from tokumei.anonymize.pii.analyzer import _ner_tokenizer

    nlp = ner_engine().nlp_engine.get_nlp("ja")
    make_doc = _ner_tokenizer(nlp)
    assert make_doc is not nlp.tokenizer  # GiNZA reads the words only: the fast path is on
    edge = [
        "",
        " ",
        "　",
        "  山田  太郎  ",
        "山田\t\n太郎",
        "山田 　 太郎",
        "えっと…山田です…",
        "a  b",
    ]
    for t in edge + [normalize(t).text for t in texts] + texts[:40]:
        ours, full = make_doc(t), nlp.tokenizer(t)
        assert [(w.orth, w.whitespace_) for w in ours] == [(w.orth, w.whitespace_) for w in full]


def test_parser_only_where_a_sentence_start_can_change_an_entity():
    """NER first, the parser only on texts with a multi-token entity, NER again where the
    parser starts a sentence inside one: the entities of parser-then-NER, on a text that takes
    each branch (no entity, one-token entities, a multi-token entity, a crossed one)."""
    from tokumei.anonymize.pii.analyzer import _greedy_decode, _ner_tokenizer

    nlp = ner_engine().nlp_engine.get_nlp("ja")
    tok2vec, parser, ner = (nlp.get_pipe(n) for n in ("tok2vec", "parser", "ner"))
    cases = [CROSSED, "ポイントが反映されていません。", "田中です。", *NAMED]
    docs = list(tok2vec.pipe([_ner_tokenizer(nlp)(t) for t in cases]))
    _greedy_decode(ner, docs)

    def crossed(doc) -> bool:
        return any(
            doc[i].is_sent_start for e in doc.ents if len(e) > 1 for i in range(e.start + 1, e.end)
        )

    _greedy_decode(parser, docs)
    assert crossed(docs[0])  # the rerun branch is taken on this text
    full = [[(e.label_, e.start_char, e.end_char) for e in nlp(t).ents] for t in cases]
    spans = ner_spans(cases, NER_ENTITIES)
    mapped = [
        [
            (GINZA_LABEL_MAP.get(lab, lab), s, e, 0.85)
            for lab, s, e in f
            if GINZA_LABEL_MAP.get(lab, lab) in NER_ENTITIES
        ]
        for f in full
    ]
    assert spans == mapped
    assert ner_spans(cases[:1], NER_ENTITIES) == mapped[:1]
