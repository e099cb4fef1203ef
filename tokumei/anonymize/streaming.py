"""Polars expression helpers that keep the streaming engine streaming.

Why a module: in Polars 2.1 some expressions are *columnar functions* for the streaming engine:
it gathers the whole column (and with it the frame) before running them, so a 9.1M-row event
partition that otherwise streams in ~1 GiB peaks at 4-5 GiB. ``map_batches`` without
``is_elementwise=True`` and every ``replace``/``replace_strict`` (whatever the mapping's size)
are such nodes (``tests/test_streaming_plans.py`` reads the physical plan to find them). When
the function is elementwise, running it per morsel gives the same column and streams.
"""

from __future__ import annotations

from collections.abc import Callable

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
