"""Per-table attacker audit of published statistics tables (superseded in the pipeline).

``stats_reduce`` now audits the whole release as one system built from the tables' declared
relations (:func:`tokumei.stats.disclosure.release.audit`, ADR 0001): this per-table audit
knows only the relations written below and missed the two partitions of the same persons in
``measurement_trends`` (issue 15, finding 1; ``tests/test_disclosure_release.py`` shows it).
It is kept for callers of the per-table API.

For every published table and every count column, ``tokumei.stats.disclosure.attack`` (an LP
attacker) takes the *published* values and the table's structure and solves, for each
suppressed cell, min and max of its value subject to the published relations and ``x >= 0``.
A cell is protected when its interval holds at least ``threshold`` candidate values
(``hi - lo + 1 >= threshold``: the policy's protection range, i.e. the attacker learns no more
than "it is small").

Structure declared per table:

- ``sessions``: the ``all`` row is the margin over ``duration_band`` of each date ×
  device_class × os_family. ``sessions`` is additive (``all = sum(bands)``); ``persons`` is not
  (``all <= sum(bands)``, ``band <= all``). The published table does not say which suppressed
  rows are primary, so the audit's attacker only knows ``x >= 0`` for them (published knowledge;
  the primary rule is on persons, so it gives no upper bound on sessions anyway). The stronger
  attacker that is *told* which rows are primary already ran inside
  ``tokumei.stats.tables.protect_sessions``, which fails the run when it wins.
- every other table publishes no margin: no equation ties its cells. Every suppressed cell is
  primary by the published rule (count < threshold), so the attacker is told so and each
  interval is ``[0, threshold - 1]``, computed by the LP anyway.
- ``funnel``: per row ``persons_signup <= persons_page_view`` and ``persons_purchase <=
  persons_signup``. ``attack`` takes no extra inequalities, so they are NOT in its LP. They
  cannot narrow anything as long as the suppressed steps of a row are a suffix of the funnel
  (a published step is >= threshold and only bounds later, already-small steps from above; the
  small steps can all be 0 or all be threshold - 1 together). The audit checks that suffix
  property per row and marks the table not ok when it fails (``funnel_order_ok``).

Measures (means, medians, amounts) are not attacked: they are nulled with their cell and no
linear relation between them is published. Every number in the result (interval widths) is a
function of published values only, so it is safe for the manifest.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from tokumei.stats.disclosure import attack
from tokumei.stats.tables import ALL_DURATIONS, TABLES

#: Tables whose ``all`` row (per the other dims) is a margin over ``duration_band``.
_MARGIN_DIM = {"sessions": "duration_band"}
#: (table, count) pairs whose margin is the plain sum of its cells.
_ADDITIVE = {("sessions", "sessions")}
#: Funnel steps in order; a later step counts a subset of the persons of an earlier one.
_FUNNEL = ("persons_page_view", "persons_signup", "persons_purchase")


def _attack_count(
    name: str, df: pl.DataFrame, count: str, threshold: int, rounding_base: int | None = None
) -> pl.DataFrame:
    """The attacker's report for one count column of one published table."""
    dims = [d for d in TABLES[name].dims]
    margin_dim = _MARGIN_DIM.get(name)
    if margin_dim is None:
        # Published rule: a null count is < threshold. Tell the attacker (worst case).
        label = pl.when(pl.col(count).is_null()).then(pl.lit("primary")).alias("suppression")
        cells = df.select(*dims, count, label)
        return attack(
            cells, dims, count, threshold=threshold, additive=True, rounding_base=rounding_base
        )
    is_all = pl.col(margin_dim) == ALL_DURATIONS
    key = tuple(d for d in dims if d != margin_dim)
    cells = df.filter(~is_all).select(*dims, count)
    margins = {key: df.filter(is_all).select(*key, count)}
    return attack(
        cells,
        dims,
        count,
        threshold=threshold,
        additive=(name, count) in _ADDITIVE,
        margins=margins,
        rounding_base=rounding_base,
    )


def _funnel_order_ok(df: pl.DataFrame) -> bool:
    """Per row, the suppressed funnel steps form a suffix (see the module docstring)."""
    nulls = [pl.col(c).is_null() for c in _FUNNEL]
    broken = pl.any_horizontal(nulls[i] & ~nulls[i + 1] for i in range(len(_FUNNEL) - 1))
    return not bool(df.select(broken.any()).item()) if df.height else True


def audit_table(
    name: str, df: pl.DataFrame, threshold: int, rounding_base: int | None = None
) -> dict[str, Any]:
    """Attack one published table (every count column); see :func:`audit_tables`."""
    spec = TABLES[name]
    suppressed = 0
    widths: list[float] = []
    per_count: dict[str, Any] = {}
    for count in spec.counts:
        n = df[count].null_count()
        if n == 0:
            per_count[count] = {"suppressed_cells": 0, "min_width": None}
            continue
        report = _attack_count(name, df, count, threshold, rounding_base)
        w = float(report["width"].min())
        suppressed += report.height
        widths.append(w)
        per_count[count] = {
            "suppressed_cells": report.height,
            "min_width": None if math.isinf(w) else int(w),
            "bounded_cells": int(report["width"].is_finite().sum()),
            "additive": (name, count) in _ADDITIVE,
        }
    min_w = min(widths) if widths else math.inf
    ok = min_w >= threshold
    out: dict[str, Any] = {
        "suppressed_cells": suppressed,
        # None: no suppressed cell, or every suppressed cell unbounded above.
        "min_width": None if math.isinf(min_w) else int(min_w),
        "required_width": threshold,
        "margins": f"all over {_MARGIN_DIM[name]}" if name in _MARGIN_DIM else None,
        "counts": per_count,
    }
    if name == "funnel":
        order_ok = _funnel_order_ok(df)
        out["funnel_order_ok"] = order_ok
        out["funnel_inequalities_in_lp"] = False
        ok = ok and order_ok
    out["ok"] = bool(ok)
    return out


def audit_tables(
    tables: dict[str, pl.DataFrame], threshold: int, rounding_base: int | None = None
) -> dict[str, Any]:
    """Attack every published statistics table; per table the attacker's verdict.

    ``tables`` maps a ``tokumei.stats.tables.TABLES`` name to the table as published (null where
    suppressed). Returns ``{table: {"suppressed_cells", "min_width", "required_width", "ok",
    "margins", "counts": {count: ...}}}`` where ``suppressed_cells`` counts suppressed
    (cell, count) pairs, ``min_width`` is the narrowest attacker interval (candidate values;
    None when there is none or all are unbounded) and ``ok`` is ``min_width >= threshold``.
    """
    base = rounding_base if rounding_base and rounding_base > 1 else None
    return {name: audit_table(name, df, threshold, base) for name, df in tables.items()}


def failing(audit: dict[str, Any]) -> list[str]:
    """Names of the tables the attacker beat, sorted."""
    return sorted(name for name, rec in audit.items() if not rec["ok"])
