"""Homogeneity of the daily tables whose groups are a distribution of the day's persons.

``search_volume`` (R3, issue 15 leftovers): "all 35 persons who searched today searched
electronics" is a published cell of 35 that tells whoever knows a person searched today what
about. The day's distribution of each kind over categories goes through the same l-diversity
rule as the band distributions (tokumei/stats/disclosure/diversity.py). So does the daily
``revenue`` table, with the two things ADR 0002 names for it: an earlier day hidden whole is not
read as small counts, and no month may prove a band of such a day large.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from test_stats_tables import DAY, ev, events

from tokumei.anonymize.policy import DisclosurePolicy
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import diversity
from tokumei.stats.disclosure.release import audit as release_audit
from tokumei.stats.disclosure.release import protect_release

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


def _purchases(per_band: dict[int, int]) -> pl.LazyFrame:
    """Purchasers per amount (JPY): n persons each buying once at that amount."""
    rows = [
        ev(f"p{amount}-{i}", "purchase", amount_jpy=amount)
        for amount, n in per_band.items()
        for i in range(n)
    ]
    return events(rows)


def test_a_day_when_nearly_every_purchaser_bought_in_one_band_publishes_no_band() -> None:
    """ADR 0002: "a person known to have bought today bought for 1,000-4,999 JPY" is what a
    day with 95 % of its purchasers in one band tells; the day is hidden whole."""
    day = stats.revenue(_purchases({2000: 57, 700: 3}), DAY, T).collect()
    assert day.filter(pl.col("persons").is_not_null())["price_band"].to_list() == ["1000-4999"]
    assert not diversity.audit(day, "revenue", RULES)["ok"]
    protected, groups = diversity.protect(day, "revenue", RULES)
    assert groups == 1
    assert protected["persons"].null_count() == protected.height
    assert protected["total_amount_jpy"].null_count() == protected.height
    assert protected["suppressed"].all()
    diverse = stats.revenue(_purchases({2000: 30, 700: 12}), DAY, T).collect()
    again, groups = diversity.protect(diverse, "revenue", RULES)
    assert groups == 0 and again.equals(diverse)


# --------------------------------------------------------------------------------------------
# The month over its days (release model, tokumei/stats/disclosure/release.py)

BANDS = ("<1000", "1000-4999", "5000-9999", "10000-49999", "50000+")
MONTH = [f"2026-11-{d:02d}" for d in range(1, 31)]
HOMOGENEOUS_DAY = "2026-11-10"


def _revenue_day(day: str, persons: dict[str, int | None]) -> pl.DataFrame:
    counts = [persons.get(b) for b in BANDS]
    return pl.DataFrame(
        {
            "date": [day] * len(BANDS),
            "price_band": list(BANDS),
            "persons": counts,
            "total_amount_jpy": [None if c is None else c * 3000 for c in counts],
            "suppressed": [c is None for c in counts],
        },
        schema_overrides={"persons": pl.Int64, "total_amount_jpy": pl.Int64},
    ).with_columns(pl.col("date").str.to_date())


def _earlier(name: str, day) -> pl.DataFrame | None:
    """Published daily revenue of the month: 12 + 11 persons in two bands each day, and one
    day hidden whole by the diversity rule (its truth: 50 in 1000-4999, 2 in <1000)."""
    if name != "revenue" or day.isoformat() not in MONTH:
        return None
    if day.isoformat() == HOMOGENEOUS_DAY:
        return _revenue_day(day.isoformat(), {})
    return _revenue_day(day.isoformat(), {"<1000": 12, "1000-4999": 11})


def _month(persons: dict[str, int]) -> dict[str, pl.DataFrame]:
    month = _revenue_day(MONTH[-1], persons).with_columns(
        pl.lit("2026-11").alias("month"), pl.lit(None, pl.Int64).alias("total_amount_jpy")
    )
    last = _earlier("revenue", __import__("datetime").date(2026, 11, 30))
    assert last is not None
    return {"monthly_revenue": month.select(stats.TABLES["monthly_revenue"].columns), "revenue": last}


def test_an_earlier_day_hidden_whole_is_not_read_as_small_counts() -> None:
    """The month (330 purchasers in 1000-4999) is consistent only with the hidden day holding
    more than min_cell - 1 there: the attacker must not assume every hidden cell was small,
    for that day alone (not by forgetting every earlier cell)."""
    from tokumei.stats.disclosure.release import build, intervals

    frames = _month({"<1000": 300, "1000-4999": 330})
    s = build(frames, T, earlier=_earlier)
    suppressed = np.isnan(np.asarray(s.published, dtype=float))
    whole = s.hidden_whole(suppressed)
    hidden_day = [i for i in range(s.n) if s.day[i] == HOMOGENEOUS_DAY and s.column[i] == "persons"]
    assert hidden_day and whole[hidden_day].all()
    assert not whole[[i for i in range(s.n) if s.day[i] == "2026-11-09"]].any()
    lo, hi = intervals(s, suppressed, np.asarray(hidden_day))
    assert not s.relaxed
    band = BANDS.index("1000-4999")
    # 330 - 29 x 11 = 11 persons proven on the hidden day in 1000-4999: the band is told
    assert lo[band] == 330 - 29 * 11 and np.isinf(hi[band])


def test_the_month_may_not_prove_the_band_of_a_day_hidden_for_homogeneity() -> None:
    frames = _month({"<1000": 300, "1000-4999": 330})
    verdict = release_audit(frames, T, earlier=_earlier)
    assert verdict["monthly_revenue"]["whole_groups_bands_proven_large"] >= 1
    assert not verdict["monthly_revenue"]["ok"]
    # protection hides the month's distribution whole (not one band: that would leave the
    # published rest possibly homogeneous), and the attack then proves nothing large
    out, added, outcome = protect_release(frames, T, earlier=_earlier)
    assert out["monthly_revenue"]["persons"].null_count() == len(BANDS)
    assert added["monthly_revenue"] == 2  # the two published bands
    again = release_audit(out, T, earlier=_earlier)
    assert again["monthly_revenue"]["ok"], again["monthly_revenue"]
    assert again["monthly_revenue"]["whole_groups_bands_proven_large"] == 0


def test_a_month_that_proves_nothing_about_the_hidden_day_is_published() -> None:
    # 310 <= 29 x 11: the hidden day may hold 0 in 1000-4999
    frames = _month({"<1000": 300, "1000-4999": 310})
    verdict = release_audit(frames, T, earlier=_earlier)
    assert verdict["monthly_revenue"]["ok"], verdict["monthly_revenue"]
    out, added, _ = protect_release(frames, T, earlier=_earlier)
    assert added.get("monthly_revenue", 0) == 0
