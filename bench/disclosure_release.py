"""Time the release disclosure model: protection and the independent audit per release.

Two workloads, tables built directly from a simulated population (the pipeline's own table
specs and relations; no landing files, so the figures are the disclosure model's alone):

1. **61 consecutive daily releases of 2,000 persons** (2026-10-01 .. 2026-11-30): every day
   ``daily_active_users`` on the full public demographic grid (3,840 cells), ``revenue`` and
   ``measurements_summary``; every Sunday ``weekly_active_users`` linked to its 7 daily
   releases; each month end ``monthly_active_users`` (linked to up to 31 daily releases),
   ``measurement_trends`` (two partitions of the same persons) and ``monthly_revenue``.
   Earlier releases are read back as published, as in a run.
2. **A large day**: ``page_views`` with many templates x 6 device classes and ``funnel`` (the
   page-view persons of a device are the union of its template rows), ``sessions`` with its
   'all' rows, and the DAU grid: about 10M page-view events' worth of persons.

Run: ``.venv/bin/python bench/disclosure_release.py [--persons 2000] [--days 61]``; prints a
Markdown section for ``bench/results/disclosure.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from tokumei.anonymize.policy import default_policy_dir, load_policy
from tokumei.stats.disclosure import release as sdc
from tokumei.stats.disclosure.dp_tables import demographic_grid
from tokumei.stats.periods import BODY_FAT_BANDS, WEIGHT_BANDS, month_of, week_of
from tokumei.stats.tables import PRICE_BANDS, TABLES

T = 10
DEMO = ["prefecture", "age_band", "gender"]


def _published(frame: pl.DataFrame, name: str, day: date) -> pl.DataFrame:
    """Primary suppression of every count (the bench's own, as the reduce functions do)."""
    spec = TABLES[name]
    out = frame.with_columns(pl.lit(day).alias("date"))
    small = [pl.col(c) < T for c in spec.counts]
    out = out.with_columns(
        *[
            pl.when(s).then(None).otherwise(pl.col(c)).alias(c)
            for c, s in zip(spec.counts, small, strict=True)
        ],
        *[
            pl.when(small[0]).then(None).otherwise(pl.col(m)).alias(m)
            for m in spec.measures
            if m in out.columns
        ],
        pl.any_horizontal(small).alias("suppressed"),
    )
    for m in spec.measures:
        if m not in out.columns:
            out = out.with_columns(pl.lit(None, pl.Float64).alias(m))
    return out.select(spec.columns)


def _count(frame: pl.DataFrame, grid: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    got = frame.group_by(by).agg(pl.len().cast(pl.Int64).alias("persons"))
    return grid.join(got, on=by, how="left").with_columns(pl.col("persons").fill_null(0))


def population(n: int, days: list[date], seed: int) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    grid = demographic_grid(load_policy(default_policy_dir()))
    ages = [a for a in grid["age_band"].unique().sort().to_list() if a != "unknown"]
    prefs = [p for p in grid["prefecture"].unique().sort().to_list() if p != "unknown"]
    people = pl.DataFrame(
        {
            "pid": np.arange(n),
            "prefecture": rng.choice(prefs, n, p=_zipf(len(prefs), rng)),
            "age_band": rng.choice(ages[3:15], n),
            "gender": rng.choice(["female", "male", "other"], n, p=[0.49, 0.49, 0.02]),
            "p_active": rng.uniform(0.05, 0.6, n),
            "scale": rng.random(n) < 0.3,
            # skewed, realistic distributions: the tails are small bands of large groups,
            # the situation of issue 15 finding 1
            "weight_band": _bands(rng.normal(62.0, 11.0, n), WEIGHT_BANDS),
            "fat_band": _bands(rng.normal(24.0, 6.5, n), BODY_FAT_BANDS),
            "no_fat": rng.random(n) < 0.05,
        }
    )
    act = rng.random((len(days), n)) < people["p_active"].to_numpy()
    weigh = act & people["scale"].to_numpy() & (rng.random((len(days), n)) < 0.5)
    buy = act & (rng.random((len(days), n)) < 0.03)
    rows = []
    for i, d in enumerate(days):
        pids = np.flatnonzero(act[i])
        rows.append(
            pl.DataFrame(
                {
                    "pid": pids,
                    "date": [d] * pids.size,
                    "measured": weigh[i, pids],
                    "bought": buy[i, pids],
                    "amount": np.where(buy[i, pids], rng.lognormal(8.5, 1.0, pids.size), 0.0),
                }
            )
        )
    activity = pl.concat(rows).join(people, on="pid")
    bands = [b for b, lo in PRICE_BANDS]
    edges = np.array([lo for _, lo in PRICE_BANDS])
    activity = activity.with_columns(
        pl.Series(
            "price_band",
            [bands[int(np.searchsorted(edges, a, side="right")) - 1] for a in activity["amount"]],
        )
    )
    return {"grid": grid, "people": people, "activity": activity}


def _bands(values: np.ndarray, bands: tuple[tuple[str, float], ...]) -> list[str]:
    edges = np.array([lo for _, lo in bands])
    idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(bands) - 1)
    return [bands[i][0] for i in idx]


def _zipf(k: int, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    rng.shuffle(w)
    return w / w.sum()


def releases(pop: dict[str, pl.DataFrame], days: list[date]) -> list[tuple[date, dict, dict]]:
    """Per day: (day, truth frames, printed counts) of every table released that day."""
    grid, act = pop["grid"], pop["activity"]
    age_gender = grid.select("age_band", "gender").unique()
    trend_grid = age_gender.join(
        pl.concat(
            [
                pl.DataFrame({"measure": [m] * len(b), "band": [x for x, _ in b]})
                for m, b in (("weight", WEIGHT_BANDS), ("body_fat", BODY_FAT_BANDS))
            ]
        ),
        how="cross",
    )
    price = pl.DataFrame({"price_band": [b for b, _ in PRICE_BANDS]})
    out = []
    for d in days:
        today = act.filter(pl.col("date") == d)
        buys = today.filter(pl.col("bought"))
        truth: dict[str, pl.DataFrame] = {
            "daily_active_users": _count(today, grid, DEMO),
            "measurements_summary": _count(
                today.filter(pl.col("measured")), age_gender, ["age_band", "gender"]
            ),
            "revenue": price.join(
                buys.group_by("price_band").agg(
                    pl.len().cast(pl.Int64).alias("persons"),
                    pl.col("amount").sum().round(0).cast(pl.Int64).alias("total_amount_jpy"),
                ),
                on="price_band",
                how="left",
            ).with_columns(pl.col("persons", "total_amount_jpy").fill_null(0)),
        }
        printed = {
            "events": float(today.height * 40),
            "measurements": float(today["measured"].sum() * 1.2),
        }
        wk = week_of(d)
        if wk.last == d:
            inweek = act.filter(pl.col("date").is_between(wk.first, wk.last)).unique("pid")
            truth["weekly_active_users"] = _count(inweek, grid, DEMO).with_columns(
                pl.lit(wk.label).alias("week")
            )
        mo = month_of(d)
        if mo.last == d:
            inmonth = act.filter(pl.col("date").is_between(mo.first, mo.last))
            truth["monthly_active_users"] = _count(inmonth.unique("pid"), grid, DEMO).with_columns(
                pl.lit(mo.label).alias("month")
            )
            measured = inmonth.filter(pl.col("measured")).unique("pid")
            parts = pl.concat(
                [
                    measured.select(
                        "age_band",
                        "gender",
                        pl.lit("weight").alias("measure"),
                        pl.col("weight_band").alias("band"),
                    ),
                    measured.filter(~pl.col("no_fat")).select(
                        "age_band",
                        "gender",
                        pl.lit("body_fat").alias("measure"),
                        pl.col("fat_band").alias("band"),
                    ),
                ]
            )
            truth["measurement_trends"] = _count(
                parts, trend_grid, ["age_band", "gender", "measure", "band"]
            ).with_columns(pl.lit(mo.label).alias("month"))
            mbuys = inmonth.filter(pl.col("bought"))
            truth["monthly_revenue"] = price.join(
                mbuys.group_by("price_band").agg(
                    pl.col("pid").n_unique().cast(pl.Int64).alias("persons"),
                    pl.col("amount").sum().round(0).cast(pl.Int64).alias("total_amount_jpy"),
                ),
                on="price_band",
                how="left",
            ).with_columns(
                pl.col("persons", "total_amount_jpy").fill_null(0), pl.lit(mo.label).alias("month")
            )
        out.append((d, truth, printed))
    return out


def _frames(d: date, truth: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    frames = {}
    for name, tr in truth.items():
        f = tr
        if "total_amount_jpy" in f.columns:
            f = f.with_columns((pl.col("total_amount_jpy") + 500) // 1000 * 1000)
        frames[name] = _published(f, name, d)
    return frames


def run_days(persons: int, ndays: int, seed: int) -> list[dict[str, object]]:
    first = date(2026, 12, 1) - timedelta(days=ndays)
    days = [first + timedelta(days=i) for i in range(ndays)]
    pop = population(persons, days, seed)
    published: dict[tuple[str, date], pl.DataFrame] = {}
    rows = []
    for d, truth, printed in releases(pop, days):
        frames = _frames(d, truth)
        kw = {
            "truth": truth,
            "earlier": lambda n, day: published.get((n, day)),
            "printed": printed,
        }
        t0 = time.perf_counter()
        protected, added, outcome = sdc.protect_release(frames, T, **kw)
        t1 = time.perf_counter()
        verdict = sdc.audit(protected, T, **kw)
        t2 = time.perf_counter()
        for name, f in protected.items():
            published[(name, d)] = f
        rows.append(
            {
                "day": d.isoformat(),
                "tables": len(frames),
                "cells": sum(v["cells"] for v in verdict.values()),
                "suppressed": sum(v["suppressed_cells"] for v in verdict.values()),
                "linked": sum(v.get("linked_earlier_cells", 0) for v in verdict.values()),
                "complements": sum(added.values()),
                "min_width": min(
                    (v["min_width"] for v in verdict.values() if v["min_width"] is not None),
                    default=None,
                ),
                "ok": all(v["ok"] for v in verdict.values()) and outcome.ok,
                "protect_s": t1 - t0,
                "audit_s": t2 - t1,
            }
        )
    return rows


def large_day(
    persons: int, templates: int, seed: int, with_dau: bool = True
) -> dict[str, object]:
    """page_views x funnel (union per device) and, with ``with_dau``, the DAU grid: every
    page-view and funnel cell is then at most the day's active persons (``WithinDay``)."""
    rng = np.random.default_rng(seed)
    d = date(2026, 11, 30)
    devices = ["desktop", "mobile", "tablet", "bot", "other", "unknown"]
    dev_p = np.array([0.35, 0.55, 0.06, 0.02, 0.01, 0.01])
    views = rng.poisson(6.0, persons)  # ~10M page-view events at 1.7M persons
    pid = np.repeat(np.arange(persons), np.minimum(views, 20))
    dev = rng.choice(len(devices), persons, p=dev_p)[pid]
    tmpl = np.minimum(rng.zipf(1.3, pid.size), templates) - 1
    pairs = pl.DataFrame({"pid": pid, "t": tmpl, "d": dev}).unique()
    pv = (
        pairs.group_by("t", "d")
        .agg(pl.len().cast(pl.Int64).alias("persons"))
        .with_columns(
            pl.format("/t/{}", "t").alias("url_template"),
            pl.col("d").replace_strict(dict(enumerate(devices))).alias("device_class"),
        )
    )
    pv_grid = pl.DataFrame({"url_template": [f"/t/{i}" for i in range(templates)]}).join(
        pl.DataFrame({"device_class": devices}), how="cross"
    )
    pv_truth = pv_grid.join(
        pv.select("url_template", "device_class", "persons"),
        on=["url_template", "device_class"],
        how="left",
    ).with_columns(pl.col("persons").fill_null(0))
    per_dev = pairs.group_by("d").agg(pl.col("pid").n_unique().cast(pl.Int64).alias("pv"))
    signup = (per_dev["pv"].to_numpy() * 0.02).astype(np.int64)
    funnel = pl.DataFrame({"device_class": [devices[i] for i in per_dev["d"]]}).with_columns(
        per_dev["pv"].alias("persons_page_view"),
        pl.Series("persons_signup", signup),
        pl.Series("persons_purchase", (signup * 0.3).astype(np.int64)),
    )
    funnel = pl.DataFrame({"device_class": devices}).join(funnel, on="device_class", how="left")
    funnel = funnel.with_columns(pl.all().exclude("device_class").fill_null(0))
    truth = {"page_views": pv_truth, "funnel": funnel}
    if with_dau:  # every person active that day, on the demographic grid (WithinDay, R3)
        grid = demographic_grid(load_policy(default_policy_dir()))
        cell = rng.integers(0, grid.height, persons)
        people = grid[cell].select(DEMO)
        truth["daily_active_users"] = _count(people, grid, DEMO)
    frames = {n: _published(f, n, d) for n, f in truth.items()}
    t0 = time.perf_counter()
    protected, added, outcome = sdc.protect_release(frames, T, truth=truth)
    t1 = time.perf_counter()
    verdict = sdc.audit(protected, T, truth=truth)
    t2 = time.perf_counter()
    return {
        "persons": persons,
        "pairs": pairs.height,
        "cells": sum(v["cells"] for v in verdict.values()),
        "suppressed": sum(v["suppressed_cells"] for v in verdict.values()),
        "complements": sum(added.values()),
        "ok": all(v["ok"] for v in verdict.values()) and outcome.ok,
        "protect_s": t1 - t0,
        "audit_s": t2 - t1,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--days", type=int, default=61)
    ap.add_argument("--large-persons", type=int, default=1_700_000)
    ap.add_argument("--templates", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows = run_days(args.persons, args.days, args.seed)
    big = large_day(args.large_persons, args.templates, args.seed)
    load = os.getloadavg()[0]
    print(f"## Release disclosure model (tokumei/stats/disclosure/release.py), {date.today()}\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.python_version()}, polars {pl.__version__}"
        f"; 1-min load average at the end {load:.1f} (cores shared with other jobs). Command: "
        f"`.venv/bin/python bench/disclosure_release.py --persons {args.persons} --days "
        f"{args.days}`.\n"
    )
    heavy = [r for r in rows if r["tables"] > 3]
    prot = np.array([r["protect_s"] for r in rows])
    aud = np.array([r["audit_s"] for r in rows])
    print(
        f"{args.days} releases of {args.persons} persons: protection mean {prot.mean():.2f} s, "
        f"max {prot.max():.2f} s; audit mean {aud.mean():.2f} s, max {aud.max():.2f} s; all ok: "
        f"{all(r['ok'] for r in rows)}; complements added in total: "
        f"{sum(r['complements'] for r in rows)}.\n"
    )
    print("Releases with period tables (Sundays, month ends):\n")
    cols = [
        "day",
        "tables",
        "cells",
        "suppressed",
        "linked",
        "complements",
        "min_width",
        "ok",
        "protect_s",
        "audit_s",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in heavy:
        print(
            "| "
            + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
            + " |"
        )
    print(
        f"\nLarge day: {big['persons']:,} persons, {big['pairs']:,} distinct (person, template, "
        f"device) pairs, {args.templates} templates x 6 devices; {big['cells']:,} count cells, "
        f"{big['suppressed']:,} suppressed, {big['complements']} complements; protection "
        f"{big['protect_s']:.2f} s, audit {big['audit_s']:.2f} s, ok {big['ok']}.\n"
    )


if __name__ == "__main__":
    main()
