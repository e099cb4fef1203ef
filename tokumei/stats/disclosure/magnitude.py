"""Magnitude measures (means, medians, amount totals): outliers, dominance and the median rule.

Why: a count cell of at least ``min_cell`` persons can still disclose one person's *value*.
From ``persons × (mean − median)`` over 61 days an attacker estimated one person's weight at
200.7 kg (true 212.4 kg; issue 15, finding 4): the mean moves with the outlier, the median does
not. And a total that one or two persons make up is their amount. Three rules, each a Polars
expression, with thresholds from the policy (``disclosure:`` in policies/policy.yaml):

- **Winsorizing** (:func:`winsorize`) before aggregation: each person's value is clipped to the
  bounds of the *whole day's* population (all persons with a value that day, every cell
  together): the upper bound is the ``j``-th largest value, ``j = max(ceil((1 − upper)·n),
  winsor_min_persons)``, the lower bound likewise. So at least ``winsor_min_persons`` persons
  sit at or beyond each bound, an outlier contributes the bound (a value many persons reach)
  instead of its own value, and ``persons × (mean − median)`` estimates that bound. The bounds
  are then rounded inward to ``winsor_step`` (5 kg by default): a bound is an order statistic,
  so one person joining the day would move it by one rank and with it every cell's mean; on
  a step it moves only on the rare day it crosses one. When the day has too few persons for
  both bounds (``n < 2·winsor_min_persons``, or rounded bounds that cross) the values are
  null: no measure is published that day (fail closed).
- **Dominance** (:func:`dominated`): a cell's sum is *sensitive* when its ``n`` largest
  contributors make more than ``k`` of it (the (n, k) rule) or when the second largest could
  estimate the largest to within ``p`` of its value (the p % rule: ``total − x1 − x2 <
  p · x1``). A sensitive cell's measure is suppressed, its count is not (the count is protected
  by the count rules; the measure is what the contributors dominate). Contributions are
  per person (a person's values in a cell are summed first), never per event.
- **Median** (:func:`central_median`): the published "median" is the mean of the central
  ``median_central`` values (``m`` when the number of values ``n`` has the parity of ``m``,
  else ``m + 1``, so the window stays centred), and it is published only for cells of at least
  ``median_min_persons`` persons. No published median is a single person's value.

Every function is an expression over columns the tables already have; nothing here reads data.
"""

from __future__ import annotations

import polars as pl

from tokumei.anonymize.policy import DisclosurePolicy


def top_size(rules: DisclosurePolicy) -> int:
    """How many of a cell's largest contributions the rules need (at least two for p %)."""
    return max(rules.dominance_n, 2)


def winsorize(value: pl.Expr, rules: DisclosurePolicy) -> pl.Expr:
    """``value`` clipped to the population bounds (see the module docstring), over the frame.

    Use it in a ``with_columns`` over *every* person of the day (one row per person), before
    grouping by cell. Null when the population is too small for both bounds.

    Example:
        >>> import polars as pl
        >>> rules = DisclosurePolicy(winsor_min_persons=2, winsor_step=0)
        >>> df = pl.DataFrame({"w": [60.0, 61, 62, 63, 64, 210]})
        >>> df.select(winsorize(pl.col("w"), rules))["w"].to_list()
        [61.0, 61.0, 62.0, 63.0, 64.0, 64.0]
    """
    s = value.drop_nulls().sort()
    n = s.len()
    m = rules.winsor_min_persons
    j_hi = pl.max_horizontal(((1 - rules.winsor_upper) * n).ceil().cast(pl.Int64), pl.lit(m))
    j_lo = pl.max_horizontal((rules.winsor_lower * n).ceil().cast(pl.Int64), pl.lit(m))
    values = s.implode()
    hi = values.list.get((n - j_hi).clip(0), null_on_oob=True).first()
    lo = values.list.get((j_lo - 1).clip(0), null_on_oob=True).first()
    if rules.winsor_step > 0:  # inward: at least as many persons at or beyond each bound
        hi = (hi / rules.winsor_step).floor() * rules.winsor_step
        lo = (lo / rules.winsor_step).ceil() * rules.winsor_step
    enough = (n >= j_hi + j_lo) & (lo <= hi)
    return pl.when(enough).then(value.clip(lo, hi)).otherwise(None)


def sorted_values(value: pl.Expr) -> pl.Expr:
    """Aggregation: a cell's non-null values, ascending (input of :func:`central_median`)."""
    return value.drop_nulls().sort()


def central_median(values: pl.Expr, rules: DisclosurePolicy) -> pl.Expr:
    """Mean of the central ``median_central`` (or one more) values of a sorted list column;
    null for fewer than ``median_min_persons`` values.

    Example:
        >>> import polars as pl
        >>> rules = DisclosurePolicy(median_min_persons=5)
        >>> df = pl.DataFrame({"v": [[1.0, 2, 3, 4, 100], [1.0, 2, 3, 4]]})
        >>> df.select(central_median(pl.col("v"), rules))["v"].to_list()
        [3.0, None]
    """
    m = rules.median_central
    n = values.list.len()
    width = pl.lit(m) + ((n - m) % 2)
    start = ((n - width) // 2).clip(0)
    central = values.list.slice(start, width).list.mean()
    return pl.when(n >= max(rules.median_min_persons, m)).then(central).otherwise(None)


def top_contributions(value: pl.Expr, size: int) -> pl.Expr:
    """Aggregation: the ``size`` largest contributions of a cell, descending (a list)."""
    return value.drop_nulls().sort(descending=True).head(size)


def dominated(total: pl.Expr, top: pl.Expr, rules: DisclosurePolicy) -> pl.Expr:
    """Whether a cell's sum is sensitive: (n, k) rule or p % rule on its largest contributions.

    ``total`` is the cell's exact sum of non-negative per-person contributions, ``top`` a list
    of its largest contributions (descending, at least :func:`top_size` of them when the cell
    has that many contributors). A cell with a zero total is not dominated (it has no value to
    disclose).

    Example:
        >>> import polars as pl
        >>> rules = DisclosurePolicy(dominance_n=1, dominance_k=0.5, p_percent=0.1)
        >>> df = pl.DataFrame({"t": [100.0, 100.0], "top": [[60.0, 10.0], [30.0, 20.0]]})
        >>> df.select(dominated(pl.col("t"), pl.col("top"), rules))["t"].to_list()
        [True, False]
    """
    x1 = top.list.get(0, null_on_oob=True).fill_null(0)
    x2 = top.list.get(1, null_on_oob=True).fill_null(0)
    top_n = top.list.head(rules.dominance_n).list.sum().fill_null(0)
    nk = top_n > rules.dominance_k * total
    p_rule = (total - x1 - x2) < rules.p_percent * x1
    return (total > 0) & (nk | p_rule)
