"""Public grids: every cell a statistics table publishes, decided before the data is read.

Why: a table that has a row only when somebody has that combination discloses existence. The
only person of their (age band, gender) group was followed through ``measurements_summary``
because the row was there exactly on their weigh-in days (issue 15, finding 2). So every table
is completed on its grid: each cell of the grid is published every time, zero cells included
(they are suppressed like small ones), and a day without measurements publishes the same rows
as a day with some.

Grids come from *public* domains only: the hierarchies' domains at the policy's levels
(``dp_tables.demographic_grid``), the closed vocabularies of this package (device classes of
the user-agent generalization, OS families, duration, price, weight and body-fat bands, search
kinds and categories), the published URL templates (each used by at least k persons, the rest
folded to ``other`` before counting) and the final cohort cells. A value outside its domain
never creates a row: demographic values fold to ``unknown`` where the count is additive (one
cell per person), device classes fold to ``other``, and anything else fails closed
(:class:`OffGridError`, naming table and column, never the value).

:func:`grid` is the one place that says which cells a table has; :func:`complete` puts a
table on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

import polars as pl

from tokumei.anonymize.policy import Policy, default_policy_dir, load_policy
from tokumei.infra.errors import TokumeiError

#: Device classes of the user-agent generalization (``hierarchies.ua_device_class``) plus
#: ``unknown`` for events without a user agent. Closed: any other value folds to ``other``.
DEVICE_CLASSES: tuple[str, ...] = ("mobile", "tablet", "desktop", "bot", "other", "unknown")
UNKNOWN = "unknown"
#: The fold target of a URL template outside the published set.
OTHER_TEMPLATE = "other"


class OffGridError(TokumeiError):
    """A table has a cell outside its public grid: publishing it would name a value."""


def fold_device(col: pl.Expr) -> pl.Expr:
    """Device class → itself if in :data:`DEVICE_CLASSES`, ``unknown`` if null, else ``other``."""
    return (
        pl.when(col.is_null())
        .then(pl.lit(UNKNOWN))
        .when(col.is_in(DEVICE_CLASSES))
        .then(col)
        .otherwise(pl.lit("other"))
    )


@cache
def _default_policy() -> Policy:
    return load_policy(default_policy_dir())


def demographic(policy: Policy | None = None) -> pl.DataFrame:
    """prefecture × age_band × gender at the policy's levels (the active-user tables' grid)."""
    from tokumei.stats.disclosure.dp_tables import demographic_grid

    return demographic_grid(policy or _default_policy())


def _frame(dim: str, values: Iterable[str]) -> pl.DataFrame:
    return pl.DataFrame({dim: list(values)}, schema={dim: pl.String})


def _cross(*frames: pl.DataFrame) -> pl.DataFrame:
    out = frames[0]
    for f in frames[1:]:
        out = out.join(f, how="cross")
    return out


#: Dimensions that are constant within one release (added after the grid) and never gridded.
RELEASE_DIMS = ("date", "week", "month")


def grid(
    name: str,
    policy: Policy | None = None,
    *,
    templates: Iterable[str] | None = None,
    cells: Iterable[tuple[str, int]] | None = None,
) -> pl.DataFrame:
    """Every published cell of table ``name`` (its dims except date/week/month), sorted.

    ``templates``: the published URL templates of ``page_views`` (``other`` is always added);
    ``cells``: the final cohort cells of ``retention_cohorts`` (``periods.cohort_cells``).

    Example:
        >>> grid("funnel")["device_class"].to_list()
        ['bot', 'desktop', 'mobile', 'other', 'tablet', 'unknown']
    """
    from tokumei.stats.periods import MEASURES
    from tokumei.stats.tables import DIM_VALUES, TABLES

    def ages_genders() -> pl.DataFrame:
        return demographic(policy).select("age_band", "gender").unique()

    measure_bands = pl.DataFrame(
        {
            "measure": [m for m, (_, bands) in MEASURES.items() for _ in bands],
            "band": [b for _, (_, bands) in MEASURES.items() for b, _ in bands],
        }
    )
    closed = {d: _frame(d, v) for d, v in DIM_VALUES.items()}
    if name in ("daily_active_users", "weekly_active_users", "monthly_active_users"):
        out = demographic(policy)
    elif name == "measurements_summary":
        out = ages_genders()
    elif name == "measurement_trends":
        out = _cross(ages_genders(), measure_bands)
    elif name == "sessions":
        out = _cross(closed["device_class"], closed["os_family"], closed["duration_band"])
    elif name == "search_volume":
        out = _cross(closed["kind"], closed["category"])
    elif name == "funnel":
        out = closed["device_class"]
    elif name in ("revenue", "monthly_revenue"):
        out = closed["price_band"]
    elif name == "page_views":
        if templates is None:
            raise OffGridError("page_views: the grid needs the published URL templates")
        tpl = _frame("url_template", sorted({*templates, OTHER_TEMPLATE}))
        out = _cross(tpl, closed["device_class"])
    elif name == "retention_cohorts":
        if cells is None:
            raise OffGridError("retention_cohorts: the grid needs the final cohort cells")
        cells = list(cells)
        out = pl.DataFrame(
            {
                "signup_month": [m for m, _ in cells],
                "weeks_since_signup": [f"{w:02d}" for _, w in cells],
            },
            schema={"signup_month": pl.String, "weeks_since_signup": pl.String},
        )
    else:
        raise OffGridError(f"{name}: no public grid is declared for this table")
    dims = [d for d in TABLES[name].dims if d not in RELEASE_DIMS]
    if sorted(out.columns) != sorted(dims):  # pragma: no cover - a declaration error
        raise OffGridError(f"{name}: grid columns {out.columns} differ from the dims {dims}")
    return out.select(dims).unique().sort(dims)


def fold_to_unknown(table: pl.LazyFrame, grid_: pl.DataFrame, dims: Iterable[str]) -> pl.LazyFrame:
    """Values of ``dims`` outside their domain in ``grid_`` become ``unknown`` (per-person rows).

    For tables where each person sits in one cell (active users, measurements): folding before
    counting keeps every count a count of distinct persons.
    """
    return table.with_columns(
        pl.when(pl.col(d).is_in(grid_[d].unique().to_list()))
        .then(pl.col(d))
        .otherwise(pl.lit(UNKNOWN))
        .alias(d)
        for d in dims
    )


def complete(
    table: pl.LazyFrame | pl.DataFrame,
    grid_: pl.DataFrame,
    name: str,
    fill: Mapping[str, int | None],
) -> pl.LazyFrame:
    """``table`` on its public ``grid_``: missing cells added with ``fill`` (count 0, measure
    null); a row outside the grid fails closed (:class:`OffGridError`).

    Example:
        >>> g = pl.DataFrame({"price_band": ["<1000", "50000+"]})
        >>> t = pl.LazyFrame({"price_band": ["<1000"], "persons": [12]})
        >>> complete(t, g, "revenue", {"persons": 0}).collect()["persons"].to_list()
        [12, 0]
    """
    dims = grid_.columns
    lf = table.lazy().with_columns(pl.col(d).cast(pl.String) for d in dims)
    off = lf.join(grid_.lazy(), on=dims, how="anti").select(dims).collect()
    if off.height:
        bad = [d for d in dims if not off[d].is_in(grid_[d].unique().to_list()).all()]
        raise OffGridError(
            f"{name}: {off.height} cell(s) outside the public grid (column(s) "
            f"{', '.join(bad) or ', '.join(dims)}); fold the value or declare it in the grid"
        )
    out = grid_.lazy().join(lf, on=dims, how="left", maintain_order="left")  # in grid order
    return out.with_columns(pl.col(c).fill_null(v) for c, v in fill.items() if v is not None)
