"""Differentially private counts: Polars computes the aggregates, OpenDP adds the noise.

Why this split: ``opendp[polars]`` is not usable here, so the person-level work (contribution
bounding, distinct-person counts) is plain Polars, and only the released vector of counts goes
through an OpenDP core measurement (``make_laplace`` / ``make_gaussian`` on an integer vector
domain). The privacy claim then rests on two things this module makes explicit:

* **Contribution bounding.** Distinct-person counts change by at most 1 per cell when one person
  is added or removed, but a person can sit in several cells (two prefectures in a day). Keeping
  at most ``max_contributions`` cells per person bounds the L1 sensitivity by that number (L2 by
  its square root; we pass ``ceil(sqrt(L))`` because OpenDP's integer L2 metric takes an integer
  distance — conservative, exact for L = 1). Which cells are kept is decided by a hash of
  (person, cell), i.e. independently of everybody else's data.
* **Public keys.** The set of released cells must not depend on the data (a cell that appears
  only when someone is in it leaks that someone). ``dp_counts`` therefore takes the full grid of
  cells as ``keys`` and releases a noisy count for every one of them, zeros included.

The budget actually spent (``measurement.map(d_in)``) is recorded per release in a ``Ledger``,
which adds releases up by basic sequential composition and refuses to exceed a cap. OpenDP draws
noise from OS randomness: outputs are not reproducible by design (a seed would be a weakness).
Clamping negatives to 0 and later suppression/rounding are post-processing and cost no budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

Mechanism = Literal["laplace", "gaussian"]


@dataclass(frozen=True)
class BudgetEntry:
    """Privacy spent by one noisy release (epsilon, and delta/rho for the Gaussian)."""

    table: str
    mechanism: Mechanism
    epsilon: float
    delta: float
    rho: float | None
    scale: float
    max_contributions: int
    cells: int


@dataclass(frozen=True)
class Ledger:
    """Append-only record of the budget spent in one run (immutable: ``spend`` returns a copy)."""

    limit_epsilon: float | None = None
    entries: tuple[BudgetEntry, ...] = field(default=())

    @property
    def epsilon(self) -> float:
        """Total epsilon under basic sequential composition."""
        return sum(e.epsilon for e in self.entries)

    @property
    def delta(self) -> float:
        """Total delta under basic sequential composition."""
        return sum(e.delta for e in self.entries)

    def spend(self, entry: BudgetEntry) -> Ledger:
        """Record ``entry``; raise when it would exceed ``limit_epsilon``."""
        if self.limit_epsilon is not None and self.epsilon + entry.epsilon > self.limit_epsilon:
            raise ValueError(
                f"privacy budget exceeded: {self.epsilon + entry.epsilon:.4g} > "
                f"{self.limit_epsilon:.4g}"
            )
        return Ledger(self.limit_epsilon, (*self.entries, entry))

    def as_dicts(self) -> list[dict[str, object]]:
        """Entries as plain dicts, for the run manifest / privacy report."""
        return [e.__dict__.copy() for e in self.entries]


@dataclass(frozen=True)
class NoiseResult:
    """Noisy frame plus the budget entry that paid for it."""

    frame: pl.DataFrame
    budget: BudgetEntry


def _dp():  # noqa: ANN202 - opendp.prelude module
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def make_count_measurement(
    n_cells: int,
    epsilon: float,
    *,
    mechanism: Mechanism = "laplace",
    max_contributions: int = 1,
    delta: float = 1e-7,
) -> tuple[object, float, float, float, float | None]:
    """OpenDP measurement for a vector of ``n_cells`` integer counts at the given budget.

    Returns ``(measurement, scale, epsilon_spent, delta_spent, rho)``. The scale is found by
    OpenDP's ``binary_search_param`` so that ``map(d_in) <= epsilon`` holds with OpenDP's own
    (conservative, float-safe) accounting, rather than a hand-written ``L / epsilon``.
    """
    if epsilon <= 0:
        raise ValueError("epsilon must be > 0")
    if max_contributions < 1:
        raise ValueError("max_contributions must be >= 1")
    dp = _dp()
    domain = dp.vector_domain(dp.atom_domain(T=int), size=n_cells)
    if mechanism == "laplace":
        metric = dp.l1_distance(T=int)
        d_in = max_contributions

        def build(s: float):  # noqa: ANN202
            return dp.m.make_laplace(domain, metric, s)

        scale = dp.binary_search_param(build, d_in=d_in, d_out=epsilon)
        meas = build(scale)
        return meas, float(scale), float(meas.map(d_in)), 0.0, None
    if mechanism == "gaussian":
        if not 0 < delta < 1:
            raise ValueError("gaussian needs 0 < delta < 1")
        metric = dp.l2_distance(T=int)
        d_in = math.ceil(math.sqrt(max_contributions))

        def build_g(s: float):  # noqa: ANN202
            return dp.m.make_gaussian(domain, metric, s)

        def approx(s: float):  # noqa: ANN202
            return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(build_g(s)), delta)

        scale = dp.binary_search_param(approx, d_in=d_in, d_out=(epsilon, delta))
        eps_spent, delta_spent = approx(scale).map(d_in)
        rho = float(build_g(scale).map(d_in))
        return build_g(scale), float(scale), float(eps_spent), float(delta_spent), rho
    raise ValueError(f"unknown mechanism {mechanism!r}")


def noise_counts(
    frame: pl.DataFrame,
    count: str,
    epsilon: float,
    *,
    mechanism: Mechanism = "laplace",
    max_contributions: int = 1,
    delta: float = 1e-7,
    clamp: bool = True,
    table: str = "",
) -> NoiseResult:
    """Add DP noise to the ``count`` column of an already contribution-bounded aggregate.

    The caller guarantees that each person contributes to at most ``max_contributions`` rows and
    at most 1 to each (distinct-person counts), and that the rows are a public key set.
    """
    meas, scale, eps, dlt, rho = make_count_measurement(
        frame.height,
        epsilon,
        mechanism=mechanism,
        max_contributions=max_contributions,
        delta=delta,
    )
    noisy = meas(frame[count].cast(pl.Int64).to_list()) if frame.height else []  # type: ignore[operator]
    col = pl.Series(count, noisy, pl.Int64)
    if clamp:
        col = col.clip(lower_bound=0)
    entry = BudgetEntry(table, mechanism, eps, dlt, rho, scale, max_contributions, frame.height)
    return NoiseResult(frame.with_columns(col), entry)


def bound_contributions(
    records: pl.DataFrame | pl.LazyFrame, person: str, dims: list[str], max_cells: int
) -> pl.LazyFrame:
    """Keep at most ``max_cells`` distinct cells per person, chosen by a hash of (person, cell).

    The choice for one person depends only on that person's own rows, as DP requires. Returns
    one row per kept (person, cell).
    """
    return (
        records.lazy()
        .select(person, *dims)
        .unique()
        .with_columns(pl.struct(person, *dims).hash(seed=0x70C0).alias("_h"))
        .filter(pl.col("_h").rank("ordinal").over(person) <= max_cells)
        .drop("_h")
    )


def dp_counts(
    records: pl.DataFrame | pl.LazyFrame,
    person: str,
    dims: list[str],
    keys: pl.DataFrame,
    epsilon: float,
    *,
    mechanism: Mechanism = "laplace",
    max_contributions: int = 1,
    delta: float = 1e-7,
    count: str = "persons",
    table: str = "",
) -> NoiseResult:
    """Noisy distinct-person counts for every cell of the public grid ``keys``.

    Records outside ``keys`` are dropped (they cannot be released without leaking the key).
    """
    kept = bound_contributions(records, person, dims, max_contributions)
    exact = kept.group_by(dims).agg(pl.len().cast(pl.Int64).alias(count))
    grid = (
        keys.lazy()
        .select(dims)
        .unique(maintain_order=True)
        .join(exact, on=dims, how="left", maintain_order="left")
        .with_columns(pl.col(count).fill_null(0))
        .collect()
    )
    return noise_counts(
        grid,
        count,
        epsilon,
        mechanism=mechanism,
        max_contributions=max_contributions,
        delta=delta,
        table=table,
    )
