"""Body-composition scale readings (IoT scale): 0–2 per scale and day, mornings or evenings.

Weight and body fat are *sensitive* attributes in the policy: a stable per-person baseline
(by gender and age) plus small daily noise makes them both realistic and a re-identification
risk when released per record, which the l-diversity checks downstream must catch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from tokumei.synthetic.common import day_wall_ms, rng_for, ts_strings, weighted_choice
from tokumei.synthetic.devices import Devices
from tokumei.synthetic.people import Population

MEASUREMENT_COLUMNS = ("device_id", "user_id", "ts", "weight_kg", "body_fat_pct")


@dataclass
class Baselines:
    """Per-person typical weight (kg) and body fat (%), drawn once per run."""

    weight: np.ndarray
    body_fat: np.ndarray


def baselines(seed: int, pop: Population) -> Baselines:
    """Baselines by gender and age; deterministic for the seed."""
    rng = rng_for(seed, "measurements", 1 << 30)
    f = pop.female
    weight = np.where(f, rng.normal(53, 8, pop.n), rng.normal(68, 10, pop.n))
    weight += np.clip(pop.age - 30, -10, 30) * 0.08
    fat = np.where(f, rng.normal(28, 5, pop.n), rng.normal(20, 5, pop.n))
    return Baselines(weight=np.clip(weight, 30, 160), body_fat=np.clip(fat, 4, 55))


def measurements_day(
    seed: int, pop: Population, devices: Devices, base: Baselines, day: date, day_index: int,
    device_active: np.ndarray,
) -> pl.DataFrame:
    """One day of readings, time-sorted; marks the scales it used as active devices."""
    rng = rng_for(seed, "measurements", day_index)
    scales = np.flatnonzero(devices.is_scale)
    per = weighted_choice(rng, np.array([40.0, 45.0, 15.0]), len(scales))
    dev = np.repeat(scales, per)
    m = len(dev)
    user = devices.user[dev]
    hours = np.where(rng.random(m) < 0.6, rng.uniform(6, 9, m), rng.uniform(20, 23.9, m))
    wall = day_wall_ms(day) + (hours * 3_600_000).astype(np.int64)
    order = np.argsort(wall, kind="stable")
    dev, user, wall = dev[order], user[order], wall[order]
    device_active[dev] = True
    weight = np.round(base.weight[user] + rng.normal(0, 0.4, m), 1)
    fat = np.round(base.body_fat[user] + rng.normal(0, 0.6, m), 1)
    no_fat = rng.random(m) < 0.05
    guest = rng.random(m) < 0.03
    user_ids = pl.Series(pop.user_id, dtype=pl.String)
    return pl.DataFrame({
        "device_id": devices.frame["device_id"].gather(dev),
        "user_id": user_ids.gather(user),
        "ts": ts_strings(wall),
        "weight_kg": weight,
        "body_fat_pct": fat,
    }).with_columns(
        pl.when(~pl.Series(guest)).then(pl.col("user_id")).alias("user_id"),
        pl.when(~pl.Series(no_fat)).then(pl.col("body_fat_pct")).alias("body_fat_pct"),
    ).select(MEASUREMENT_COLUMNS)
