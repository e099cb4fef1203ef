"""Scrubber, scrub_values, discovery, offline guarantee and the CLI."""

from __future__ import annotations

import json
import socket

import polars as pl
import pytest
from typer.testing import CliRunner

from tokumei.anonymize.pii import (
    PiiInColumnError,
    Scrubber,
    TokumeiAnalyzer,
    discover_columns,
    scrub_values,
)
from tokumei.anonymize.pii.analyzer import build_presidio_default_engine
from tokumei.commands.pii import app


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_analyzers_work_offline(no_network):
    from tokumei.anonymize.pii import analyzer as mod

    mod.pattern_engine.cache_clear()
    mod._entity_probes.cache_clear()
    mod._direct_recognizers.cache_clear()
    from tokumei.anonymize.pii.recognizers.email import offline_tld_extractor

    offline_tld_extractor.cache_clear()
    found = TokumeiAnalyzer().analyze("メールはtaro@example.co.jpです")
    assert [f.entity_type for f in found] == ["EMAIL_ADDRESS"]
    presidio = build_presidio_default_engine()
    assert "EMAIL_ADDRESS" in {r.entity_type for r in presidio.analyze("a taro@example.com", "en")}


def test_scrub_frame_replaces_spans_and_counts():
    df = pl.DataFrame(
        {
            "q": [
                "電話は090-1234-5678です",
                "渋谷 カフェ",
                None,
                "電話は090-1234-5678です",
                "mail taro@example.com or 192.168.0.1",
            ],
            "n": [1, 2, 3, 4, 5],
        }
    )
    out, stats = Scrubber().scrub_frame(df, ["q"])
    assert out["q"].to_list() == [
        "電話は<JP_PHONE>です",
        "渋谷 カフェ",
        None,
        "電話は<JP_PHONE>です",
        "mail <EMAIL_ADDRESS> or <IP_ADDRESS>",
    ]
    assert out["n"].to_list() == [1, 2, 3, 4, 5]
    s = stats.columns["q"]
    assert (s.candidates, s.distinct_candidates, s.values_changed) == (3, 2, 3)
    assert s.entities == {"JP_PHONE": 2, "EMAIL_ADDRESS": 1, "IP_ADDRESS": 1}
    assert "090" not in json.dumps(stats.to_dict())


def test_scrub_lazy_equals_scrub_frame(tmp_path):
    """The streaming path (what the pipeline runs) gives the eager path's output and counts."""
    texts = [
        "山田太郎です。注文した商品がまだ届きません。連絡先は090-1234-5678です。",
        "ポイントが反映されていません。確認をお願いします。",
        None,
        "山田太郎です。注文した商品がまだ届きません。連絡先は090-1234-5678です。",
        "佐藤花子様の代理で問い合わせます。メール：hanako@example.jp",
    ]
    df = pl.DataFrame(
        {
            "inquiry": texts * 3,
            "q": ["mail taro@example.com", "渋谷 カフェ", None, "192.168.0.1", "靴"] * 3,
            "n": list(range(15)),
        }
    )
    path = tmp_path / "events.parquet"
    df.write_parquet(path)
    eager, eager_stats = Scrubber().scrub_frame(df, ["inquiry", "q"], ner_columns=["inquiry"])
    lazy, lazy_stats = Scrubber().scrub_lazy(
        pl.scan_parquet(path), ["inquiry", "q"], ner_columns=["inquiry"]
    )
    out = tmp_path / "out.parquet"
    lazy.sink_parquet(out)
    assert pl.read_parquet(out).equals(eager)
    assert lazy_stats.to_dict() == eager_stats.to_dict()
    assert "<PERSON>" in eager["inquiry"][0] and "<JP_PHONE>" in eager["inquiry"][0]
    assert lazy_stats.columns["inquiry"].rows == 15
    with pytest.raises(KeyError, match="nope"):
        Scrubber().scrub_lazy(pl.scan_parquet(path), ["nope"])


def test_scrub_values_can_keep_urls():
    s = pl.Series("u", ["https://ex.com/p?mail=taro@example.com", None])
    assert scrub_values(s).to_list() == ["<URL>", None]
    kept = scrub_values(s, entities=["EMAIL_ADDRESS"]).to_list()
    assert kept == ["https://ex.com/p?mail=<EMAIL_ADDRESS>", None]


def test_corporate_number_not_scrubbed_by_default():
    s = pl.Series(["法人番号7000012050002"])
    assert scrub_values(s).to_list() == ["法人番号7000012050002"]


def test_discovery_reports_rates_and_raises_without_values():
    df = pl.DataFrame(
        {
            "event": ["page_view"] * 8 + ["taro@example.com", "page_view"],
            "search_query": ["電話090-1234-5678"] * 5 + ["カフェ"] * 5,
            "amount": list(range(10)),
        }
    )
    report = discover_columns(df, {"search_query": "free_text"})
    assert report.columns["search_query"].rates == {"JP_PHONE": 0.5}
    assert report.columns["event"].rates == {"EMAIL_ADDRESS": 0.1}
    assert "amount" not in report.columns
    with pytest.raises(PiiInColumnError) as exc:
        discover_columns(df, {"event": "insensitive"})
    msg = str(exc.value)
    assert "event" in msg and "EMAIL_ADDRESS" in msg and "taro" not in msg
    discover_columns(df, {"event": "insensitive"}, max_rate=0.2)  # under the allowed rate


def test_cli_detect_hides_values_unless_show():
    runner = CliRunner()
    res = runner.invoke(app, ["detect", "メールはtaro@example.co.jpです"])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == [
        {"entity_type": "EMAIL_ADDRESS", "start": 4, "end": 22, "score": 1.0}
    ]
    res = runner.invoke(app, ["detect", "メールはtaro@example.co.jpです", "--show"])
    assert json.loads(res.stdout)[0]["text"] == "taro@example.co.jp"


def test_cli_scrub_parquet(tmp_path):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pl.DataFrame({"q": ["〒150-0002 へ", "hello", "担当の田中太郎です"]}).write_parquet(src)
    args = ["scrub", "--input", str(src), "--column", "q", "--out", str(dst)]
    res = CliRunner().invoke(app, [*args, "--lang", "ja", "--no-ner"])
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(dst)["q"].to_list() == [
        "〒<JP_POSTAL_CODE> へ",
        "hello",
        "担当の田中太郎です",
    ]
    assert "150" not in res.stdout
    # NER is the default (issue 19): the Japanese name goes too
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(dst)["q"].to_list() == [
        "〒<JP_POSTAL_CODE> へ",
        "hello",
        "担当の<PERSON>です",
    ]
    assert "田中" not in res.stdout
    bad = CliRunner().invoke(
        app, ["scrub", "--input", str(src), "--column", "x", "--out", str(dst)]
    )
    assert bad.exit_code == 2


def test_ner_scrub_skips_only_values_ner_cannot_read():
    """With NER on and lang 'auto', ASCII values go through the prefilter (no English NER)
    instead of all being candidates; the scrubbed output is what analyzing every value gives."""
    from tokumei.anonymize.pii.analyzer import replace_spans

    values = [
        "担当の田中太郎です",
        "mail taro@example.com",
        "plain english words",
        "SKU-23167-JPの在庫",
        "call +1 415 555 0132",
        None,
    ]
    out, stats = Scrubber(ner=True).scrub_series(pl.Series("q", values), "auto")
    analyzer = TokumeiAnalyzer(ner=True)
    expected = [None if v is None else replace_spans(v, analyzer.analyze(v)) for v in values]
    assert out.to_list() == expected
    assert expected[0] == "担当の<PERSON>です" and expected[3] == "SKU-23167-JPの在庫"
    assert stats.candidates == 4  # the two Japanese values, the e-mail and the phone number
