"""Homogeneity of the daily tables whose groups are a distribution of the day's persons.

``search_volume`` (R3, issue 15 leftovers): "all 35 persons who searched today searched
electronics" is a published cell of 35 that tells whoever knows a person searched today what
about. The day's distribution of each kind over categories goes through the same l-diversity
rule as the band distributions (tokumei/stats/disclosure/diversity.py). The daily ``revenue``
table does not (ADR 0002 says precisely why); this file checks that it is left as it was.
"""

from __future__ import annotations

import polars as pl
from test_stats_tables import DAY, ev, events

from tokumei.anonymize.policy import DisclosurePolicy
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import diversity
from tokumei.stats.disclosure.release import audit as release_audit

T = 10
RULES = DisclosurePolicy()


def _events(searchers: dict[str, int], inquirers: dict[str, int]) -> pl.LazyFrame:
    """Persons per topic, as events: searches that categorize to the topic, and inquiries."""
    texts = {"electronics": "ワイヤレスイヤホン", "fashion": "スニーカー メンズ"}
    inquiry = {"returns": "返品したいです。", "shipping": "注文した商品がまだ届きません。"}
    rows = []
    for topic, n in searchers.items():
        rows += [ev(f"s-{topic}-{i}", "search", search_query=texts[topic]) for i in range(n)]
    for topic, n in inquirers.items():
        rows += [ev(f"q-{topic}-{i}", "inquiry", inquiry_text=inquiry[topic]) for i in range(n)]
    return events(rows)


def _day(searchers: dict[str, int], inquirers: dict[str, int]) -> pl.DataFrame:
    return stats.search_volume(_events(searchers, inquirers), DAY, T).collect()


def _published(df: pl.DataFrame, kind: str) -> dict[str, int]:
    shown = df.filter((pl.col("kind") == kind) & pl.col("persons").is_not_null())
    return dict(zip(shown["category"], shown["persons"], strict=True))


def test_a_day_when_every_searcher_searched_one_topic_publishes_no_search_topic() -> None:
    # 35 searched electronics, 3 fashion (primary); inquiries spread over two topics
    day = _day({"electronics": 35, "fashion": 3}, {"returns": 12, "shipping": 15})
    # before the rule: the only published search category holds every searcher
    assert _published(day, "search") == {"electronics": 35}
    assert not diversity.audit(day, "search_volume", RULES)["ok"]
    protected, groups = diversity.protect(day, "search_volume", RULES)
    assert groups == 1
    assert _published(protected, "search") == {}
    assert protected.filter(pl.col("kind") == "search")["suppressed"].all()
    # the diverse kind is published as before
    assert _published(protected, "inquiry") == {"returns": 12, "shipping": 15}
    assert diversity.audit(protected, "search_volume", RULES)["ok"]
    # the release attacker knows the hidden 35 is not a small count (its truth is >= T, so it
    # is not told primary): the audit of the release stays ok with the whole kind hidden
    exact = stats.search_volume(
        _events({"electronics": 35, "fashion": 3}, {"returns": 12, "shipping": 15}), DAY, 1
    ).collect()
    verdict = release_audit(
        {"search_volume": protected},
        T,
        truth={"search_volume": exact.select("kind", "category", "persons").fill_null(0)},
    )
    assert verdict["search_volume"]["ok"]


def test_a_diverse_search_day_is_published_unchanged() -> None:
    day = _day({"electronics": 20, "fashion": 12}, {"returns": 12, "shipping": 15})
    protected, groups = diversity.protect(day, "search_volume", RULES)
    assert groups == 0 and protected.equals(day)


def test_daily_revenue_is_not_a_declared_distribution() -> None:
    """ADR 0002: the month over its days would give a homogeneous day's band back; the daily
    revenue table keeps its cells (its month's distribution is checked instead)."""
    assert "revenue" not in diversity.DISTRIBUTIONS
    assert "monthly_revenue" in diversity.DISTRIBUTIONS
