"""Period tables (tokumei/stats/periods.py) and cross-release protection (tokumei/stats/disclosure/cross_release.py)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from tokumei.stats import periods
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import cross_release

T = 10


def test_periods_are_calendar_weeks_and_months() -> None:
    w = periods.week_of(date(2026, 11, 25))
    assert (w.label, w.first, w.last) == ("2026-W48", date(2026, 11, 23), date(2026, 11, 29))
    assert len(w.days()) == 7
    m = periods.month_of(date(2028, 2, 10))
    assert (m.label, m.first, m.last) == ("2028-02", date(2028, 2, 1), date(2028, 2, 29))
    # a Sunday closes its week only; a month end that is a Sunday closes both
    assert [p.kind for p in periods.periods_closing_on(date(2026, 11, 29))] == ["week"]
    assert [p.kind for p in periods.periods_closing_on(date(2026, 11, 30))] == ["month"]
    assert [p.kind for p in periods.periods_closing_on(date(2026, 5, 31))] == ["week", "month"]
    assert periods.periods_closing_on(date(2026, 11, 25)) == []


def test_cohort_cells_are_final_and_fully_observed() -> None:
    cells = periods.cohort_cells(date(2026, 11, 30), date(2026, 10, 1))
    # October cohort: Oct 31 + 7w + 6 <= Nov 30  <=>  w <= 3
    assert cells == [("2026-10", w) for w in range(4)]
    # history starting mid-month: that month has no cohort (its early signups were not seen)
    assert periods.cohort_cells(date(2026, 11, 30), date(2026, 10, 2)) == []
    late = periods.cohort_cells(date(2027, 6, 30), date(2026, 10, 1))
    assert ("2026-10", periods.COHORT_WEEKS - 1) in late
    assert all(w < periods.COHORT_WEEKS for _, w in late)


def _activity(rows: list[tuple]) -> pl.LazyFrame:
    cols = ["person", "date", "active", "prefecture", "age_band", "gender", "signup_date"]
    frame = pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        pl.lit(None, pl.Float64).alias("weight_kg"), pl.lit(None, pl.Float64).alias("body_fat_pct")
    )
    return frame.lazy().cast(periods.ACTIVITY_SCHEMA)  # type: ignore[arg-type]


def test_active_users_count_each_person_once_with_latest_attributes() -> None:
    d = date(2026, 11, 23)
    act = _activity(
        [
            ("p1", d, True, "東京都", "30-34", "f", None),
            ("p1", d + timedelta(days=3), True, "大阪府", "30-34", "f", None),  # moved
            ("p2", d, True, "東京都", "30-34", "f", None),
            ("p2", d + timedelta(days=1), True, "東京都", "30-34", "f", None),
            ("p3", d, False, "東京都", "30-34", "f", None),  # measured only: not active
        ]
    )
    out = periods.active_users(act, periods.week_of(d)).collect().sort("prefecture")
    assert out.select("prefecture", "persons").rows() == [("大阪府", 1), ("東京都", 1)]
    assert set(out["week"]) == {"2026-W48"}


def test_retention_cohorts_count_weeks_since_own_signup() -> None:
    s1, s2 = date(2026, 10, 3), date(2026, 10, 30)
    persons = pl.LazyFrame(
        {"person": ["a", "b", "c"], "signup_date": [s1, s2, None]},
        schema={"person": pl.String, "signup_date": pl.Date},
    )
    act = _activity(
        [
            ("a", s1, True, "x", "x", "x", s1),  # week 0
            ("a", s1 + timedelta(days=8), True, "x", "x", "x", s1),  # week 1
            ("b", s2 + timedelta(days=6), True, "x", "x", "x", s2),  # week 0
            ("b", s2 + timedelta(days=7), False, "x", "x", "x", s2),  # not active
            ("c", s2, True, "x", "x", "x", None),  # cookie person: no cohort
        ]
    )
    cells = [("2026-10", 0), ("2026-10", 1), ("2026-10", 2)]
    out = periods.retention_cohorts(act, persons, cells).collect().sort("weeks_since_signup")
    assert out.select("weeks_since_signup", "cohort_persons", "persons").rows() == [
        ("00", 2, 2),
        ("01", 2, 1),
        ("02", 2, 0),
    ]


def test_measurement_trends_band_monthly_means_top_and_bottom_coded() -> None:
    d = date(2026, 11, 1)
    act = _activity(
        [
            ("a", d, False, "x", "30-34", "f", None),
            ("a", d + timedelta(1), False, "x", "30-34", "f", None),
        ]
    ).with_columns(pl.Series("weight_kg", [150.0, 160.0]), pl.Series("body_fat_pct", [5.0, None]))
    out = periods.measurement_trends(act, periods.month_of(d)).collect().sort("measure")
    assert out.select("measure", "band", "persons").rows() == [
        ("body_fat", "<10", 1),
        ("weight", "100+", 1),
    ]
    assert set(out["band"]) <= set(stats.DIM_VALUES["band"])


# ---------------------------------------------------------------------------------------------
# cross-release: the closed-form bound is what an LP attacker gets


def _lp_min(m: int, published: list[int], n_supp: int) -> int:
    """min x_0 s.t. sum(x) >= m - sum(published), 0 <= x_i <= T - 1 (integral LP, HiGHS)."""
    need = m - sum(published)
    res = linprog(
        c=np.eye(n_supp)[0],
        A_ub=-np.ones((1, n_supp)),
        b_ub=[-need],
        bounds=[(0, T - 1)] * n_supp,
        method="highs",
    )
    assert res.status == 0
    return int(np.ceil(res.fun - 1e-9))


@given(
    published=st.lists(st.integers(T, 40), max_size=5),
    n_supp=st.integers(1, 4),
    slack=st.integers(0, 30),
)
def test_cover_bound_equals_the_lp_attackers_bound(
    published: list[int], n_supp: int, slack: int
) -> None:
    # a consistent world: the coarse count is at most the sum of the fine counts
    fine_true = [*published, *([T - 1] * n_supp)]
    m = max(max(fine_true), sum(fine_true) - slack)
    days = [
        pl.DataFrame({"g": ["a"], "persons": [v]}, schema={"g": pl.String, "persons": pl.Int64})
        for v in published
    ]
    days += [
        pl.DataFrame({"g": ["a"], "persons": [None]}, schema={"g": pl.String, "persons": pl.Int64})
        for _ in range(n_supp)
    ]
    coarse = pl.DataFrame({"g": ["a"], "persons": [m]})
    lb = max(_lp_min(m, published, n_supp), 0)
    mask = cross_release.cover_suppression(coarse, [days], ["g"], "persons", T)
    assert mask.to_list() == [lb > 0]
    audit = cross_release.cover_audit(coarse, [days], ["g"], "persons", T)
    assert audit["min_width"] == T - lb
    # after the complement is applied nothing is narrowed
    safe = coarse.with_columns(
        pl.when(mask).then(None).otherwise(pl.col("persons")).alias("persons")
    )
    assert cross_release.cover_audit(safe, [days], ["g"], "persons", T)["ok"]


def test_a_missing_fine_release_gives_no_bound() -> None:
    coarse = pl.DataFrame({"g": ["a"], "persons": [30]})
    days = [
        pl.DataFrame({"g": ["a"], "persons": [25]}),
        pl.DataFrame({"g": ["a"], "persons": [None]}, schema={"g": pl.String, "persons": pl.Int64}),
        None,
    ]
    assert cross_release.cover_suppression(coarse, [days], ["g"], "persons", T).to_list() == [False]
    assert cross_release.cover_suppression(coarse, [days[:2]], ["g"], "persons", T).to_list() == [
        True
    ]


def test_amount_guard_hides_a_period_sum_of_a_suppressed_day() -> None:
    month = pl.DataFrame({"price_band": ["<1000", "50000+"], "total_amount_jpy": [90_000, 700_000]})
    days = [
        pl.DataFrame({"price_band": ["<1000", "50000+"], "total_amount_jpy": [40_000, 600_000]}),
        pl.DataFrame({"price_band": ["<1000", "50000+"], "total_amount_jpy": [50_000, None]}),
        None,
    ]
    hide = cross_release.amount_guard(month, days, ["price_band"], "total_amount_jpy")
    assert hide.to_list() == [False, True]


def test_a_rerelease_keeps_what_the_replaced_release_hid() -> None:
    old = pl.DataFrame(
        {"g": ["a", "b", "c"], "persons": [None, 15, 12], "suppressed": [True, False, False]}
    )
    new = pl.DataFrame(
        {
            "g": ["a", "b", "c", "d"],
            "persons": [11, 15, 9, 20],
            "suppressed": [False, False, True, False],
        }
    )
    new = new.with_columns(
        pl.when(pl.col("suppressed")).then(None).otherwise(pl.col("persons")).alias("persons")
    )
    out, extra = cross_release.keep_previous_suppression(new, old, ["g"], ["persons"])
    assert extra == 1
    assert out["persons"].to_list() == [None, 15, None, 20]
    assert out["suppressed"].to_list() == [True, False, True, False]


@pytest.mark.parametrize("name", [n for n, s in stats.TABLES.items() if s.release != "daily"])
def test_period_reduce_suppresses_each_count(name: str) -> None:
    spec = stats.TABLES[name]
    dims = {d: ["x", "y"] for d in spec.dims if d != "date"}
    counts = {c: [3, 40] for c in spec.counts}
    extra = {"amount_jpy": [1_500, 123_456]} if spec.measures else {}
    out = stats.period_reduce(pl.DataFrame({**dims, **counts, **extra}), "2026-11-30", name, T)
    assert list(out.columns) == list(spec.columns)
    assert out["suppressed"].to_list() == [True, False]
    for c in (*spec.counts, *spec.measures):
        assert out[c][0] is None and out[c][1] is not None
    if spec.measures:
        assert out["total_amount_jpy"][1] == 123_000


def test_zero_cells_of_the_public_grid_are_suppressed_like_small_ones() -> None:
    """A suppressed cell must not tell that somebody with that combination exists."""
    grid = pl.DataFrame(
        {
            "prefecture": ["東京都", "沖縄県", "沖縄県", "unknown"],
            "age_band": ["30-34"] * 4,
            "gender": ["female", "female", "male", "female"],
        }
    )
    hists = pl.LazyFrame(
        {
            "prefecture": ["東京都", "沖縄県", "火星"],  # the last one is outside the grid
            "age_band": ["30-34", "30-34", "30-34"],
            "gender": ["female", "female", "female"],
            "persons": [25, 3, 12],
        }
    )
    out = stats.dau_reduce(hists, "2026-11-24", T, grid).collect()
    rows = {(r["prefecture"], r["gender"]): r["persons"] for r in out.iter_rows(named=True)}
    # 3 persons and 0 persons look the same; a value outside the grid never names itself in a
    # row: it counts as unknown (each person is in one cell, so the count stays exact)
    assert rows == {
        ("東京都", "female"): 25,
        ("沖縄県", "female"): None,
        ("沖縄県", "male"): None,
        ("unknown", "female"): 12,
    }
