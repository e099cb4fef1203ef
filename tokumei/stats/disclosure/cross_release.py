"""Disclosure control *across* releases: what differencing two publications could reveal.

A cell suppressed in one release must not become recoverable from another release. tokumei's
mechanism has three parts (part 1, calendar periods released once complete, is in
:mod:`tokumei.stats.periods`):

2. **Period cells vs. the daily releases.** Distinct-person counts are not additive, so a weekly
   count is not the sum of its daily counts, but one inequality does hold for every cell key
   (same prefecture × age band × gender): every person active in the week is active on at least
   one of its days, so ``sum(daily) >= weekly``. An attacker who knows the published weekly
   count ``M``, the published daily counts ``p`` and that each of the ``s`` suppressed daily
   cells is at most ``t - 1`` learns, for each suppressed daily cell,
   ``x >= M - sum(p) - (t - 1)(s - 1)``. When that lower bound is above 0 the cell's interval
   is narrower than the protection range ``t``, so :func:`cover_suppression` suppresses the
   period cell as a complement (then ``M`` is unknown and the bound disappears). The same holds
   for a month against its days and against the ISO weeks that cover it. A fine release that is
   missing makes its day unknown and unbounded, so it gives no bound (nothing to do).
   ``cover_audit`` re-checks the final tables and is recorded in the manifest (fail closed).

   For *additive* measures (revenue amounts) the month is the sum of its days, so a suppressed
   daily amount would be recovered by subtraction: :func:`amount_guard` suppresses a period
   amount whenever any daily amount of the same cell was suppressed.

3. **Re-releases of the same table and date** (a rerun, a backfill, a rerun after erasures):
   :func:`keep_previous_suppression` suppresses again every value that the release being
   replaced had suppressed, so the new release never reveals a value the old one hid. With the
   same input a rerun is identical anyway (tested); after an erasure counts can only fall, and a
   value that falls under the threshold is suppressed by the primary rule. What differencing a
   re-release *does* show is that counts fell (by the number of erased persons in each cell);
   that is inherent to publishing exact counts again and is documented, not hidden.

Every number here is a function of published values only, so the audit results are safe for
the manifest.
"""

from __future__ import annotations

from typing import Any

import polars as pl


def _fine_stats(fines: list[pl.DataFrame | None], dims: list[str], count: str) -> pl.DataFrame:
    """Per cell key: sum of published fine values and number of suppressed fine cells."""
    present = [f.select(*dims, count) for f in fines if f is not None]
    if not present:
        return pl.DataFrame(
            schema={**{d: pl.String for d in dims}, "_pub": pl.Int64, "_supp": pl.Int64}
        )
    return (
        pl.concat(present, how="vertical_relaxed")
        .group_by(dims)
        .agg(
            pl.col(count).sum().cast(pl.Int64).alias("_pub"),
            pl.col(count).null_count().cast(pl.Int64).alias("_supp"),
        )
    )


def _lower_bounds(
    coarse: pl.DataFrame,
    fines: list[pl.DataFrame | None],
    dims: list[str],
    count: str,
    threshold: int,
) -> pl.DataFrame:
    """``coarse`` with ``_lb``: the attacker's lower bound on each linked suppressed fine cell.

    Null when the family cannot bound anything (a fine release is missing, no fine cell is
    suppressed, or the coarse cell itself is suppressed).
    """
    complete = all(f is not None for f in fines) and bool(fines)
    stats = _fine_stats(fines, dims, count)
    joined = coarse.join(stats, on=dims, how="left", nulls_equal=True)
    supp = pl.col("_supp").fill_null(0)
    lb = pl.col(count) - pl.col("_pub").fill_null(0) - (threshold - 1) * (supp - 1)
    return joined.with_columns(
        pl.when(pl.lit(complete) & pl.col(count).is_not_null() & (supp > 0))
        .then(lb)
        .otherwise(None)
        .alias("_lb")
    )


def cover_suppression(
    coarse: pl.DataFrame,
    families: list[list[pl.DataFrame | None]],
    dims: list[str],
    count: str,
    threshold: int,
) -> pl.Series:
    """Mask of ``coarse`` cells to suppress so no linked suppressed fine cell is narrowed.

    ``families``: each a list of fine releases (one frame per day or week, ``None`` when that
    release does not exist) whose union covers the coarse period, with the same ``dims``.

    Example:
        >>> import polars as pl
        >>> week = pl.DataFrame({"g": ["a"], "persons": [20]})
        >>> days = [pl.DataFrame({"g": ["a"], "persons": [v]}) for v in (15, None)]
        >>> cover_suppression(week, [days], ["g"], "persons", 10).to_list()  # x >= 20 - 15 = 5
        [True]
    """
    mask = pl.Series([False] * coarse.height)
    for fines in families:
        lb = _lower_bounds(coarse, fines, dims, count, threshold)["_lb"]
        mask = mask | (lb.fill_null(0) > 0)
    return mask


def cover_audit(
    coarse: pl.DataFrame,
    families: list[list[pl.DataFrame | None]],
    dims: list[str],
    count: str,
    threshold: int,
) -> dict[str, Any]:
    """The attacker's verdict on the final tables: narrowest linked fine interval.

    ``min_width`` counts candidate values (``t - max(lb, 0)``); ``ok`` when it is at least the
    threshold for every linked cell.
    """
    linked = 0
    min_width: int | None = None
    for fines in families:
        lb = _lower_bounds(coarse, fines, dims, count, threshold)["_lb"].drop_nulls()
        linked += lb.len()
        if lb.len():
            w = int(threshold - max(int(lb.max()), 0))  # type: ignore[arg-type]
            min_width = w if min_width is None else min(min_width, w)
    return {
        "linked_period_cells": linked,
        "min_width": min_width,
        "required_width": threshold,
        "ok": min_width is None or min_width >= threshold,
    }


def amount_guard(
    period: pl.DataFrame, dailies: list[pl.DataFrame | None], dims: list[str], amount: str
) -> pl.Series:
    """Mask of period rows whose additive ``amount`` must be suppressed.

    A period amount is the sum of the daily amounts of the same cell; if any of them was
    suppressed, publishing the period amount would give it back by subtraction.
    """
    present = [d.select(*dims, amount) for d in dailies if d is not None]
    if not present:
        return pl.Series([False] * period.height)
    hidden = (
        pl.concat(present, how="vertical_relaxed")
        .filter(pl.col(amount).is_null())
        .select(dims)
        .unique()
        .with_columns(pl.lit(True).alias("_hidden"))
    )
    joined = period.select(dims).join(
        hidden, on=dims, how="left", nulls_equal=True, maintain_order="left"
    )
    return joined["_hidden"].fill_null(False)


def keep_previous_suppression(
    new: pl.DataFrame, old: pl.DataFrame | None, dims: list[str], columns: list[str]
) -> tuple[pl.DataFrame, int]:
    """Null in ``new`` every value of ``columns`` that ``old`` (same table and date) had null.

    Returns the new frame and the number of values suppressed only because of ``old``.
    Suppressing more never narrows what an attacker can infer (a larger set of unknowns can only
    widen each interval), and the audit runs on the result anyway.
    """
    if old is None or old.height == 0 or new.height == 0:
        return new, 0
    cols = [c for c in columns if c in old.columns and c in new.columns]
    prev = old.select(*dims, *[pl.col(c).is_null().alias(f"_old_{c}") for c in cols])
    joined = new.join(prev, on=dims, how="left", nulls_equal=True, maintain_order="left")
    extra = 0
    updates = []
    for c in cols:
        hide = pl.col(f"_old_{c}").fill_null(False)
        extra += int(joined.select((hide & pl.col(c).is_not_null()).sum()).item())
        updates.append(pl.when(hide).then(None).otherwise(pl.col(c)).alias(c))
    out = joined.with_columns(updates)
    flag = pl.any_horizontal(pl.col(c).is_null() for c in cols)
    if "suppressed" in out.columns:
        out = out.with_columns((pl.col("suppressed") | flag).alias("suppressed"))
    return out.select(new.columns), extra
