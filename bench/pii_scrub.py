"""Scrub a synthetic 10M-row free-text column in which 1% of values carry PII.

Run: ``uv run python bench/pii_scrub.py [--rows 10000000] [--sample 50000] [--workers 2]``

1. Builds the column: 99% ordinary search queries / inquiry texts (with prices, dates, times,
   short numbers — things the prefilter must look at), drawn Zipf-like from a vocabulary as
   real logs are; 1% texts with a PII entity (phone, e-mail, My Number, postal code, IP, URL,
   bank account), each distinct.
2. Side by side on a random sample of that column (same distribution, 1% PII), in this process,
   one after the other, one run each: Presidio's ``BatchAnalyzerEngine`` over every value (the
   naive approach, with tokumei's recognizers so the findings are comparable) vs
   ``Scrubber.scrub_series`` on one core. Both are warmed up first on other rows (engine
   construction, prefilter tables, validator metadata: one-time costs per process, reported
   separately). Checks that the findings (type, span, score) of every sample row are identical
   and that the scrubbed outputs are identical, and prints the measured ratio.
3. Scrubs the full column with ``Scrubber`` (``--workers`` processes) and reports wall time;
   the naive cost for the full column is extrapolated linearly from the sample.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
import polars as pl
from presidio_analyzer import BatchAnalyzerEngine
from stdnum.jp import in_

from anonymize.pii import Scrubber
from anonymize.pii.analyzer import Finding, pattern_engine, replace_spans, resolve_overlaps
from anonymize.pii.normalize import normalize
from anonymize.pii.prefilter import candidate_expr, candidate_pattern
from anonymize.pii.scrub import analyze_distinct, default_entities

BASE = [
    "渋谷 カフェ",
    "京都 紅葉 見頃",
    "iPhone 16 ケース",
    "東京 天気 明日",
    "ランチ 新宿 安い",
    "ワイヤレスイヤホン おすすめ",
    "北海道 旅行 3泊4日",
    "価格は3,980円でした",
    "2024年5月1日に注文",
    "配送日 2024-05-03 12:00",
    "送料無料 5000円以上",
    "ポイント 10倍",
    "在庫 あと3個",
    "cheap flights tokyo",
    "how to cancel order",
    "返品したいです",
    "サイズ 27.5cm",
    "領収書を発行してください",
    "ログインできません",
    "パスワード 再設定",
    "version 2.3.1 bug",
    "クーポンコードが使えない",
    "商品が届かない 注文から5日",
    "営業時間は10:00〜19:00",
]


def make_column(rows: int, seed: int = 7) -> pl.Series:
    """The benchmark column (deterministic)."""
    rng = random.Random(seed)
    vocab = [f"{b} {i}" if i else b for i in range(400) for b in BASE]  # ~9.6k distinct
    np_rng = np.random.default_rng(seed)
    ranks = np.minimum(np_rng.zipf(1.3, rows) - 1, len(vocab) - 1)
    values = pl.Series("text", vocab).gather(pl.Series(ranks))
    n_pii = rows // 100

    def pii(i: int) -> str:
        k = i % 7
        if k == 0:
            return f"電話番号は090-{1000 + i % 9000:04d}-{i % 10000:04d}です"
        if k == 1:
            return f"連絡先user{i}@example.co.jpまで"
        if k == 2:
            base = f"{10_000_000_000 + i:011d}"
            return f"マイナンバー{base}{in_.calc_check_digit(base)}"
        if k == 3:
            return f"〒{100 + i % 800:03d}-{i % 10000:04d} 東京都"
        if k == 4:
            return f"接続元 10.{i % 256}.{(i // 256) % 256}.{rng.randint(1, 254)} から"
        if k == 5:
            return f"詳細 https://shop.example.com/items/{i}?ref=mail"
        return f"口座番号{i % 10_000_000:07d}へ振込"

    positions = np_rng.choice(rows, size=n_pii, replace=False)
    pii_values = pl.Series("text", [pii(i) for i in range(n_pii)])
    return values.scatter(positions, pii_values)


def naive_scrub(values: list[str]) -> tuple[list[str], list[list[Finding]]]:
    """Presidio BatchAnalyzerEngine over every value (no prefilter, no dedup)."""
    engine = BatchAnalyzerEngine(pattern_engine("ja"))
    ents = list(default_entities(False))
    norms = [normalize(v) for v in values]
    results = engine.analyze_iterator([n.text for n in norms], language="ja", entities=ents)
    out, findings = [], []
    for v, n, res in zip(values, norms, results, strict=True):
        fs = [Finding(r.entity_type, *n.to_original(r.start, r.end), float(r.score)) for r in res]
        fs = resolve_overlaps(fs)
        findings.append(fs)
        out.append(replace_spans(v, fs))
    return out, findings


def tokumei_findings(values: pl.Series) -> list[list[Finding]]:
    """Per-row findings of the Scrubber's pipeline (prefilter, dedup, direct analysis)."""
    mask = values.to_frame("v").select(candidate_expr(pl.col("v")))["v"].to_list()
    texts = sorted({v for v, m in zip(values.to_list(), mask, strict=True) if m})
    found = dict(
        zip(texts, analyze_distinct(texts, "ja", False, default_entities(False)), strict=True)
    )
    return [found[v] if m else [] for v, m in zip(values.to_list(), mask, strict=True)]


def load() -> str:
    """1/5/15-minute load averages of the machine."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    """Run the benchmark and print a summary."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--sample", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    col = make_column(args.rows)
    t_gen = time.perf_counter() - t0
    print(f"rows: {args.rows:,} (generated in {t_gen:.1f} s), workers: {args.workers}")
    print(f"cpus: {os.cpu_count()}, load average before: {load()}")

    sample = col.sample(n=args.sample, seed=1)
    warm = col.sample(n=2_000, seed=2)
    # one-time per-process costs, for both sides: engine, prefilter tables, validator metadata
    t0 = time.perf_counter()
    pattern_engine("ja")
    candidate_pattern()
    naive_scrub(warm.to_list())
    Scrubber(workers=1).scrub_series(warm, lang="ja")
    t_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    naive, naive_found = naive_scrub(sample.to_list())
    t_naive = time.perf_counter() - t0
    scrubber = Scrubber(workers=1)
    t0 = time.perf_counter()
    ours, sample_stats = scrubber.scrub_series(sample, lang="ja")
    t_ours = time.perf_counter() - t0
    repeats = []
    for _ in range(5):
        t0 = time.perf_counter()
        scrubber.scrub_series(sample, lang="ja")
        repeats.append(time.perf_counter() - t0)
    load_sample = load()

    same_output = ours.to_list() == naive
    ours_found = tokumei_findings(sample)
    same_findings = ours_found == naive_found
    n_found = sum(len(f) for f in naive_found)
    rows_found = sum(1 for f in naive_found if f)
    s = sample_stats
    print(
        f"sample {args.sample:,} rows (seed 1; {rows_found} rows with findings, "
        f"{n_found} findings; {s.candidates:,} candidates, {s.distinct_candidates:,} distinct); "
        f"warm-up (not timed, both sides) {t_setup:.1f} s"
    )
    print(
        f"  naive Presidio BatchAnalyzerEngine {t_naive:.2f} s "
        f"({t_naive / args.sample * 1e6:.0f} us/row); tokumei Scrubber (1 process) "
        f"{t_ours:.3f} s -> measured ratio {t_naive / t_ours:.0f}x"
    )
    print(
        f"  tokumei repeated 5x: {min(repeats):.3f}-{max(repeats):.3f} s "
        f"(ratio {t_naive / max(repeats):.0f}x-{t_naive / min(repeats):.0f}x); "
        f"load average after: {load_sample}"
    )
    print(f"  identical findings (type, span, score) on every row: {same_findings}")
    print(f"  identical scrubbed output: {same_output}")

    scrubber = Scrubber(workers=args.workers)
    t0 = time.perf_counter()
    _, stats = scrubber.scrub_series(col, lang="ja")
    t_full = time.perf_counter() - t0
    naive_full = t_naive / args.sample * args.rows
    print(
        f"full column: tokumei {t_full:.1f} s; naive extrapolated {naive_full:,.0f} s "
        f"({naive_full / t_full:.0f}x); load average after: {load()}"
    )
    s = stats
    print(
        f"candidates {s.candidates:,}, distinct {s.distinct_candidates:,}, "
        f"changed {s.values_changed:,}, entities {dict(sorted(s.entities.items()))}"
    )
    if not (same_findings and same_output):
        raise SystemExit("findings differ between naive Presidio and tokumei")


if __name__ == "__main__":
    main()
