"""Statistics tables: counts of *distinct persons* per cell, with small-cell suppression.

Every function takes generalized LazyFrames (person key already pseudonymized, quasi-identifiers
already at their policy level) and returns a LazyFrame with the table's documented schema. The
person key is used for counting and never appears in the output.

Suppression here is primary (cells under ``min_cell`` persons): the count and every measure of
such a cell become null and ``suppressed`` is true, so analysts can tell "suppressed" from
"zero". The tables publish no margins, so a suppressed interior cell cannot be recovered by
subtraction within a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

PERSON = "person"


@dataclass(frozen=True)
class TableSpec:
    """Schema documentation of one statistics table (used for GX suites and the data dictionary)."""

    name: str
    description: str
    dims: tuple[str, ...]
    counts: tuple[str, ...]
    measures: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    "daily_active_users": TableSpec(
        "daily_active_users",
        "Distinct persons with at least one event that JST day, by prefecture, 5-year age band "
        "and gender (logged-out cookies count as persons of unknown demographics).",
        ("date", "prefecture", "age_band", "gender"),
        ("persons",),
    ),
    "page_views": TableSpec(
        "page_views",
        "Distinct persons who viewed a page template that day, by URL path template (ids "
        "replaced by :id, query dropped; templates seen by fewer than k persons become 'other') "
        "and device class.",
        ("date", "url_template", "device_class"),
        ("persons",),
    ),
    "measurements_summary": TableSpec(
        "measurements_summary",
        "Persons with a scale measurement that day and their weight mean and median (kg, one "
        "decimal; each person's daily mean counts once), by age band and gender.",
        ("date", "age_band", "gender"),
        ("persons",),
        ("weight_mean_kg", "weight_median_kg"),
    ),
}


def suppress_small_cells(
    table: pl.LazyFrame, count: str, min_cell: int, measures: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """Null the count and measures of cells under ``min_cell``; add a ``suppressed`` flag.

    Example:
        >>> import polars as pl
        >>> t = pl.LazyFrame({"g": ["a", "b"], "persons": [12, 3]})
        >>> suppress_small_cells(t, "persons", 10).collect()["persons"].to_list()
        [12, None]
    """
    small = pl.col(count) < min_cell
    return table.with_columns(
        *[pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in (count, *measures)],
        small.alias("suppressed"),
    )


# ---------------------------------------------------------------------------------------------
# Map → reduce. Work is partitioned by a hash of the person key, so every person lives in exactly
# one partition: per-partition counts of distinct persons add up *exactly* to the global count.
# The map side returns small histograms; the reduce side sums them and suppresses. The output is
# therefore identical for any number of partitions (tested).


def _finish(
    table: pl.LazyFrame, day: str, dims: tuple[str, ...], measures: tuple[str, ...], min_cell: int
) -> pl.LazyFrame:
    cols = ("date", *dims, "persons", *measures)
    out = table.with_columns(pl.lit(day).str.to_date().alias("date")).select(cols).sort(dims)
    return suppress_small_cells(out, "persons", min_cell, measures)


def dau_map(events: pl.LazyFrame, persons: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: prefecture × age_band × gender → distinct active persons."""
    active = events.select(PERSON).unique()
    demo = active.join(persons, on=PERSON, how="left").with_columns(
        *[pl.col(c).fill_null("unknown") for c in ("prefecture", "age_band", "gender")]
    )
    return demo.group_by("prefecture", "age_band", "gender").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons")
    )


def dau_reduce(hists: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """Sum partition histograms; suppress cells under ``min_cell`` persons."""
    dims = ("prefecture", "age_band", "gender")
    table = hists.group_by(dims).agg(pl.col("persons").sum())
    return _finish(table, day, dims, (), min_cell)


def page_view_pairs(events: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: distinct (person, url_template, device_class) of page views."""
    return (
        events.filter(pl.col("event") == "page_view")
        .select(
            PERSON,
            pl.col("url_template").fill_null("unknown"),
            pl.col("device_class").fill_null("unknown"),
        )
        .unique()
    )


def template_persons(pairs: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: url_template → distinct persons (to find rare templates globally)."""
    return pairs.group_by("url_template").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons")
    )


def rare_templates(template_hists: pl.LazyFrame, k: int) -> pl.LazyFrame:
    """Templates seen by fewer than ``k`` persons in the whole day (summed over partitions)."""
    return (
        template_hists.group_by("url_template")
        .agg(pl.col("persons").sum())
        .filter(pl.col("persons") < k)
        .select("url_template")
    )


def page_views_map(pairs: pl.LazyFrame, rare: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: fold rare templates into ``other``, then count distinct persons per cell.

    Folding happens before counting, so a person who saw two rare pages counts once in
    ``other``; this needs the global rare set, hence the two-pass map.
    """
    folded = pairs.join(
        rare.with_columns(pl.lit(True).alias("_rare")), on="url_template", how="left"
    ).with_columns(
        pl.when(pl.col("_rare"))
        .then(pl.lit("other"))
        .otherwise(pl.col("url_template"))
        .alias("url_template")
    )
    return folded.group_by("url_template", "device_class").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons")
    )


def page_views_reduce(hists: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """Sum partition histograms; suppress."""
    dims = ("url_template", "device_class")
    table = hists.group_by(dims).agg(pl.col("persons").sum())
    return _finish(table, day, dims, (), min_cell)


def measurements_map(measurements: pl.LazyFrame, persons: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: each person's daily mean weight with their age band and gender.

    Averaging per person first bounds each person's contribution to one value: a person who
    weighs in five times a day must not pull a cell's mean five times as hard. One row per
    person is small enough to reduce centrally (medians do not add up across partitions).
    """
    return (
        measurements.filter(pl.col("weight_kg").is_not_null())
        .group_by(PERSON)
        .agg(pl.col("weight_kg").mean())
        .join(persons, on=PERSON, how="left")
        .select(
            PERSON,
            pl.col("age_band").fill_null("unknown"),
            pl.col("gender").fill_null("unknown"),
            "weight_kg",
        )
    )


def measurements_reduce(per_person: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """age_band × gender → persons, weight mean and median (kg, 1 decimal); suppress."""
    dims = ("age_band", "gender")
    table = per_person.group_by(dims).agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"),
        pl.col("weight_kg").mean().round(1).alias("weight_mean_kg"),
        pl.col("weight_kg").median().round(1).alias("weight_median_kg"),
    )
    return _finish(table, day, dims, ("weight_mean_kg", "weight_median_kg"), min_cell)


# ---------------------------------------------------------------------------------------------
# Single-frame conveniences (one partition): the same map and reduce, composed.


def daily_active_users(
    events: pl.LazyFrame, persons: pl.LazyFrame, day: str, min_cell: int
) -> pl.LazyFrame:
    """date × prefecture × age_band × gender → distinct persons."""
    return dau_reduce(dau_map(events, persons), day, min_cell)


def page_views(events: pl.LazyFrame, day: str, k: int, min_cell: int) -> pl.LazyFrame:
    """date × url_template × device_class → distinct persons who viewed it.

    Templates seen by fewer than ``k`` persons are folded into ``other`` first (DESIGN §4 "rare
    categories"), so a one-off URL never names itself even as a suppressed row.
    """
    pairs = page_view_pairs(events)
    rare = rare_templates(template_persons(pairs), k)
    return page_views_reduce(page_views_map(pairs, rare), day, min_cell)


def measurements_summary(
    measurements: pl.LazyFrame, persons: pl.LazyFrame, day: str, min_cell: int
) -> pl.LazyFrame:
    """date × age_band × gender → persons, weight mean and median (per-person daily means)."""
    return measurements_reduce(measurements_map(measurements, persons), day, min_cell)
