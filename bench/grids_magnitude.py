"""Issue 15, findings 2-4: the attacks on the tables, measured before and after, and the cost.

A synthetic population like the attacked run (2,000 persons, about 40 % weighing in on a given
day, 61 days), one person of 212.4 kg in an ordinary (age band, gender) cell and one person
alone in (90+, other) who weighs in on some days. For each day the real reduce
(``tokumei.stats.tables.measurements_reduce``) is run, and also plain means and medians of the
same values (the code before). Printed:

- the outlier estimate ``median + persons × (mean − median)`` averaged over the days;
- on how many days the lone person's weigh-in is visible (a row, or a row that differs);
- how many (month, age band, gender) groups of ``measurement_trends`` are homogeneous in the
  published view before protection, and after;
- seconds per day of the reduce, the diversity rule on a month, and ``sessions`` protection
  on its full grid (240 rows, the LP now sees every zero cell).

Run: ``.venv/bin/python bench/grids_magnitude.py`` (results: bench/results/grids_magnitude.md).
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta

import polars as pl

from tokumei.anonymize.policy import DisclosurePolicy
from tokumei.stats import grids, periods
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import diversity

PERSONS, DAYS, SHARE, MIN_CELL = 2_000, 61, 0.4, 10
OUTLIER_KG = 212.4
AGES = [f"{a}-{a + 4}" for a in range(20, 90, 5)]
GENDERS = ["female", "male"]


def population(rng: random.Random) -> list[tuple[str, str, str, float]]:
    people = []
    for i in range(PERSONS):
        age, gender = rng.choice(AGES), rng.choice(GENDERS)
        base = rng.gauss(58 if gender == "female" else 70, 9)
        people.append((f"p{i}", age, gender, base))
    people[0] = ("outlier", "40-44", "male", OUTLIER_KG)
    return people


def day_rows(
    rng: random.Random, people: list[tuple[str, str, str, float]], lone: bool
) -> pl.LazyFrame:
    rows = [
        (p, a, g, round(w + rng.gauss(0, 0.4), 1))
        for p, a, g, w in people
        if p == "outlier" or rng.random() < SHARE
    ]
    if lone:
        rows.append(("lone", "90+", "other", 61.0))
    schema = {
        "person": pl.String,
        "age_band": pl.String,
        "gender": pl.String,
        "weight_kg": pl.Float64,
    }
    return pl.LazyFrame(rows, schema=schema, orient="row")


def main() -> None:
    rng = random.Random(2026)
    people = population(rng)
    cell = (pl.col("age_band") == "40-44") & (pl.col("gender") == "male")
    lone_cell = (pl.col("age_band") == "90+") & (pl.col("gender") == "other")
    old_est, new_est, seconds = [], [], []
    lone_rows_old, lone_cells_new = [], []
    for d in range(DAYS):
        weighs_in = d % 3 == 0
        lf = day_rows(rng, people, weighs_in)
        frame = lf.collect()
        # before: plain mean and median; a row only for observed groups
        plain = frame.group_by("age_band", "gender").agg(
            pl.len().alias("n"),
            pl.col("weight_kg").mean(),
            pl.col("weight_kg").median().alias("med"),
        )
        r = plain.filter(cell).row(0, named=True)
        old_est.append(r["med"] + r["n"] * (r["weight_kg"] - r["med"]))
        lone_rows_old.append((weighs_in, plain.filter(lone_cell).height > 0))
        t0 = time.perf_counter()
        day = (date(2026, 10, 1) + timedelta(days=d)).isoformat()
        out = stats.measurements_reduce(lf, day, MIN_CELL).collect()
        seconds.append(time.perf_counter() - t0)
        p = out.filter(cell).row(0, named=True)
        if p["weight_mean_kg"] is not None and p["weight_median_kg"] is not None:
            med = p["weight_median_kg"]
            new_est.append(med + p["persons"] * (p["weight_mean_kg"] - med))
        lone_cells_new.append((weighs_in, out.filter(lone_cell).drop("date").rows()))
    # one person near the top of the day (95 kg, in a cell of their own): on how many days do
    # the *other* cells' published values differ with and without them?
    probe = pl.LazyFrame(
        [("probe", "85-89", "female", 95.0)],
        schema={"person": pl.String, "age_band": pl.String, "gender": pl.String}
        | {"weight_kg": pl.Float64},
        orient="row",
    )
    others = ~((pl.col("age_band") == "85-89") & (pl.col("gender") == "female"))
    moved = {0.0: 0, 5.0: 0}
    probe_rng = random.Random(7)  # its own stream: the figures below stay as they were
    for _ in range(DAYS):
        lf = day_rows(probe_rng, people, False)
        for step in moved:
            rules = DisclosurePolicy(winsor_step=step)
            a = stats.measurements_reduce(lf, "2026-10-01", MIN_CELL, rules=rules).collect()
            b = stats.measurements_reduce(
                pl.concat([lf, probe]), "2026-10-01", MIN_CELL, rules=rules
            ).collect()
            moved[step] += not a.filter(others).equals(b.filter(others))
    told_old = sum(1 for w, seen in lone_rows_old if w == seen)
    distinct_new = len({tuple(c) for _, c in lone_cells_new})
    print(f"outlier {OUTLIER_KG} kg, estimate over {DAYS} days:")
    print(f"  plain mean/median: {sum(old_est) / len(old_est):.1f} kg")
    print(f"  published:         {sum(new_est) / len(new_est):.1f} kg ({len(new_est)} days)")
    print(f"lone person's weigh-in told right on {told_old}/{DAYS} days before;")
    print(f"  published: {distinct_new} distinct reading(s) of the cell over {DAYS} days")
    print(f"measurements_reduce: {sum(seconds) / len(seconds) * 1000:.1f} ms per day (mean)")
    print(
        f"a 95 kg person changes other cells' published values on {moved[0.0]}/{DAYS} days "
        f"with exact bounds, {moved[5.0]}/{DAYS} with bounds rounded to 5 kg"
    )

    # measurement_trends of one month: homogeneous groups before / after protection
    month = periods.month_of(date(2026, 10, 31))
    act_rows = []
    for p, a, g, w in people:
        if rng.random() < 0.8:
            act_rows.append((p, month.last, True, "東京都", a, g, None, w, 18 + rng.random() * 14))
    act = pl.LazyFrame(act_rows, schema=periods.ACTIVITY_SCHEMA, orient="row")
    trends = grids.complete(
        periods.measurement_trends(act, month),
        grids.grid("measurement_trends"),
        "measurement_trends",
        {"persons": 0},
    ).with_columns(pl.lit(month.label).alias("month"))
    table = stats.period_reduce(trends, month.last.isoformat(), "measurement_trends", MIN_CELL)
    rules = DisclosurePolicy()
    before = diversity.audit(table, "measurement_trends", rules)
    t0 = time.perf_counter()
    safe, groups = diversity.protect(table, "measurement_trends", rules)
    t_div = time.perf_counter() - t0
    after = diversity.audit(safe, "measurement_trends", rules)
    print(
        f"measurement_trends ({table.height} rows): {before['homogeneous']} of "
        f"{before['published']} published distributions possibly homogeneous before; "
        f"{groups} groups suppressed in {t_div * 1000:.1f} ms; after: {after['homogeneous']}"
    )

    # sessions on its full grid: protection time
    hist_rows = []
    for dev in ("mobile", "desktop", "tablet"):
        for os_ in ("iOS", "Android", "Windows", "Mac OS X"):
            bands = [rng.choice((0, 3, 40, 400)) for _ in range(4)]
            sessions = [n + rng.randint(0, n) for n in bands]
            for (b, _), n, s in zip(stats.DURATION_BANDS, bands, sessions, strict=True):
                hist_rows.append((dev, os_, b, n, s))
            hist_rows.append((dev, os_, "all", max(bands), sum(sessions)))
    hists = pl.LazyFrame(
        hist_rows,
        schema=["device_class", "os_family", "duration_band", "persons", "sessions"],
        orient="row",
    )
    t0 = time.perf_counter()
    sess = stats.sessions_reduce(hists, "2026-10-01", MIN_CELL).collect()
    t_sess = time.perf_counter() - t0
    print(
        f"sessions on its grid: {sess.height} rows, {int(sess['suppressed'].sum())} suppressed, "
        f"protected in {t_sess:.2f} s"
    )


if __name__ == "__main__":
    main()
