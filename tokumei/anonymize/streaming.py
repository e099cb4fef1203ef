"""Polars expression helpers that keep the streaming engine streaming.

Why a module: in Polars 2.1 some expressions are *columnar functions* for the streaming engine:
it gathers the whole column (and with it the frame) before running them, so a 9.1M-row event
partition that otherwise streams in ~1 GiB peaks at 4-5 GiB. ``map_batches`` without
``is_elementwise=True`` and every ``replace``/``replace_strict`` (whatever the mapping's size)
are such nodes (``tests/test_streaming_plans.py`` reads the physical plan to find them). When
the function is elementwise, running it per morsel gives the same column and streams.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl


def per_batch(
    col: pl.Expr, fn: Callable[[pl.Series], pl.Series], return_dtype: pl.DataType = pl.String
) -> pl.Expr:
    """``fn`` (an elementwise Series -> Series function) applied to ``col`` batch by batch.

    >>> lf = pl.LazyFrame({"p": ["東京都", "大阪府", None]})
    >>> region = {"東京都": "関東", "大阪府": "近畿"}
    >>> out = lf.select(per_batch(pl.col("p"), lambda s: s.replace_strict(region))).collect()
    >>> out["p"].to_list()
    ['関東', '近畿', None]
    """
    return col.map_batches(fn, return_dtype=return_dtype, is_elementwise=True)


def on_distinct(col: pl.Expr, fn: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """``fn(col)`` computed once per distinct value of each batch and joined back to the rows.

    Why: a per-value expression that is dear per row (the URL template splits every path into
    segments) costs in proportion to the rows; logs repeat values, so on the distinct ones it
    costs in proportion to the dictionary plus one hash join (a 1M-event file: url and referrer
    templates 1.64 -> 1.01 CPU-s, the same columns; bench/results/scale.md, session 12).
    ``fn`` must be elementwise (one output per input value), like :func:`per_batch`'s.

    >>> lf = pl.LazyFrame({"u": ["a/1", "a/1", None, "b"]})
    >>> lf.select(on_distinct(pl.col("u"), lambda c: c.str.to_uppercase())).collect()["u"].to_list()
    ['A/1', 'A/1', None, 'B']
    """

    def _batch(s: pl.Series) -> pl.Series:
        values = pl.DataFrame({"k": s.unique()}).with_columns(fn(pl.col("k")).alias("v"))
        rows = pl.DataFrame({"k": s})
        joined = rows.join(values, on="k", how="left", maintain_order="left", nulls_equal=True)
        return joined.get_column("v").alias(s.name)

    return per_batch(col, _batch)


#: The columns of a replacement map (``tokumei.anonymize.pii.Scrubber.replacement_map``).
MAP_SCHEMA = {"column": pl.String, "old": pl.String, "new": pl.String}


def apply_replacements(frame: pl.LazyFrame, mapping: pl.DataFrame) -> pl.LazyFrame:
    """``frame`` with each value of ``mapping``'s ``old`` replaced by its ``new``, column by
    column (the map of ``Scrubber.replacement_map``); other columns and values unchanged.

    >>> m = pl.DataFrame({"column": ["q"], "old": ["a@x.jp"], "new": ["<EMAIL_ADDRESS>"]})
    >>> apply_replacements(pl.LazyFrame({"q": ["a@x.jp", "b"]}), m).collect()["q"].to_list()
    ['<EMAIL_ADDRESS>', 'b']
    """
    exprs = [
        replace_per_batch(pl.col(name).cast(pl.String), part["old"], part["new"]).alias(name)
        for (name,), part in mapping.group_by("column", maintain_order=True)
    ]
    return frame.with_columns(exprs) if exprs else frame


def replace_per_batch(
    col: pl.Expr, old: Sequence[str] | pl.Series, new: Sequence[str] | pl.Series
) -> pl.Expr:
    """``col.replace(old, new)`` applied batch by batch, so the streaming engine keeps streaming.

    Why not ``replace`` itself: with a literal mapping of tens of thousands of values, the
    streaming engine runs the whole ``with_columns`` in memory (a 9.1M-row event partition:
    5.05 GiB peak, against 0.81 GiB this way; 10M-event bench, bench/results/scale.md). The
    replacement is elementwise, so running it per morsel gives the same column.
    """
    old_s = pl.Series(old, dtype=pl.String)
    new_s = pl.Series(new, dtype=pl.String)
    return per_batch(col, lambda s: s.replace(old_s, new_s))
