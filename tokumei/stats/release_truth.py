"""The unsuppressed values of a release's tables, for its disclosure model (never published).

Release protection (``tokumei.stats.disclosure.release``) needs, per suppressed cell, whether
the primary rule hid it (the attacker is told so: worst case) and, for two partitions of the
same persons, how many persons have one measure but not the other. Both come from the counts
before suppression, which are recomputed here from the map-side histograms, independently of
how each table's reduce suppresses, completes or folds. Everything stays in memory.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from tokumei.anonymize.policy import Policy
    from tokumei.infra.storage import RunPaths

PERSON = "person"


def _sum(hists: pl.LazyFrame, dims: list[str], counts: list[str]) -> pl.DataFrame:
    return hists.group_by(dims).agg(pl.col(c).sum() for c in counts).collect()


def daily_truth(
    maps: Path,
    page_views: pl.DataFrame | None = None,
    grids_: dict[str, pl.DataFrame] | None = None,
) -> dict[str, pl.DataFrame]:
    """Per daily table, its counts (and exact amounts) by the table's non-date dims.

    ``maps`` is the run's ``stats_map`` folder; ``page_views`` the reduce-side page-view
    histogram (rare templates already folded), since folding needs the whole day. ``grids_``
    (table → public grid) folds demographic values outside the grid to ``unknown`` as the
    tables do, so the truth's cells are the published cells (a gender outside the grid would
    otherwise be missing from the day's active persons and break the day's relations).
    """
    from tokumei.stats import grids

    grids_ = grids_ or {}

    def folded(hists: pl.LazyFrame, name: str, dims: list[str]) -> pl.LazyFrame:
        g = grids_.get(name)
        return grids.fold_to_unknown(hists, g if g is not None else grids.grid(name), dims)

    def scan(name: str) -> pl.LazyFrame:
        return pl.scan_parquet(maps / name / "*.parquet")

    out: dict[str, pl.DataFrame] = {
        "daily_active_users": _sum(
            folded(scan("dau"), "daily_active_users", ["prefecture", "age_band", "gender"]),
            ["prefecture", "age_band", "gender"],
            ["persons"],
        ),
        "sessions": _sum(
            scan("sessions"),
            ["device_class", "os_family", "duration_band"],
            ["persons", "sessions"],
        ),
        "search_volume": _sum(scan("search_volume"), ["kind", "category"], ["persons"]),
        "funnel": _sum(
            scan("funnel"),
            ["device_class"],
            ["persons_page_view", "persons_signup", "persons_purchase"],
        ),
        "revenue": _sum(scan("revenue"), ["price_band"], ["persons", "amount_jpy"]).rename(
            {"amount_jpy": "total_amount_jpy"}
        ),
        "measurements_summary": folded(
            scan("measurements"), "measurements_summary", ["age_band", "gender"]
        )
        .group_by("age_band", "gender")
        .agg(pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"))
        .collect(),
    }
    if page_views is not None:
        out["page_views"] = page_views.group_by("url_template", "device_class").agg(
            pl.col("persons").sum()
        )
    return out


def model_inputs(paths: RunPaths, policy: Policy) -> dict[str, Any]:
    """What the release's disclosure model knows besides the tables (keyword arguments of
    ``tokumei.stats.disclosure.release.protect_release`` and ``audit``).

    ``earlier``: the published releases (what an attacker already holds); ``printed``: the
    source row counts the manifest prints (``sources.<source>.kept``; exact, the worst case
    whatever rounding the manifest applies); ``noisy``: tables the policy noises, whose values
    do not satisfy exact relations.
    """
    from tokumei.infra.storage import load_record
    from tokumei.stats.disclosure.dp_tables import wants_noise
    from tokumei.stats.period_tables import published_release
    from tokumei.stats.tables import TABLES

    def earlier(name: str, day: date) -> pl.DataFrame | None:
        return published_release(paths.tables_at, name, day)

    books = load_record(paths, "filter_rights")
    printed = {
        src: float(rec["kept"])
        for src, rec in books.items()
        if isinstance(rec, dict) and isinstance(rec.get("kept"), int)
    }
    noisy = frozenset(n for n in TABLES if wants_noise(policy, n))
    return {"earlier": earlier, "printed": printed, "noisy": noisy}
