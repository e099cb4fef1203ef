"""The release disclosure model (tokumei/stats/disclosure/release.py), attacked from outside.

Every check here uses its own attacker: an LP written in this file with scipy's HiGHS straight
from the raw relations of the generated data (two partitions of the same persons, a week over
its days), not the production system builder or attacker. Protection must leave every
suppressed cell at least ``T`` candidate values against it.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from tokumei.stats.disclosure import release as sdc
from tokumei.stats.disclosure.audit import audit_tables
from tokumei.stats.disclosure.relations import (
    Aggregate,
    SamePersons,
    UndeclaredRelationsError,
)
from tokumei.stats.tables import TABLES, TableSpec

T = 10
SUNDAY = date(2026, 11, 29)
WEEK = [SUNDAY - timedelta(days=6 - i) for i in range(7)]
MONTH_END = "2026-11-30"


def _published(truth: pl.DataFrame, count: str = "persons") -> pl.DataFrame:
    """Primary suppression written here (not the production reduce)."""
    small = pl.col(count) < T
    return truth.with_columns(
        pl.when(small).then(None).otherwise(pl.col(count)).alias(count),
        small.alias("suppressed"),
    )


# ---------------------------------------------------------------------------------------------
# The independent attacker


class Attack:
    """Variables = suppressed cells; published values are constants; rows from raw relations."""

    def __init__(self) -> None:
        self.names: list[tuple] = []
        self.box: list[tuple[float, float | None]] = []
        self.a_eq: list[dict[int, float]] = []
        self.b_eq: list[float] = []
        self.a_ub: list[dict[int, float]] = []
        self.b_ub: list[float] = []

    def term(self, name: tuple, published: float | None, true: int) -> tuple[int | None, float]:
        """(var index or None, constant) of one cell."""
        if published is not None and not np.isnan(published):
            return None, float(published)
        self.names.append(name)
        self.box.append((0.0, T - 1.0) if true < T else (0.0, None))
        return len(self.names) - 1, 0.0

    def linear(self, terms: list[tuple[float, tuple[int | None, float]]]) -> tuple[dict, float]:
        coefs: dict[int, float] = {}
        const = 0.0
        for a, (v, c) in terms:
            if v is None:
                const += a * c
            else:
                coefs[v] = coefs.get(v, 0.0) + a
        return coefs, const

    def eq(self, terms: list, rhs: float) -> None:
        coefs, const = self.linear(terms)
        self.a_eq.append(coefs)
        self.b_eq.append(rhs - const)

    def le(self, terms: list, rhs: float) -> None:
        coefs, const = self.linear(terms)
        self.a_ub.append(coefs)
        self.b_ub.append(rhs - const)

    def widths(self) -> dict[tuple, float]:
        n = len(self.names)
        if n == 0:
            return {}

        def dense(rows: list[dict[int, float]]) -> np.ndarray | None:
            if not rows:
                return None
            m = np.zeros((len(rows), n))
            for i, r in enumerate(rows):
                for j, a in r.items():
                    m[i, j] = a
            return m

        kw = {
            "A_eq": dense(self.a_eq),
            "b_eq": self.b_eq or None,
            "A_ub": dense(self.a_ub),
            "b_ub": self.b_ub or None,
            "bounds": self.box,
            "method": "highs",
        }
        out: dict[tuple, float] = {}
        for j, name in enumerate(self.names):
            c = np.zeros(n)
            c[j] = 1.0
            lo = linprog(c, **kw)
            hi = linprog(-c, **kw)
            assert lo.status == 0, lo.message
            top = np.inf if hi.status == 3 else -hi.fun
            out[name] = np.floor(top + 1e-6) - np.ceil(lo.fun - 1e-6) + 1
        return out


def trends_attack(published: pl.DataFrame, truth: pl.DataFrame, attack: Attack) -> None:
    """Weight bands and body-fat bands of a group: sums differ by the (told) one-measure persons."""
    joined = published.join(
        truth.rename({"persons": "_true"}), on=["month", "age_band", "gender", "measure", "band"]
    )
    for (age, gender), grp in joined.group_by(["age_band", "gender"], maintain_order=True):
        sides = []
        for measure in ("weight", "body_fat"):
            rows = grp.filter(pl.col("measure") == measure)
            terms = [
                attack.term(("trend", age, gender, measure, b), p, tr)
                for b, p, tr in rows.select("band", "persons", "_true").iter_rows()
            ]
            sides.append((terms, int(rows["_true"].sum())))
        (w, w_true), (f, f_true) = sides
        attack.eq([(1.0, x) for x in w] + [(-1.0, x) for x in f], float(w_true - f_true))


# ---------------------------------------------------------------------------------------------
# Finding 1, on data written for it


def _finding1() -> tuple[pl.DataFrame, pl.DataFrame]:
    """One (age band, gender) group: one man of 80-84 weighs 50-59 kg; nobody else is small."""
    rows = [
        ("80-84", "male", "weight", "50-59", 1),
        ("80-84", "male", "weight", "60-69", 30),
        ("80-84", "male", "weight", "70-79", 12),
        ("80-84", "male", "body_fat", "20-24", 13),
        ("80-84", "male", "body_fat", "25-29", 30),
        ("40-44", "female", "weight", "60-69", 25),
        ("40-44", "female", "weight", "70-79", 20),
        ("40-44", "female", "body_fat", "25-29", 22),
        ("40-44", "female", "body_fat", "30-34", 23),
    ]
    truth = pl.DataFrame(
        rows, schema=["age_band", "gender", "measure", "band", "persons"], orient="row"
    ).with_columns(pl.lit("2026-11").alias("month"))
    published = _published(
        truth.with_columns(pl.lit(MONTH_END).str.to_date().alias("date"))
    ).select(TABLES["measurement_trends"].columns)
    return truth, published


def _widths_trends(published: pl.DataFrame, truth: pl.DataFrame) -> dict[tuple, float]:
    attack = Attack()
    trends_attack(published, truth, attack)
    return attack.widths()


def test_finding1_old_audit_passes_a_table_whose_cell_is_recovered_exactly() -> None:
    truth, published = _finding1()
    assert audit_tables({"measurement_trends": published}, T)["measurement_trends"]["ok"]
    widths = _widths_trends(published, truth)
    assert widths[("trend", "80-84", "male", "weight", "50-59")] == 1  # exactly 1 person


def test_finding1_new_audit_fails_it_and_protection_closes_it() -> None:
    truth, published = _finding1()
    frames = {"measurement_trends": published}
    truths = {"measurement_trends": truth}
    verdict = sdc.audit(frames, T, truth=truths)["measurement_trends"]
    assert not verdict["ok"] and verdict["min_width"] == 1
    assert "weight bands and body-fat bands: same persons" in verdict["relations"]
    protected, added, _ = sdc.protect_release(frames, T, truth=truths)
    assert added["measurement_trends"] > 0
    after = protected["measurement_trends"]
    widths = _widths_trends(after, truth)
    assert widths and min(widths.values()) >= T
    assert sdc.audit(protected, T, truth=truths)["measurement_trends"]["ok"]
    # only counts were hidden; published counts are unchanged where still published
    both = after.join(published, on=["age_band", "gender", "measure", "band"], suffix="_before")
    kept = both.filter(pl.col("persons").is_not_null())
    assert (kept["persons"] == kept["persons_before"]).all()


def test_a_table_without_declared_relations_cannot_be_published() -> None:
    spec = TableSpec("mystery", "undeclared", ("date", "g"), ("persons",))
    frame = pl.DataFrame({"date": [date(2026, 11, 30)], "g": ["a"], "persons": [12]})
    with pytest.raises(UndeclaredRelationsError, match="mystery"):
        sdc.protect_release({"mystery": frame}, T, specs={"mystery": spec})
    with pytest.raises(UndeclaredRelationsError, match="mystery"):
        sdc.audit({"mystery": frame}, T, specs={"mystery": spec})


def test_a_relation_that_does_not_hold_fails_closed() -> None:
    """A declared total that is not the sum of its cells is a wrong model: refuse to publish."""
    spec = TableSpec(
        "totals",
        "an 'all' row declared as the sum of its parts",
        ("date", "g", "part"),
        ("persons",),
        relations=(
            Aggregate("all = sum(parts)", "persons", "sum", ("g",), total_rows=("part", "all")),
        ),
    )
    truth = pl.DataFrame({"g": ["a"] * 3, "part": ["p", "q", "all"], "persons": [10, 15, 30]})
    frame = _published(truth.with_columns(pl.lit(date(2026, 11, 30)).alias("date")))
    with pytest.raises(sdc.InconsistentReleaseError, match=r"totals: all = sum\(parts\)"):
        sdc.protect_release({"totals": frame}, T, truth={"totals": truth}, specs={"totals": spec})
    fixed = truth.with_columns(
        pl.when(pl.col("part") == "all").then(25).otherwise("persons").alias("persons")
    )
    frame = _published(fixed.with_columns(pl.lit(date(2026, 11, 30)).alias("date")))
    _, _, outcome = sdc.protect_release(
        {"totals": frame}, T, truth={"totals": fixed}, specs={"totals": spec}
    )
    assert outcome.ok


# ---------------------------------------------------------------------------------------------
# Random tables with declared relations: two partitions of the same persons, a week over days

SPECS = {
    "trend": TableSpec(
        "trend",
        "weight and body-fat bands of the same persons",
        ("date", "month", "age_band", "gender", "measure", "band"),
        ("persons",),
        release="monthly",
        relations=(
            SamePersons(
                "weight bands and body-fat bands: same persons",
                "persons",
                ("month", "age_band", "gender"),
                "measure",
                "band",
            ),
        ),
    ),
    "daily": TableSpec(
        "daily", "daily persons", ("date", "k"), ("persons",), relations=(), complements=False
    ),
    "weekly": TableSpec(
        "weekly",
        "weekly persons",
        ("date", "week", "k"),
        ("persons",),
        release="weekly",
        relations=(
            Aggregate(
                "week <= sum(days)",
                "persons",
                "covers",
                ("k",),
                members="daily",
                member_column="persons",
                over_days=True,
            ),
        ),
    ),
}


@st.composite
def populations(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(3, 70))
    groups = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    weight = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    fat = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n))
    keys = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=n, max_size=n))
    days = draw(
        st.lists(st.sets(st.integers(0, 6), min_size=1, max_size=7), min_size=n, max_size=n)
    )
    return {"g": groups, "w": weight, "f": fat, "k": keys, "days": days}


def _tables(pop: dict) -> tuple[dict, dict, dict]:
    """(frames published today, truth, earlier daily releases) written from the persons."""
    people = pl.DataFrame(
        {
            "g": pop["g"],
            "w": pop["w"],
            "f": pop["f"],
            "k": pop["k"],
            "days": [sorted(d) for d in pop["days"]],
        },
        schema_overrides={"f": pl.Int64},
    ).with_row_index("pid")
    bands = [f"b{i}" for i in range(4)]
    grid = (
        pl.DataFrame({"g": ["a", "b", "c"]})
        .join(pl.DataFrame({"measure": ["weight", "body_fat"]}), how="cross")
        .join(pl.DataFrame({"band": bands}), how="cross")
    )
    parts = [
        people.select("g", pl.lit("weight").alias("measure"), pl.format("b{}", "w").alias("band")),
        people.filter(pl.col("f").is_not_null()).select(
            "g", pl.lit("body_fat").alias("measure"), pl.format("b{}", "f").alias("band")
        ),
    ]
    counts = pl.concat(parts).group_by("g", "measure", "band").agg(pl.len().alias("persons"))
    trend = (
        grid.join(counts, on=["g", "measure", "band"], how="left")
        .with_columns(pl.col("persons").fill_null(0).cast(pl.Int64))
        .rename({"g": "age_band"})
        .with_columns(pl.lit("all").alias("gender"), pl.lit("2026-11").alias("month"))
    )
    active = people.explode("days").rename({"days": "d"})
    keys = pl.DataFrame({"k": ["x", "y", "z"]})
    daily_truth = {
        d: keys.join(
            active.filter(pl.col("d") == i).group_by("k").agg(pl.len().alias("persons")),
            on="k",
            how="left",
        ).with_columns(pl.col("persons").fill_null(0).cast(pl.Int64))
        for i, d in enumerate(WEEK)
    }
    weekly = keys.join(
        active.group_by("k").agg(pl.col("pid").n_unique().alias("persons")), on="k", how="left"
    ).with_columns(pl.col("persons").fill_null(0).cast(pl.Int64), pl.lit("2026-W48").alias("week"))

    def dated(f: pl.DataFrame, d: date, name: str) -> pl.DataFrame:
        return _published(f.with_columns(pl.lit(d).alias("date"))).select(SPECS[name].columns)

    frames = {
        "trend": dated(trend, SUNDAY, "trend"),
        "daily": dated(daily_truth[SUNDAY], SUNDAY, "daily"),
        "weekly": dated(weekly, SUNDAY, "weekly"),
    }
    truth = {
        "trend": trend.select("month", "age_band", "gender", "measure", "band", "persons"),
        "daily": daily_truth[SUNDAY],
        "weekly": weekly.select("week", "k", "persons"),
    }
    earlier = {d: dated(daily_truth[d], d, "daily") for d in WEEK if d != SUNDAY}
    return frames, truth, {"earlier": earlier, "daily_truth": daily_truth}


def _independent(frames: dict, truth: dict, extra: dict) -> dict[tuple, float]:
    attack = Attack()
    trends_attack(frames["trend"], truth["trend"], attack)
    days = {**extra["earlier"], SUNDAY: frames["daily"]}
    for k, wp, wt in (
        frames["weekly"]
        .join(truth["weekly"].rename({"persons": "_t"}), on=["week", "k"])
        .select("k", "persons", "_t")
        .iter_rows()
    ):
        week_term = attack.term(("weekly", k), wp, wt)
        members = []
        for d in WEEK:
            p = days[d].filter(pl.col("k") == k)["persons"][0]
            tr = extra["daily_truth"][d].filter(pl.col("k") == k)["persons"][0]
            members.append(attack.term(("daily", d.isoformat(), k), p, tr))
        attack.le([(1.0, week_term)] + [(-1.0, m) for m in members], 0.0)
    return attack.widths()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
def test_protected_release_holds_against_an_independent_lp(pop: dict) -> None:
    frames, truth, extra = _tables(pop)
    earlier = extra["earlier"]
    protected, _, outcome = sdc.protect_release(
        frames,
        T,
        truth=truth,
        earlier=lambda name, d: earlier.get(d) if name == "daily" else None,
        specs=SPECS,
    )
    assert outcome.ok
    widths = _independent(protected, truth, extra)
    narrow = {k: w for k, w in widths.items() if w < T}
    assert not narrow, narrow
    verdict = sdc.audit(
        protected,
        T,
        truth=truth,
        earlier=lambda name, d: earlier.get(d) if name == "daily" else None,
        specs=SPECS,
    )
    assert all(v["ok"] for v in verdict.values()), verdict
    # the production audit and the independent attacker agree on the narrowest interval
    own = [w for k, w in widths.items() if k[0] == "trend" and np.isfinite(w)]
    if own:
        assert verdict["trend"]["min_width"] == min(own)


def test_unprotected_random_release_is_caught_by_both_attackers() -> None:
    """The week over its days: 65 persons in the week, 60 of them on six published days, so the
    suppressed Sunday holds at least 5 of them (interval [5, 9]: 5 candidates, not 10)."""
    pop = {
        "g": ["a"] * 65,
        "w": [1] * 65,
        "f": [1] * 65,
        "k": ["x"] * 65,
        "days": [{i // 10} for i in range(60)] + [{6}] * 5,
    }
    frames, truth, extra = _tables(pop)
    earlier = extra["earlier"]
    load = lambda name, d: earlier.get(d) if name == "daily" else None  # noqa: E731
    widths = _independent(frames, truth, extra)
    assert widths[("daily", SUNDAY.isoformat(), "x")] == 5
    verdict = sdc.audit(frames, T, truth=truth, earlier=load, specs=SPECS)
    assert not verdict["daily"]["ok"] and verdict["daily"]["min_width"] == 5
    protected, added, _ = sdc.protect_release(frames, T, truth=truth, earlier=load, specs=SPECS)
    assert added["weekly"] == 1 and protected["weekly"]["persons"].null_count() >= 1
    assert min(_independent(protected, truth, extra).values()) >= T


def test_an_earlier_cell_hidden_by_another_rule_relaxes_the_primary_assumption() -> None:
    """Earlier releases are read as published: their suppressed cells are assumed primary
    (< T). When that contradicts the week (80 persons > 7 days x 9), one of them was hidden by
    another rule; the attacker then only knows them >= 0 instead of failing the release."""
    frames = {
        "daily": pl.DataFrame(
            {"date": [SUNDAY], "k": ["x"], "persons": [None], "suppressed": [True]},
            schema_overrides={"persons": pl.Int64},
        ),
        "weekly": pl.DataFrame(
            {"date": [SUNDAY], "week": ["2026-W48"], "k": ["x"], "persons": [80]}
        ).with_columns(pl.lit(False).alias("suppressed")),
    }
    earlier = {d: frames["daily"].with_columns(pl.lit(d).alias("date")) for d in WEEK[:-1]}
    truth = {
        "daily": pl.DataFrame({"k": ["x"], "persons": [5]}),
        "weekly": pl.DataFrame({"week": ["2026-W48"], "k": ["x"], "persons": [80]}),
    }
    load = lambda name, d: earlier.get(d) if name == "daily" else None  # noqa: E731
    verdict = sdc.audit(frames, T, truth=truth, earlier=load, specs=SPECS)
    assert verdict["weekly"]["earlier_cells_assumed_primary"] is False
    assert verdict["daily"]["ok"]  # today's 5 is in [0, 9] and the week does not bound it


def test_the_relaxation_stays_in_the_contradicted_component() -> None:
    """Key x contradicts the primary reading (80 in the week > 7 x 9), key y does not: y's
    earlier cells stay 'small' to the attacker, so today's hidden y (5) is proven >= 4 by the
    week (58 - 6 x 9) and the release is refused. Relaxing every earlier cell, as the first
    version of the fallback did, would have called it safe."""
    frames = {
        "daily": pl.DataFrame(
            {
                "date": [SUNDAY] * 2,
                "k": ["x", "y"],
                "persons": [None, None],
                "suppressed": [True, True],
            },
            schema_overrides={"persons": pl.Int64},
        ),
        "weekly": pl.DataFrame(
            {"date": [SUNDAY] * 2, "week": ["2026-W48"] * 2, "k": ["x", "y"], "persons": [80, 58]}
        ).with_columns(pl.lit(False).alias("suppressed")),
    }
    earlier = {d: frames["daily"].with_columns(pl.lit(d).alias("date")) for d in WEEK[:-1]}
    truth = {
        "daily": pl.DataFrame({"k": ["x", "y"], "persons": [5, 5]}),
        "weekly": pl.DataFrame(
            {"week": ["2026-W48"] * 2, "k": ["x", "y"], "persons": [80, 58]}
        ),
    }
    load = lambda name, d: earlier.get(d) if name == "daily" else None  # noqa: E731
    s = sdc.build(frames, T, truth=truth, earlier=load, specs=SPECS)
    suppressed = np.isnan(np.asarray(s.published, dtype=float))
    today = np.asarray(s.ids[("daily", "persons")])
    lo, hi = sdc.intervals(s, suppressed, today)
    assert s.relaxed and s.relaxed_vars is not None
    earlier_y = [i for i in range(s.n) if not s.current[i] and s.row[i] == 1]
    assert earlier_y and not s.relaxed_vars[earlier_y].any()
    assert (lo[1], hi[1]) == (58 - 6 * (T - 1), T - 1)  # y: [4, 9]
    assert lo[0] == 0 and hi[0] == T - 1  # x: the week bounds nothing once relaxed
    verdict = sdc.audit(frames, T, truth=truth, earlier=load, specs=SPECS)
    assert not verdict["daily"]["ok"]
