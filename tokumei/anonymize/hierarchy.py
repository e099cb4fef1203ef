"""The one representation of a generalization hierarchy (ARX's "hierarchy" idea, in its own place).

A hierarchy maps a raw value to coarser values, level by level. Level 0 is the raw value; the
highest level is usually full suppression (``"*"``). Both the built-in hierarchies of docs/architecture.md §4
(age bands, JIS mesh, …) and ARX-style CSV hierarchies implement this protocol, so the k-anonymity
search, the pipeline's fixed generalization and the metrics all speak one language: a function
from (column expression, level) to a Polars expression. Everything stays a lazy expression, so a
hierarchy costs nothing until a query runs and works the same on a 30k-row CSV or a 10M-row day.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import polars as pl

SUPPRESSED = "*"


@runtime_checkable
class Hierarchy(Protocol):
    """A generalization hierarchy for one quasi-identifier.

    ``levels`` counts every level including level 0 (raw). ``expr(col, level)`` returns the
    generalized value of ``col`` at ``level`` as a Utf8 expression (level 0 may keep the raw dtype
    cast to string). Implementations must be monotone: two raw values equal at level ``i`` are equal
    at every level ``j > i``.

    Example:
        >>> h = AGE_BANDS  # doctest: +SKIP
        >>> df.select(h.expr(pl.col("age"), 1))  # doctest: +SKIP
    """

    name: str
    levels: int

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        """The generalized value of ``col`` at ``level`` (0 = raw)."""
        ...


def check_level(h: Hierarchy, level: int) -> None:
    """Raise a clear error for a level outside the hierarchy (a policy typo, usually)."""
    if not 0 <= level < h.levels:
        raise ValueError(
            f"hierarchy {h.name!r} has levels 0..{h.levels - 1}; level {level} was asked for"
        )
