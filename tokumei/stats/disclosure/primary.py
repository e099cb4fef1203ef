"""Primary suppression: cells with too few distinct persons are not published.

A cell (interior or margin) counting fewer than ``threshold`` distinct persons could single
somebody out, so its value is withheld. Zeros are withheld too by default (``suppress_zeros``):
"nobody in group X did Y" is itself a disclosure about everybody in X, and keeping zeros visible
also tells the attacker that every suppressed cell is >= 1. Callers that must publish zeros (e.g.
a dense calendar grid) pass ``suppress_zeros=False``; the attacker model then uses lower bound 1.

Primary suppression alone is NOT safe (see ``secondary`` and ``attacker``): it only decides which
cells must be hidden, not whether they stay hidden.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SUPPRESSION_KINDS = ("primary", "secondary")
SuppressionKind = pl.Enum(list(SUPPRESSION_KINDS))


def primary_mask(values: np.ndarray, threshold: int, suppress_zeros: bool = True) -> np.ndarray:
    """Boolean mask of cells below the threshold (zeros included unless ``suppress_zeros``)."""
    small = values < threshold
    return small if suppress_zeros else small & (values > 0)


def primary_expr(count: str, threshold: int = 10, suppress_zeros: bool = True) -> pl.Expr:
    """The same rule as a Polars expression, for callers that only need the flag."""
    small = pl.col(count) < threshold
    return small if suppress_zeros else small & (pl.col(count) > 0)


def flag_primary(
    frame: pl.DataFrame, count: str, threshold: int = 10, suppress_zeros: bool = True
) -> pl.DataFrame:
    """Primary suppression only: null the small counts, add ``suppressed`` and ``suppression``.

    Useful for a table with no published margins (nothing to difference against) and, in tests,
    to show what the attacker recovers when complementary suppression is skipped.
    """
    flag = primary_expr(count, threshold, suppress_zeros)
    return frame.with_columns(
        pl.when(flag).then(None).otherwise(pl.col(count)).alias(count),
        flag.alias("suppressed"),
        pl.when(flag).then(pl.lit("primary")).cast(SuppressionKind).alias("suppression"),
    )
