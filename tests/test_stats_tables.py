"""Unit tests of the sessions, search_volume, funnel and revenue tables and the data dictionary.

Tiny hand-made work-layer frames (person pseudonym, session pseudonym, exact ts, generalized
columns), exact expected values, suppression, and map → reduce over 2 partitions == 1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tokumei.anonymize.policy import default_policy_dir, load_policy
from tokumei.stats import tables as stats
from tokumei.stats.categories import CATEGORY_VALUES, categorize

DAY = "2026-11-24"
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]

EVENT_SCHEMA = {
    "person": pl.String,
    "event": pl.String,
    "session_id": pl.String,
    "ts": pl.Datetime("us", "UTC"),
    "device_class": pl.String,
    "os_family": pl.String,
    "search_query": pl.String,
    "inquiry_text": pl.String,
    "amount_jpy": pl.Int64,
}


def events(rows: list[dict]) -> pl.LazyFrame:
    full = [{k: r.get(k) for k in EVENT_SCHEMA} for r in rows]
    return pl.DataFrame(full, schema=EVENT_SCHEMA, orient="row").lazy()


def ev(person: str, event: str = "page_view", **kw) -> dict:
    minutes = kw.pop("at", 0)
    return {
        "person": person,
        "event": event,
        "ts": T0 + timedelta(minutes=minutes),
        "device_class": "mobile",
        "os_family": "iOS",
        **kw,
    }


def split(frame: pl.LazyFrame) -> list[pl.LazyFrame]:
    """Two partitions by person, as the pipeline does (every person in exactly one)."""
    df = frame.collect()
    odd = df["person"].str.slice(-1).str.to_integer(strict=False).fill_null(0) % 2 == 1
    return [df.filter(~odd).lazy(), df.filter(odd).lazy()]


def two_partitions(map_fn, reduce_fn, frame: pl.LazyFrame, min_cell: int) -> pl.DataFrame:
    hists = pl.concat([map_fn(p).collect() for p in split(frame)])
    return reduce_fn(hists.lazy(), DAY, min_cell).collect()


# --------------------------------------------------------------------------------------------
# sessions


def _session_events() -> pl.LazyFrame:
    rows = []
    # p0..p3: one 30-second session each (<1m); p0 also a 5-minute session (1-10m)
    for i in range(4):
        rows += [ev(f"p{i}", session_id=f"s{i}", at=0), ev(f"p{i}", session_id=f"s{i}", at=0.5)]
    rows += [ev("p0", session_id="s0b", at=10), ev("p0", session_id="s0b", at=15)]
    # p1, p2: 45-minute sessions (30m+)
    for i in (1, 2):
        rows += [ev(f"p{i}", session_id=f"L{i}", at=60), ev(f"p{i}", session_id=f"L{i}", at=105)]
    # p5: Windows desktop, one 20-minute session; first event decides device/OS
    rows += [
        ev("p5", session_id="w", at=0, device_class="desktop", os_family="Windows"),
        ev("p5", session_id="w", at=20, device_class="mobile", os_family="iOS"),
    ]
    # a rare OS folds into other; an event without a session is ignored
    rows += [ev("p7", session_id="t", os_family="Tizen"), ev("p9", session_id=None)]
    return events(rows)


def test_sessions_counts_bands_and_all_row() -> None:
    out = stats.sessions(_session_events(), DAY, min_cell=1).collect()
    got = {
        (r["device_class"], r["os_family"], r["duration_band"]): (r["persons"], r["sessions"])
        for r in out.iter_rows(named=True)
        if not r["suppressed"]
    }
    # Every cell of the public grid is a row; zero cells are suppressed (0 < min_cell), so
    # mobile/iOS 1-10m goes too: 7 - 4 - 2 - (the zero 10-30m) would give it back.
    assert got == {
        ("mobile", "iOS", "<1m"): (4, 4),
        ("mobile", "iOS", "30m+"): (2, 2),
        ("mobile", "iOS", "all"): (4, 7),
        ("desktop", "Windows", "10-30m"): (1, 1),
        ("desktop", "Windows", "all"): (1, 1),
        ("mobile", "other", "<1m"): (1, 1),
        ("mobile", "other", "all"): (1, 1),
    }
    assert out.height == len(stats.DIM_VALUES["device_class"]) * 8 * 5
    assert out.columns == list(stats.TABLES["sessions"].columns)
    assert out["date"].dtype == pl.Date and out.filter(pl.col("suppressed"))["persons"].null_count()
    assert "session_id" not in out.columns and "ts" not in out.columns


def test_sessions_complementary_suppression_of_a_lone_band() -> None:
    # mobile/iOS at min_cell 2: <1m (4 persons), 1-10m (1 → primary), 10-30m (0 → primary:
    # zero cells of the grid are suppressed too), 30m+ (2), all (4). 1-10m + 10-30m =
    # 7 − 4 − 2 = 1 session, which leaves each of them 2 candidate values (0 or 1): no
    # complement is needed now that the zero band is hidden rather than absent.
    out = stats.sessions(_session_events(), DAY, min_cell=2).collect()
    ios = out.filter((pl.col("device_class") == "mobile") & (pl.col("os_family") == "iOS"))
    flags = dict(zip(ios["duration_band"], ios["suppressed"], strict=True))
    assert flags == {"<1m": False, "1-10m": True, "10-30m": True, "30m+": False, "all": False}
    sup = ios.filter(pl.col("suppressed"))
    assert sup["persons"].null_count() == 2 and sup["sessions"].null_count() == 2
    # single-person groups: 'all' and its band are both primary, nothing more to do
    desk = out.filter(pl.col("device_class") == "desktop")
    assert desk["suppressed"].all() and desk["persons"].null_count() == desk.height


def test_sessions_two_partitions_equal_one() -> None:
    frame = _session_events()
    for min_cell in (1, 2, 3):
        one = stats.sessions(frame, DAY, min_cell).collect()
        two = two_partitions(stats.sessions_map, stats.sessions_reduce, frame, min_cell)
        assert one.equals(two), min_cell


# --------------------------------------------------------------------------------------------
# search_volume


def _search_events() -> pl.LazyFrame:
    rows = [
        ev("p1", "search", search_query="ワイヤレスイヤホン 安い"),
        ev("p1", "search", search_query="ｉＰｈｏｎｅ 15 ケース"),  # full width, same category
        ev("p2", "search", search_query="スニーカー メンズ"),
        ev("p3", "search", search_query="<EMAIL_ADDRESS>"),  # placeholder never decides
        ev("p3", "inquiry", inquiry_text="<PERSON>です。注文した商品がまだ届きません。"),
        ev("p4", "inquiry", inquiry_text="返品したいです。注文番号は<JP_ORDER>です。"),
        ev("p5", "inquiry", inquiry_text="返品したいです。"),
        ev("p6", "page_view", search_query="ワイヤレスイヤホン"),  # not a search event
    ]
    return events(rows)


def test_search_volume_counts_persons_by_kind_and_category() -> None:
    out = stats.search_volume(_search_events(), DAY, min_cell=1).collect()
    got = {
        (r["kind"], r["category"]): r["persons"]
        for r in out.iter_rows(named=True)
        if not r["suppressed"]
    }
    # every kind × category is a row; the zero ones are suppressed
    assert out.height == len(stats.SEARCH_KINDS) * len(CATEGORY_VALUES)
    assert got == {
        ("search", "electronics"): 1,  # p1 twice → once
        ("search", "fashion"): 1,
        ("search", "other"): 1,
        ("inquiry", "shipping"): 1,
        ("inquiry", "returns"): 2,
    }
    assert set(out.columns) == {"date", "kind", "category", "persons", "suppressed"}
    sup = stats.search_volume(_search_events(), DAY, min_cell=2).collect()
    assert sup.filter(~pl.col("suppressed"))["persons"].to_list() == [2]
    assert sup.filter(pl.col("suppressed"))["persons"].null_count() == out.height - 1


def test_search_volume_two_partitions_equal_one() -> None:
    frame = _search_events()
    one = stats.search_volume(frame, DAY, 2).collect()
    two = two_partitions(stats.search_volume_map, stats.search_volume_reduce, frame, 2)
    assert one.equals(two)


def test_categorize_rules_and_values() -> None:
    texts = [
        "炊飯器 5合 送料無料",
        "I was charged twice on card <CREDIT_CARD>. Please refund.",
        "The delivery is late. Order <JP_ORDER>.",
        "退会したいです。ユーザー名は<PERSON>です。",
        "おむつ",
        "ヨガマット",
        "美容液",
        "プロテイン",
        None,
    ]
    got = pl.select(categorize(pl.Series(texts).implode().explode())).to_series().to_list()
    assert got == [
        "electronics",
        "payment",
        "shipping",
        "account",
        "kids_baby",
        "sports_outdoor",
        "beauty",
        "food",
        "other",
    ]
    assert set(got) <= set(CATEGORY_VALUES)


# --------------------------------------------------------------------------------------------
# funnel


def _funnel_events() -> pl.LazyFrame:
    rows = []
    for i in range(6):  # 6 mobile viewers; p0-p3 sign up; p0, p1 purchase; p2 signs up twice
        rows.append(ev(f"p{i}"))
        if i < 4:
            rows.append(ev(f"p{i}", "signup"))
        if i < 2:
            rows.append(ev(f"p{i}", "purchase", amount_jpy=1000))
    rows.append(ev("p2", "signup"))
    rows.append(ev("p8", "purchase", amount_jpy=500))  # no page view: not in the funnel
    rows.append(ev("p9", "signup"))
    rows.append(ev("p9", "page_view", device_class=None))  # unknown device; signup elsewhere
    return events(rows)


def test_funnel_steps_and_independent_suppression() -> None:
    out = stats.funnel(_funnel_events(), DAY, min_cell=1).collect()
    got = {r["device_class"]: r for r in out.iter_rows(named=True)}
    mobile = got["mobile"]
    assert (mobile["persons_page_view"], mobile["persons_signup"], mobile["persons_purchase"]) == (
        6,
        4,
        2,
    )
    unknown = got["unknown"]
    # zero signups on that device class is under min_cell too: null, like any small step
    assert (unknown["persons_page_view"], unknown["persons_signup"]) == (1, None)
    assert unknown["persons_purchase"] is None and unknown["suppressed"]
    # min_cell 3: the purchase step (2) is suppressed on its own; the others stay published
    m3 = stats.funnel(_funnel_events(), DAY, min_cell=3).collect()
    row = m3.filter(pl.col("device_class") == "mobile").row(0, named=True)
    assert (row["persons_page_view"], row["persons_signup"], row["persons_purchase"]) == (
        6,
        4,
        None,
    )
    assert row["suppressed"]
    assert m3.columns == list(stats.TABLES["funnel"].columns)


def test_funnel_two_partitions_equal_one() -> None:
    frame = _funnel_events()
    for min_cell in (1, 3):
        one = stats.funnel(frame, DAY, min_cell).collect()
        two = two_partitions(stats.funnel_map, stats.funnel_reduce, frame, min_cell)
        assert one.equals(two)


# --------------------------------------------------------------------------------------------
# revenue


def _revenue_events() -> pl.LazyFrame:
    amounts = {
        "p1": [999, 1000],  # two bands
        "p2": [4999, 4500],  # one band, twice
        "p3": [5000],
        "p4": [12_340],
        "p5": [60_000],
        "p6": [10_000],
        # three more small purchasers, so that one band's total is not dominated
        "p10": [4000],
        "p11": [4000],
        "p12": [4000],
    }
    rows = [ev(p, "purchase", amount_jpy=a) for p, amts in amounts.items() for a in amts]
    rows.append(ev("p7", "page_view", amount_jpy=99_999))  # not a purchase
    rows.append(ev("p8", "purchase", amount_jpy=None))
    return events(rows)


def test_revenue_bands_persons_and_rounded_totals() -> None:
    out = stats.revenue(_revenue_events(), DAY, min_cell=1).collect()
    got = {
        r["price_band"]: (r["persons"], r["total_amount_jpy"]) for r in out.iter_rows(named=True)
    }
    # Totals of one or two purchasers are dominated (the p % rule: the other one knows the
    # total exactly), so only the count is published there.
    assert got == {
        "<1000": (1, None),
        "1000-4999": (5, 22_000),  # 1000 + 4999 + 4500 + 3 × 4000 = 22,499 → 22,000
        "5000-9999": (1, None),
        "10000-49999": (2, None),
        "50000+": (1, None),
    }
    assert out["total_amount_jpy"].dtype == pl.Int64
    assert out.filter(pl.col("total_amount_jpy").is_null())["suppressed"].all()
    sup = stats.revenue(_revenue_events(), DAY, min_cell=2).collect()
    small = sup.filter(pl.col("persons").is_null())
    assert set(small["price_band"]) == {"50000+", "5000-9999", "<1000"}
    assert small["total_amount_jpy"].null_count() == 3 and small["suppressed"].all()


def test_revenue_two_partitions_equal_one() -> None:
    frame = _revenue_events()
    one = stats.revenue(frame, DAY, 2).collect()
    two = two_partitions(stats.revenue_map, stats.revenue_reduce, frame, 2)
    assert one.equals(two)


# --------------------------------------------------------------------------------------------
# registry, GX specs, data dictionary


def test_every_table_column_is_documented_and_typed() -> None:
    for spec in stats.TABLES.values():
        assert spec.description and spec.description_ja, spec.name
        assert spec.dims[0] == "date" and spec.columns[-1] == "suppressed"
        for col in spec.columns:
            assert col in stats.COLUMN_DOCS, (spec.name, col)
            assert spec.dtype(col) in {"date", "string", "int", "float", "bool"}
    assert stats.TABLES["revenue"].dtype("total_amount_jpy") == "int"
    assert stats.TABLES["measurements_summary"].dtype("weight_mean_kg") == "float"
    assert stats.DIM_VALUES["category"] == CATEGORY_VALUES
    # band labels such as 10000-49999 must not trip the GX PII regexes of published columns
    from tokumei.expectations.patterns import find_pii_kinds

    for dim, values in stats.DIM_VALUES.items():
        for value in values:
            assert not find_pii_kinds(value), (dim, value)


def test_gx_specs_follow_tables() -> None:
    from tokumei.pipeline.steps import _stats_specs

    policy = load_policy(default_policy_dir())
    specs = _stats_specs(policy)
    assert set(specs) == set(stats.TABLES)
    for name, spec in stats.TABLES.items():
        cols = {c.name: c for c in specs[name].columns}
        assert list(cols) == list(spec.columns), name
        for col in spec.columns:
            assert cols[col].dtype == spec.dtype(col), (name, col)
        assert specs[name].count_columns == list(spec.counts)
        assert "session_id" in specs[name].forbidden_columns
    assert cols  # revenue
    assert specs["sessions"].columns[3].allowed == ["all", "<1m", "1-10m", "10-30m", "30m+"]


@pytest.mark.parametrize("name", ["sessions", "search_volume", "funnel", "revenue"])
def test_empty_day_gives_the_whole_grid_suppressed(name: str) -> None:
    # a day without events publishes the same rows as any other day, every one suppressed
    from tokumei.stats.grids import grid

    frame = events([])
    out = getattr(stats, name)(frame, DAY, 10).collect()
    assert out.columns == list(stats.TABLES[name].columns)
    assert out.height == grid(name).height > 0 and out["suppressed"].all()


def test_committed_data_dictionary_is_generated() -> None:
    committed = (ROOT / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert committed == stats.data_dictionary(), (
        "docs/data_dictionary.md is stale: run `uv run python scripts/gen_data_dictionary.py`"
    )
    for name in stats.TABLES:
        assert f"## {name}" in committed
