"""Optional differential privacy for the active-user tables (policy ``noise:``).

The active-user tables (daily, weekly, monthly) put each person in exactly one cell (one
demographic row per person and period), so adding or removing a person changes one count by 1:
the sensitivity is 1 by construction and no contribution bounding is needed. What DP does need
is a **public key set**: a cell that appears only when someone is in it tells that someone
exists. :func:`demographic_grid` is that set, built from the hierarchies' domains (every
prefecture, every age band of the policy's level, a fixed gender list, each plus ``unknown``),
never from the data; every cell of it is released, zeros included, and a person whose value lies
outside it is not counted (it cannot be released without leaking the value).

Noise comes from OpenDP's core measurements (``tokumei.stats.disclosure.noise``); the budget spent
is recorded in a ``Ledger`` capped by ``max_epsilon_per_run`` and written to the manifest.
Suppression under ``min_cell`` and the cross-release checks then run on the noisy counts (post-
processing: no extra budget). Noisy tables are not reproducible by design, so a rerun differs.
"""

from __future__ import annotations

import polars as pl

from tokumei.anonymize.hierarchies import PREFECTURE_REGION, AgeHierarchy, PrefectureHierarchy
from tokumei.anonymize.policy import NoisePolicy, Policy
from tokumei.stats.disclosure.noise import BudgetEntry, Ledger, noise_counts

DEMOGRAPHIC_DIMS = ["prefecture", "age_band", "gender"]
#: Gender values of the public grid. The operational DB's own vocabulary; another value in the
#: data is left out of a noised table (see the module docstring).
GENDERS = ("female", "male", "other")
UNKNOWN = "unknown"


def demographic_grid(policy: Policy) -> pl.DataFrame:
    """Every prefecture × age band × gender cell at the policy's levels, plus ``unknown``s.

    Example:
        >>> from tokumei.anonymize.policy import default_policy_dir, load_policy
        >>> demographic_grid(load_policy(default_policy_dir())).height  # 48 × 20 × 4
        3840
    """
    users = policy.tables["users"].columns
    pref_level = users["prefecture"].level or 0
    age_level = users["birth_date"].level or 0
    prefs = (
        pl.DataFrame({"p": list(PREFECTURE_REGION)})
        .select(PrefectureHierarchy().expr(pl.col("p"), pref_level).alias("prefecture"))
        .unique()
    )
    ages = (
        pl.DataFrame({"a": list(range(0, 121))})
        .select(AgeHierarchy().expr(pl.col("a"), age_level).alias("age_band"))
        .unique()
    )
    unknown = pl.DataFrame({"prefecture": [UNKNOWN]}), pl.DataFrame({"age_band": [UNKNOWN]})
    return (
        pl.concat([prefs, unknown[0]])
        .join(pl.concat([ages, unknown[1]]), how="cross")
        .join(pl.DataFrame({"gender": [*GENDERS, UNKNOWN]}), how="cross")
        .sort(DEMOGRAPHIC_DIMS)
    )


def noisy_persons(
    exact: pl.DataFrame, grid: pl.DataFrame, noise: NoisePolicy, table: str
) -> tuple[pl.DataFrame, BudgetEntry]:
    """Noisy ``persons`` for every cell of ``grid`` (exact counts of cells outside it dropped).

    ``exact`` has the demographic dims plus ``persons``; the result has exactly those columns.
    """
    full = grid.join(
        exact.select(*DEMOGRAPHIC_DIMS, "persons"), on=DEMOGRAPHIC_DIMS, how="left"
    ).with_columns(pl.col("persons").fill_null(0))
    result = noise_counts(
        full,
        "persons",
        noise.epsilon,
        mechanism=noise.mechanism,
        max_contributions=1,
        delta=noise.delta,
        table=table,
    )
    return result.frame, result.budget


def ledger(policy: Policy) -> Ledger | None:
    """A fresh budget ledger for one run, or None when the policy adds no noise."""
    if policy.noise is None:
        return None
    return Ledger(limit_epsilon=policy.noise.max_epsilon_per_run)


def wants_noise(policy: Policy, table: str) -> bool:
    """Whether the policy noises ``table``."""
    return policy.noise is not None and table in policy.noise.tables
