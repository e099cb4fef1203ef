"""Scrub a synthetic 10M-row free-text column in which 1% of values carry PII.

Run: ``uv run python bench/pii_scrub.py [--rows 10000000] [--sample 20000] [--workers 2]``

1. Builds the column: 99% ordinary search queries / inquiry texts (with prices, dates, times,
   short numbers — things the prefilter must look at), drawn Zipf-like from a vocabulary as
   real logs are; 1% texts with a PII entity (phone, e-mail, My Number, card, postal code,
   IP, URL ...), each distinct.
2. Side by side on a random sample: Presidio's ``BatchAnalyzerEngine`` over every value (the
   naive approach, with tokumei's recognizers so the findings are comparable) vs
   ``Scrubber.scrub_series``; asserts identical scrubbed output (the prefilter lost nothing).
3. Scrubs the full column with ``Scrubber`` and reports wall time; the naive cost for the full
   column is extrapolated linearly from the sample (running it would take hours).
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
from anonymize.pii.scrub import default_entities

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


def naive_scrub(values: list[str]) -> list[str]:
    """Presidio BatchAnalyzerEngine over every value (no prefilter, no dedup)."""
    engine = BatchAnalyzerEngine(pattern_engine("ja"))
    ents = list(default_entities(False))
    norms = [normalize(v) for v in values]
    results = engine.analyze_iterator([n.text for n in norms], language="ja", entities=ents)
    out = []
    for v, n, res in zip(values, norms, results, strict=True):
        fs = [Finding(r.entity_type, *n.to_original(r.start, r.end), float(r.score)) for r in res]
        out.append(replace_spans(v, resolve_overlaps(fs)))
    return out


def main() -> None:
    """Run the benchmark and print a markdown summary."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    col = make_column(args.rows)
    t_gen = time.perf_counter() - t0

    sample = col.sample(n=args.sample, seed=1)
    t0 = time.perf_counter()
    naive = naive_scrub(sample.to_list())
    t_naive = time.perf_counter() - t0
    scrubber = Scrubber(workers=1)
    t0 = time.perf_counter()
    ours, _ = scrubber.scrub_series(sample, lang="ja")
    t_ours_sample = time.perf_counter() - t0
    identical = ours.to_list() == naive
    changed = sum(a != b for a, b in zip(sample.to_list(), naive, strict=True))

    scrubber = Scrubber(workers=args.workers)
    t0 = time.perf_counter()
    _, stats = scrubber.scrub_series(col, lang="ja")
    t_full = time.perf_counter() - t0
    naive_full = t_naive / args.sample * args.rows
    print(f"rows: {args.rows:,} (generated in {t_gen:.1f} s), workers: {args.workers}")
    print(
        f"sample {args.sample:,}: naive Presidio batch {t_naive:.2f} s, "
        f"tokumei {t_ours_sample:.2f} s ({t_naive / t_ours_sample:.0f}x); "
        f"values changed {changed}; identical output: {identical}"
    )
    print(
        f"full column: tokumei {t_full:.1f} s; naive extrapolated {naive_full:,.0f} s "
        f"({naive_full / t_full:.0f}x)"
    )
    s = stats
    print(
        f"candidates {s.candidates:,}, distinct {s.distinct_candidates:,}, "
        f"changed {s.values_changed:,}, entities {dict(sorted(s.entities.items()))}"
    )
    if not identical:
        raise SystemExit("findings differ between naive and prefiltered scrubbing")


if __name__ == "__main__":
    main()
