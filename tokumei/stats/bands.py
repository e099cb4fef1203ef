"""Banding of a numeric column into labelled ranges (durations, prices, weights, body fat)."""

from __future__ import annotations

import polars as pl


def band(value: pl.Expr, bands: tuple[tuple[str, float], ...]) -> pl.Expr:
    """Label of the highest band whose lower bound ``value`` reaches (the first band otherwise).

    The first band therefore bottom-codes and the last one top-codes.

    Example:
        >>> import polars as pl
        >>> bands = (("<10", 0), ("10-19", 10), ("20+", 20))
        >>> pl.select(band(pl.lit(25), bands)).item()
        '20+'
    """
    out: pl.Expr = pl.lit(bands[0][0])
    for label, lower in bands[1:]:
        out = pl.when(value >= lower).then(pl.lit(label)).otherwise(out)
    return out
