"""Attribute disclosure by homogeneity: l-diversity of the published band distributions.

Why: a group can be large and still disclose. "All 54 measured men aged 70-74 are in 60-69 kg"
publishes a cell of 54 persons and tells whoever knows one of them his weight band (issue 15,
finding 3). Count thresholds do not see it; a rule on the *distribution* within a group does.

A **distribution** is a table's persons of one group spread over the bands of a sensitive
measure (:data:`DISTRIBUTIONS`): ``measurement_trends`` per month × age band × gender and
measure over ``band`` (weight, body fat), ``monthly_revenue`` per month over ``price_band``
(everyone who purchased is one group: "all purchasers bought in one band" is the same
disclosure for a person known to have purchased), and ``search_volume`` per day and kind over
``category`` ("all 35 who searched today searched electronics" tells whoever knows a person
searched today what about; a person searching two categories counts in both, which only makes
the rule stricter). No period table aggregates ``search_volume``, so hiding a homogeneous day
whole changes no earlier release the release model reads.

The daily ``revenue`` table is one too (the group is the day's purchasers, over ``price_band``).
``monthly_revenue`` aggregates it over the days of the month, which the release model
(:mod:`tokumei.stats.disclosure.release`) handles in two ways (ADR 0002): an earlier day whose
bands are all hidden is read as "small counts or homogeneous", i.e. ``[0, inf)``, not as small
counts; and no band of a group hidden whole may be proven to hold ``min_cell`` persons or more
(``release.told``: a month's band minus its other days could otherwise point at the band that
made the day homogeneous), else the month's distribution is hidden whole as a complement.

The rule is stated on what the attacker sees, the *published* counts, with a suppressed cell
unknown (it may be 0: zero cells of the public grid are suppressed too,
``tokumei.stats.grids``). A distribution is **homogeneous** when it is *possibly* so in that
view, i.e. when the attacker cannot exclude it:

- fewer than ``l_diversity`` of its bands are published (the suppressed ones may all be 0, so
  every member may be in the published band(s)); or
- its largest published band holds more than ``max_band_share`` of its published persons.

A distribution with no published band is not homogeneous (nothing about the band is published).
The stated view is implied by the truth (fewer than ``l`` non-empty bands, or a band with more
than ``max_band_share`` of the group, always shows in the published view), so one rule does for
both: :func:`protect` applies it to the frame about to be published and suppresses *every* cell
(counts and measures) of a group with a homogeneous distribution, and :func:`audit` re-checks
the frame as published. In ``measurement_trends`` the group is suppressed for both measures:
weight and body-fat bands are two partitions of the same persons, so the published body-fat
bands would give the group's total back.

Default ``max_band_share`` 0.9: a share at most 0.9 leaves an attacker at least a 1-in-10 doubt
about a member's band, the same protection as ``min_cell`` = 10 gives a count. Rows are only
ever added to the suppression, so the rule cannot undo another rule's suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from tokumei.anonymize.policy import DisclosurePolicy


@dataclass(frozen=True)
class Distribution:
    """A sensitive band distribution within the groups of one table."""

    #: Dims that make a group (every cell of a group is suppressed together).
    group: tuple[str, ...]
    #: The band dim of the sensitive measure.
    band: str
    #: Dims that split a group into several distributions checked on their own (``measure``).
    by: tuple[str, ...] = ()
    #: The person count of a band cell.
    count: str = "persons"


DISTRIBUTIONS: dict[str, Distribution] = {
    "measurement_trends": Distribution(
        ("date", "month", "age_band", "gender"), "band", ("measure",)
    ),
    "monthly_revenue": Distribution(("date", "month"), "price_band"),
    "revenue": Distribution(("date",), "price_band"),
    "search_volume": Distribution(("date", "kind"), "category"),
}


def homogeneous(frame: pl.DataFrame, dist: Distribution, rules: DisclosurePolicy) -> pl.DataFrame:
    """One row per distribution (group × by) with ``published_bands``, ``max_share`` and
    ``homogeneous`` (the possibly-homogeneous rule of the module docstring)."""
    keys = [*dist.group, *dist.by]
    c = pl.col(dist.count)
    published = c.is_not_null() & (c > 0)
    pub = pl.when(published).then(c).otherwise(None)
    out = frame.group_by(keys).agg(
        published.sum().cast(pl.Int64).alias("published_bands"),
        (pub.max() / pub.sum()).alias("max_share"),
    )
    flag = (pl.col("published_bands") > 0) & (
        (pl.col("published_bands") < rules.l_diversity)
        | (pl.col("max_share") > rules.max_band_share)
    )
    return out.with_columns(flag.alias("homogeneous")).sort(keys)


def _flagged_groups(
    frame: pl.DataFrame, dist: Distribution, rules: DisclosurePolicy
) -> pl.DataFrame:
    h = homogeneous(frame, dist, rules)
    return h.filter(pl.col("homogeneous")).select(dist.group).unique()


def protect(frame: pl.DataFrame, name: str, rules: DisclosurePolicy) -> tuple[pl.DataFrame, int]:
    """Suppress every cell of each group with a homogeneous distribution; (frame, groups).

    Tables without a declared distribution are returned unchanged.
    """
    from tokumei.stats.tables import TABLES, suppress_where

    dist = DISTRIBUTIONS.get(name)
    if dist is None or frame.height == 0:
        return frame, 0
    groups = _flagged_groups(frame, dist, rules)
    if groups.height == 0:
        return frame, 0
    marked = groups.with_columns(pl.lit(True).alias("_homog"))
    hide = frame.join(marked, on=list(dist.group), how="left", maintain_order="left")["_homog"]
    spec = TABLES[name]
    out = suppress_where(frame, hide.fill_null(False), (*spec.counts, *spec.measures))
    assert isinstance(out, pl.DataFrame)
    return out, groups.height


def audit(frame: pl.DataFrame, name: str, rules: DisclosurePolicy) -> dict[str, Any]:
    """The attacker's check on a published table: no published distribution is homogeneous.

    Returns ``{"checked": bool, "distributions", "published", "homogeneous", "l",
    "max_band_share", "ok"}``; ``ok`` is false when any published distribution is homogeneous
    (the caller fails the release). Counts are of distributions, never of persons.
    """
    dist = DISTRIBUTIONS.get(name)
    if dist is None:
        return {"checked": False, "ok": True}
    h = homogeneous(frame, dist, rules)
    bad = int(h["homogeneous"].sum()) if h.height else 0
    return {
        "checked": True,
        "distributions": h.height,
        "published": int((h["published_bands"] > 0).sum()) if h.height else 0,
        "homogeneous": bad,
        "l": rules.l_diversity,
        "max_band_share": rules.max_band_share,
        "ok": bad == 0,
    }


def protect_tables(
    frames: dict[str, pl.DataFrame], rules: DisclosurePolicy
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """:func:`protect` on every table; (tables, groups suppressed per table with any)."""
    out: dict[str, pl.DataFrame] = {}
    hidden: dict[str, int] = {}
    for name, df in frames.items():
        out[name], n = protect(df, name, rules)
        if name in DISTRIBUTIONS:
            hidden[name] = n
    return out, hidden
