"""Deterministic rounding of published counts to a base (e.g. 5).

Rounding is applied AFTER suppression and only to published values: it blurs the exact counts
that remain (so that differencing two releases, or a release against its totals, yields only a
range) but it is not a substitute for suppression: a cell of 1 rounded to base 5 is 0, still
telling that the group is nearly empty. Margins are rounded independently of their cells, so a
rounded table is generally not additive; the published relations then only hold within
``base // 2`` per value, which ``attack(..., rounding_base=base)`` models. Protection is verified
on the unrounded values (the stronger attacker), so rounding can only widen the intervals.

Rounding is conventional (round half up), not random or controlled rounding: repeatable across
runs, which keeps a re-run of the same date byte-identical.
"""

from __future__ import annotations

import polars as pl


def round_expr(expr: pl.Expr, base: int) -> pl.Expr:
    """``expr`` rounded half-up to a multiple of ``base`` (nulls stay null, dtype kept)."""
    if base < 1:
        raise ValueError("rounding base must be >= 1")
    if base == 1:
        return expr
    return ((expr + base // 2) // base) * base


def round_counts(frame: pl.DataFrame, count: str, base: int) -> pl.DataFrame:
    """Round the ``count`` column of ``frame`` to a multiple of ``base``."""
    return frame.with_columns(round_expr(pl.col(count), base).alias(count))


def rounding_interval(base: int) -> tuple[int, int]:
    """(down, up): a published ``v`` means the true value lies in ``[v - down, v + up]``."""
    return base // 2, base - 1 - base // 2
