"""Issue 15, findings 2-4, at table level: existence (public grids), homogeneity (l-diversity of
band distributions) and magnitude measures (winsorizing, dominance, the median rule).

Each test builds the work-layer frames a table is reduced from (one row per person), runs the
real reduce functions and checks what an attacker holding the published frames can learn.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokumei.anonymize.policy import DisclosurePolicy
from tokumei.stats import grids, periods
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import diversity
from tokumei.stats.disclosure import magnitude as mag

T = 10
RULES = DisclosurePolicy()
MONTH_END = date(2026, 11, 30)


def _per_person(rows: list[tuple[str, str, str, float]]) -> pl.LazyFrame:
    """(person, age_band, gender, daily mean weight) → the measurements map's output."""
    return pl.LazyFrame(
        rows,
        schema={
            "person": pl.String,
            "age_band": pl.String,
            "gender": pl.String,
            "weight_kg": pl.Float64,
        },
        orient="row",
    )


def _population(rng: random.Random, n: int = 120) -> list[tuple[str, str, str, float]]:
    """A day's ordinary population over a few age/gender groups."""
    groups = [("30-34", "female"), ("40-44", "male"), ("50-54", "female"), ("60-64", "male")]
    return [(f"p{i}", *groups[i % len(groups)], round(rng.gauss(64, 8), 1)) for i in range(n)]


# --------------------------------------------------------------------------------------------
# existence: every cell of the public grid, every day


def test_a_lone_persons_weigh_in_days_cannot_be_told_from_measurements_summary() -> None:
    """The only person of (90+, other) weighs in on some days: the release has the same rows
    on every day, and their cell says the same thing on every day."""
    rng = random.Random(7)
    base = _population(rng)
    lone = ("lone", "90+", "other", 58.0)
    published: dict[bool, list[pl.DataFrame]] = {True: [], False: []}
    for d in range(8):
        present = d % 3 == 0
        rows = base + ([lone] if present else [])
        day = (date(2026, 11, 1) + timedelta(days=d)).isoformat()
        out = stats.measurements_reduce(_per_person(rows), day, T).collect()
        published[present].append(out)
    everything = published[True] + published[False]
    keys = {tuple(df.select("age_band", "gender").rows()) for df in everything}
    assert len(keys) == 1  # the same rows, in the same order, on every day
    assert len(next(iter(keys))) == grids.grid("measurements_summary").height
    cell = [
        df.filter((pl.col("age_band") == "90+") & (pl.col("gender") == "other")).drop("date")
        for df in everything
    ]
    assert all(c.equals(cell[0]) for c in cell)
    assert cell[0]["suppressed"].item() and cell[0]["persons"].item() is None
    # a day without any measurement publishes the same rows too, all suppressed
    empty = stats.measurements_reduce(_per_person([]), "2026-11-09", T).collect()
    assert tuple(empty.select("age_band", "gender").rows()) == next(iter(keys))
    assert empty["suppressed"].all()


def test_grids_come_from_public_domains_and_off_grid_values_never_make_a_row() -> None:
    # a device class nobody has seen is a row (zero, suppressed); an unknown one folds
    ev = pl.LazyFrame(
        {
            "person": [f"p{i}" for i in range(12)] + ["q"],
            "event": ["page_view"] * 13,
            "device_class": ["mobile"] * 12 + ["smart-fridge"],
        }
    )
    out = stats.funnel_reduce(stats.funnel_map(ev), "2026-11-24", T).collect()
    assert out["device_class"].to_list() == sorted(grids.DEVICE_CLASSES)
    row = dict(zip(out["device_class"], out["persons_page_view"], strict=True))
    assert row["mobile"] == 12 and row["tablet"] is None and "smart-fridge" not in row
    # a cell outside a grid fails closed, naming the table and column but not the value
    bad = pl.LazyFrame({"price_band": ["<1000", "secret-band"], "persons": [12, 3]})
    with pytest.raises(grids.OffGridError, match="revenue.*price_band") as exc:
        grids.complete(bad, grids.grid("revenue"), "revenue", {"persons": 0}).collect()
    assert "secret-band" not in str(exc.value)
    # the grid is decided before the data: two different days give the same grid
    assert grids.grid("measurement_trends").height == (
        grids.grid("measurements_summary").height * 16
    )


def test_retention_cohorts_publish_every_final_cell_even_of_an_empty_month() -> None:
    cells = [("2026-09", 0), ("2026-10", 0)]
    persons = pl.LazyFrame(
        {"person": ["a"], "signup_date": [date(2026, 10, 3)]},
        schema={"person": pl.String, "signup_date": pl.Date},
    )
    activity = pl.LazyFrame(schema=periods.ACTIVITY_SCHEMA)
    out = periods.retention_cohorts(activity, persons, cells).collect().sort("signup_month")
    assert out["signup_month"].to_list() == ["2026-09", "2026-10"]
    assert out["cohort_persons"].to_list() == [0, 1]


# --------------------------------------------------------------------------------------------
# attribute disclosure: homogeneous groups


def _activity(people: list[tuple[str, str, str, float, float]]) -> pl.LazyFrame:
    """(person, age_band, gender, weight, body fat) → one activity row each on the month end."""
    return pl.LazyFrame(
        {
            "person": [p[0] for p in people],
            "date": [MONTH_END] * len(people),
            "active": [True] * len(people),
            "prefecture": ["東京都"] * len(people),
            "age_band": [p[1] for p in people],
            "gender": [p[2] for p in people],
            "signup_date": [None] * len(people),
            "weight_kg": [p[3] for p in people],
            "body_fat_pct": [p[4] for p in people],
        },
        schema=periods.ACTIVITY_SCHEMA,
    )


def _trends(people: list[tuple[str, str, str, float, float]]) -> pl.DataFrame:
    period = periods.month_of(MONTH_END)
    table = grids.complete(
        periods.measurement_trends(_activity(people), period),
        grids.grid("measurement_trends"),
        "measurement_trends",
        {"persons": 0},
    ).with_columns(pl.lit(period.label).alias("month"))
    return stats.period_reduce(table, MONTH_END.isoformat(), "measurement_trends", T)


def _group(df: pl.DataFrame, age: str, gender: str, measure: str) -> pl.DataFrame:
    return df.filter(
        (pl.col("age_band") == age) & (pl.col("gender") == gender) & (pl.col("measure") == measure)
    )


def test_a_group_all_in_one_weight_band_is_not_published_as_homogeneous() -> None:
    rng = random.Random(3)
    people = [
        (f"m{i}", "70-74", "male", 60 + rng.random() * 9, 15 + 10 * rng.random()) for i in range(54)
    ]
    # a diverse group: weights over three bands, body fat over two
    people += [
        (f"f{i}", "30-34", "female", 45.0 + 10 * (i % 3), 22.0 + 5 * (i % 2)) for i in range(45)
    ]
    # 15 in one band and 6 in another: only one band is published, so "possibly all in one"
    people += [
        (f"w{i}", "50-54", "female", 55.0 if i < 15 else 75.0, 30.0 + i % 10) for i in range(21)
    ]
    raw = _trends(people)
    # what today's release would publish: 54 men, all in 60-69 kg
    assert _group(raw, "70-74", "male", "weight").filter(~pl.col("suppressed"))[
        "band"
    ].to_list() == ["60-69"]
    assert not diversity.audit(raw, "measurement_trends", RULES)["ok"]

    safe, groups = diversity.protect(raw, "measurement_trends", RULES)
    assert groups == 2
    for age, gender in (("70-74", "male"), ("50-54", "female")):
        for measure in ("weight", "body_fat"):  # both partitions of the same persons
            cells = _group(safe, age, gender, measure)
            assert cells["persons"].null_count() == cells.height == 8 and cells["suppressed"].all()
    diverse = _group(safe, "30-34", "female", "weight").filter(~pl.col("suppressed"))
    assert sorted(diverse["band"].to_list()) == ["40-49", "50-59", "60-69"]
    verdict = diversity.audit(safe, "measurement_trends", RULES)
    assert verdict["ok"] and verdict["homogeneous"] == 0 and verdict["published"] > 0


@given(
    st.lists(st.integers(min_value=0, max_value=60), min_size=2, max_size=8),
    st.integers(min_value=2, max_value=4),
    st.floats(min_value=0.5, max_value=0.95),
)
def test_after_protection_no_published_distribution_is_possibly_homogeneous(
    counts: list[int], l_div: int, share: float
) -> None:
    rules = DisclosurePolicy(l_diversity=l_div, max_band_share=share)
    bands = [f"{i * 1000}" for i in range(len(counts))]
    frame = pl.DataFrame(
        {"date": ["d"] * len(counts), "month": ["m"] * len(counts), "price_band": bands}
        | {"persons": counts}
    ).with_columns(
        pl.when(pl.col("persons") < T).then(None).otherwise(pl.col("persons")).alias("persons"),
        pl.lit(None, pl.Int64).alias("total_amount_jpy"),
        (pl.col("persons") < T).alias("suppressed"),
    )
    safe, _ = diversity.protect(frame, "monthly_revenue", rules)
    published = safe["persons"].drop_nulls().to_list()
    assert diversity.audit(safe, "monthly_revenue", rules)["ok"]
    if published:  # the attacker's view: >= l published bands, none above the share
        assert len(published) >= l_div and max(published) / sum(published) <= share


# --------------------------------------------------------------------------------------------
# magnitude measures


def test_an_outlier_of_210_kg_cannot_be_estimated_from_mean_and_median() -> None:
    """persons × (mean − median) over the days: the attack of finding 4, on the release."""
    rng = random.Random(11)
    estimates_old, estimates_new = [], []
    for d in range(30):
        rows = _population(rng)
        rows += [(f"g{i}", "40-44", "female", round(rng.gauss(62, 5), 1)) for i in range(14)]
        rows.append(("outlier", "40-44", "female", 210.0))
        cell = pl.col("age_band").eq("40-44") & pl.col("gender").eq("female")
        # today's code: plain mean and median of the same per-person values
        raw = _per_person(rows).collect().filter(cell)["weight_kg"]
        estimates_old.append(raw.median() + raw.len() * (raw.mean() - raw.median()))
        day = (date(2026, 10, 1) + timedelta(days=d)).isoformat()
        out = stats.measurements_reduce(_per_person(rows), day, T).collect().filter(cell)
        n, mean, median = (
            out.row(0, named=True)["persons"],
            out["weight_mean_kg"].item(),
            out["weight_median_kg"].item(),
        )
        estimates_new.append(median + n * (mean - median))
    old = sum(estimates_old) / len(estimates_old)
    new = sum(estimates_new) / len(estimates_new)
    assert abs(old - 210) < 20  # the attack works on unprotected means (the finding)
    assert abs(new - 210) > 20  # and not on the published ones
    assert new < 120  # what it estimates is the population's clipping bound


def test_winsorizing_bounds_hold_enough_persons_and_small_days_publish_no_measure() -> None:
    values = [float(v) for v in range(1, 101)]
    df = pl.DataFrame({"w": values})
    exact = DisclosurePolicy(winsor_min_persons=10, winsor_step=0)
    w = df.select(mag.winsorize(pl.col("w"), exact))["w"]
    assert (w == w.max()).sum() >= 10 and (w == w.min()).sum() >= 10
    assert w.max() == 91.0 and w.min() == 10.0  # the 10th largest and smallest values
    # rounded inward to 5: the same persons and more sit at each bound
    rules = DisclosurePolicy(winsor_min_persons=10, winsor_step=5)
    w = df.select(mag.winsorize(pl.col("w"), rules))["w"]
    assert w.max() == 90.0 and w.min() == 10.0 and (w == 90.0).sum() == 11
    # one more person near the top moves the exact bound by one rank, not the rounded one
    more = pl.DataFrame({"w": [*values, 95.5]})
    assert more.select(mag.winsorize(pl.col("w"), exact))["w"].max() == 92.0
    assert more.select(mag.winsorize(pl.col("w"), rules))["w"].max() == 90.0
    small = pl.DataFrame({"w": values[:19]}).select(mag.winsorize(pl.col("w"), rules))["w"]
    assert small.null_count() == 19  # fewer than 2 x 10 persons: no bound, no measure


def test_median_is_a_central_mean_and_needs_enough_persons() -> None:
    rules = DisclosurePolicy(median_central=3, median_min_persons=10)
    frame = pl.DataFrame(
        {"v": [[float(x) for x in range(1, 12)], [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 50], [1.0] * 9]}
    )
    got = frame.select(mag.central_median(pl.col("v"), rules))["v"].to_list()
    assert got == [6.0, 5.5, None]  # 5,6,7; 4,5,6,7 (even count: 4 central values); too few


def test_dominance_rules() -> None:
    rules = DisclosurePolicy(dominance_n=2, dominance_k=0.8, p_percent=0.1)
    cases = pl.DataFrame(
        {
            "total": [100.0, 100.0, 100.0, 100.0, 0.0],
            "top": [[50.0, 35.0], [40.0, 30.0], [60.0, 36.0], [95.0], []],
        },
        schema={"total": pl.Float64, "top": pl.List(pl.Float64)},
    )
    got = cases.select(mag.dominated(pl.col("total"), pl.col("top"), rules))["total"].to_list()
    # 85 % by two (n, k); 70 % by two and 30 left (safe); 4 left < 10 % of 60 (p %);
    # one contributor; zero total
    assert got == [True, False, True, True, False]


def test_revenue_hides_a_dominated_total_not_its_count_and_partitions_agree() -> None:
    buyers = {f"p{i}": 60_000 for i in range(12)}
    buyers["whale"] = 5_000_000
    ev = pl.LazyFrame(
        {
            "person": list(buyers),
            "event": ["purchase"] * len(buyers),
            "amount_jpy": list(buyers.values()),
        }
    )
    out = stats.revenue(ev, "2026-11-24", T).collect()
    top = out.filter(pl.col("price_band") == "50000+").row(0, named=True)
    assert top["persons"] == 13 and top["total_amount_jpy"] is None and top["suppressed"]
    assert out.height == len(stats.PRICE_BANDS)
    # map per partition, then reduce: the same as one partition (the top lists merge)
    parts = [ev.filter(pl.col("person").str.ends_with(str(k))) for k in range(10)]
    parts.append(ev.filter(~pl.col("person").str.contains(r"\d$")))
    hists = pl.concat([stats.revenue_map(p).collect() for p in parts])
    assert stats.revenue_reduce(hists.lazy(), "2026-11-24", T).collect().equals(out)
    # without the whale the band's total is published
    calm = stats.revenue(ev.filter(pl.col("person") != "whale"), "2026-11-24", T).collect()
    assert calm.filter(pl.col("price_band") == "50000+")["total_amount_jpy"].item() == 720_000


def test_page_views_publish_every_published_template_on_every_device_class() -> None:
    pairs = pl.LazyFrame(
        {
            "person": [f"p{i}" for i in range(12)] + ["q"],
            "url_template": ["shop.example.jp/items/:id"] * 12 + ["shop.example.jp/u/someone"],
            "device_class": ["mobile"] * 13,
        }
    )
    rare = stats.rare_templates(stats.template_persons(pairs), T)
    out = stats.page_views_reduce(stats.page_views_map(pairs, rare), "2026-11-24", T).collect()
    templates = sorted(set(out["url_template"]))
    assert templates == ["other", "shop.example.jp/items/:id"]  # the rare one folded
    assert out.height == 2 * len(grids.DEVICE_CLASSES)
    shown = out.filter(~pl.col("suppressed"))
    assert shown.select("url_template", "device_class", "persons").rows() == [
        ("shop.example.jp/items/:id", "mobile", 12)
    ]


def test_monthly_revenue_keeps_per_person_contributions_for_the_dominance_rules() -> None:
    rows = [(f"p{i}", date(2026, 11, 1 + i), "50000+", 1, 60_000) for i in range(12)]
    rows += [("whale", date(2026, 11, 3), "50000+", 1, 2_000_000)]
    rows += [("whale", date(2026, 11, 9), "50000+", 1, 2_000_000)]  # one person, two days
    purchases = pl.LazyFrame(rows, schema=periods.PURCHASES_SCHEMA, orient="row")
    out = periods.monthly_revenue(purchases, periods.month_of(MONTH_END)).collect()
    row = out.row(0, named=True)
    assert row["persons"] == 13 and row["_top"][0] == 4_000_000  # summed per person first
    hidden = out.select(mag.dominated(pl.col("amount_jpy").cast(pl.Float64), pl.col("_top"), RULES))
    assert hidden.item()
