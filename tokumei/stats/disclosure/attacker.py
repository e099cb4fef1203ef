"""The LP attacker: how precisely can each suppressed cell be recovered from what is published?

Why an attacker and not just rules: small-cell suppression is undone by arithmetic. A row total
minus the published cells of that row gives the suppressed one back; two suppressed cells in a
row with a third relation (a column) can still be pinned down. The only general way to know that
a suppression pattern holds is to play the attacker: take every published value and the table
structure, and for each suppressed cell solve two linear programs (scipy ``linprog``, HiGHS)::

    min / max  x_c   subject to   the published relations,  x >= 0,
                                  x_p in [lb, threshold-1]  for primary (small) cells,
                                  x_s >= lb                 for complementary cells,

where the published relations are, for an **additive** table, ``sum(cells of a line) = margin``
for every margin cell; for a **non-additive** (distinct-person) table, where one person may sit in
several cells, ``margin <= sum(cells)`` and ``cell <= margin`` for every line (including the
margin-of-margins lines). ``lb`` is 0, or 1 when zeros are published (``suppress_zeros=False``:
then the attacker knows a suppressed cell is not zero). With ``rounding_base`` the published
values are themselves only known to lie in their rounding interval.

This attacker knows which suppressed cells are primary (the worst case: it is told the labels),
and the LP relaxation gives an interval that contains the integer-feasible one; the integer hull
can be narrower in rare cases (an exact answer needs an ILP per cell). Bounds are rounded inward
to integers (the attacker knows counts are integers); ``width`` counts the candidate values,
``hi - lo + 1``, so a primary cell that the attacker cannot narrow at all has width = threshold.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog

from tokumei.stats.disclosure._structure import (
    ID,
    PART,
    ROW,
    Key,
    Structure,
    build_structure,
    key_label,
    normalize_margins,
)

_EPS = 1e-6
_DENSE_MAX = 2_000_000
_BATCH_ROUNDS = 8


def _constraints(
    structure: Structure, is_var: np.ndarray, known: np.ndarray, additive: bool
) -> tuple[sparse.csr_matrix, np.ndarray, sparse.csr_matrix, np.ndarray]:
    """(A_eq, b_eq, A_ub, b_ub) over the variable columns, knowns moved to the right-hand side."""
    fixed = np.where(is_var, 0.0, np.nan_to_num(known))
    n = structure.n
    if additive:
        full_eq = structure.line_matrix(interior_only=True)
        full_ub = sparse.csr_matrix((0, n))
    else:
        full_eq = sparse.csr_matrix((0, n))
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        r = 0
        for line in structure.lines:
            for m in line.members.tolist():  # member <= total
                rows += [r, r]
                cols += [m, line.total]
                vals += [1.0, -1.0]
                r += 1
        pairs = sparse.csr_matrix((vals, (rows, cols)), shape=(r, n))
        # total - sum(members) <= 0
        full_ub = sparse.vstack([-structure.line_matrix(interior_only=False), pairs]).tocsr()

    def split(full: sparse.csr_matrix) -> tuple[sparse.csr_matrix, np.ndarray]:
        rhs = -(full @ fixed)
        a = full[:, np.flatnonzero(is_var)].tocsr()
        keep = np.diff(a.indptr) > 0
        return a[keep], rhs[keep]

    a_eq, b_eq = split(full_eq)
    a_ub, b_ub = split(full_ub)
    return a_eq, b_eq, a_ub, b_ub


def solve_intervals(
    structure: Structure,
    known: np.ndarray,
    box_lo: np.ndarray,
    box_hi: np.ndarray,
    targets: np.ndarray,
    *,
    additive: bool,
    rounding_base: int | None = None,
    required: np.ndarray | None = None,
    seen: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Attacker interval [lo, hi] for each id in ``targets``.

    ``known`` holds published values (NaN = suppressed); ``box_lo``/``box_hi`` the attacker's
    prior bounds of each suppressed cell. With ``required`` (candidate count per target), a
    target is skipped as soon as feasible points already seen prove an interval that wide, and
    its returned [lo, hi] is then only an inner bound: used by the protection loop, where the
    question is "wide enough?" and not "how wide?". ``seen`` (per cell id, updated in place)
    carries the range of values taken in feasible points found so far across calls: suppressing
    more cells keeps old feasible points feasible, so the protection loop never re-proves what it
    already knows. Not used with ``rounding_base``.
    """
    n = structure.n
    unknown = np.isnan(known)
    if rounding_base and rounding_base > 1:
        is_var = np.ones(n, dtype=bool)
        down, up = rounding_base // 2, rounding_base - 1 - rounding_base // 2
        lo_b = np.where(unknown, box_lo, np.maximum(np.nan_to_num(known) - down, 0.0))
        hi_b = np.where(unknown, box_hi, np.nan_to_num(known) + up)
    else:
        is_var = unknown
        lo_b, hi_b = box_lo, box_hi
    var_ids = np.flatnonzero(is_var)
    col_of = np.full(n, -1)
    col_of[var_ids] = np.arange(var_ids.size)
    a_eq, b_eq, a_ub, b_ub = _constraints(structure, is_var, known, additive)
    bounds = [(float(lo_b[i]), None if np.isinf(hi_b[i]) else float(hi_b[i])) for i in var_ids]
    if seen is not None and not (rounding_base and rounding_base > 1):
        seen_lo, seen_hi = seen[0][var_ids], seen[1][var_ids]
    else:
        seen_lo = np.full(var_ids.size, np.inf)
        seen_hi = np.full(var_ids.size, -np.inf)
    out_lo = np.empty(targets.size)
    out_hi = np.empty(targets.size)
    kw: dict[str, object] = {"bounds": bounds, "method": "highs"}
    # Small systems are passed dense: scipy's per-call sparse validation costs more than HiGHS.
    dense = (a_eq.shape[0] + a_ub.shape[0]) * var_ids.size <= _DENSE_MAX
    if a_eq.shape[0]:
        kw |= {"A_eq": a_eq.toarray() if dense else a_eq, "b_eq": b_eq}
    if a_ub.shape[0]:
        kw |= {"A_ub": a_ub.toarray() if dense else a_ub, "b_ub": b_ub}

    def solve(j: int, sign: float) -> float:
        c = np.zeros(var_ids.size)
        c[j] = sign
        res = linprog(c, **kw)  # type: ignore[arg-type]
        if res.status == 3:
            return -sign * np.inf
        if res.status != 0:
            raise ValueError(f"attacker LP failed ({res.message}); inconsistent publication?")
        np.minimum(seen_lo, res.x, out=seen_lo)
        np.maximum(seen_hi, res.x, out=seen_hi)
        return float(res.x[j])

    tcols = col_of[targets]
    lo_box = np.array([b[0] for b in bounds])[tcols]
    hi_box = np.array([np.inf if b[1] is None else b[1] for b in bounds])[tcols]
    req = required if required is not None else np.full(targets.size, np.inf)

    def open_cells(side: str) -> np.ndarray:
        inner = np.floor(seen_hi[tcols] + _EPS) - np.ceil(seen_lo[tcols] - _EPS) + 1
        todo = ~(inner >= req)
        if side == "lo":
            return tcols[todo & (seen_lo[tcols] > lo_box + _EPS)]
        return tcols[todo & (seen_hi[tcols] < hi_box - _EPS)]

    # Batch phase: one LP pushes many cells to their bounds at once (min / max of the sum of
    # the cells not yet resolved), so most cells never need an LP of their own.
    for side, sign in (("lo", 1.0), ("hi", -1.0)):
        for _ in range(_BATCH_ROUNDS):
            cols = open_cells(side)
            if cols.size < 2:
                break
            c = np.zeros(var_ids.size)
            c[cols] = sign
            before = cols.size
            res = linprog(c, **kw)  # type: ignore[arg-type]
            if res.status != 0:
                break
            np.minimum(seen_lo, res.x, out=seen_lo)
            np.maximum(seen_hi, res.x, out=seen_hi)
            if open_cells(side).size > before - 2:
                break

    for k, t in enumerate(targets.tolist()):
        j = int(col_of[t])
        blo, bhi = bounds[j]
        bhi_f = np.inf if bhi is None else bhi
        if required is not None and np.isfinite(seen_lo[j]):
            inner = np.floor(seen_hi[j] + _EPS) - np.ceil(seen_lo[j] - _EPS) + 1
            if inner >= required[k]:
                out_lo[k], out_hi[k] = seen_lo[j], seen_hi[j]
                continue
        lo = blo if seen_lo[j] <= blo + _EPS else solve(j, 1.0)
        hi = bhi_f if seen_hi[j] >= bhi_f - _EPS else solve(j, -1.0)
        out_lo[k], out_hi[k] = lo, hi
    if seen is not None and not (rounding_base and rounding_base > 1):
        seen[0][var_ids], seen[1][var_ids] = seen_lo, seen_hi
    out_lo = np.ceil(out_lo - _EPS)
    out_hi = np.where(np.isinf(out_hi), np.inf, np.floor(out_hi + _EPS))
    return out_lo, out_hi


def attacker_boxes(
    primary: np.ndarray, threshold: int, suppress_zeros: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Prior bounds the attacker has for each cell if it is suppressed (see module docstring)."""
    lb = 0.0 if suppress_zeros else 1.0
    box_lo = np.full(primary.size, lb)
    box_hi = np.where(primary, float(threshold - 1), np.inf)
    return box_lo, box_hi


def attack(
    cells: pl.DataFrame,
    dims: list[str],
    count: str,
    threshold: int = 10,
    additive: bool = True,
    margins: dict[Key, pl.DataFrame] | None = None,
    *,
    suppress_zeros: bool = True,
    rounding_base: int | None = None,
) -> pl.DataFrame:
    """Attack a publication: for every suppressed (null) cell, its feasible interval.

    ``cells``/``margins`` are what was published (``count`` null where suppressed). A
    ``suppression`` column, when present, tells the attacker which cells are primary (worst
    case); without it every suppressed cell is only known to be ``>= lb``. Returns one row per
    suppressed cell: ``table`` (``"cells"`` or the margin label), the dims (null where the margin
    aggregates), ``suppression``, ``lo``, ``hi`` (inf when unbounded) and ``width = hi - lo + 1``.
    """
    margins_n = normalize_margins(dims, margins)
    structure = build_structure(cells, dims, count, margins_n, validate=False)
    labels = _labels(cells, margins_n, structure)
    primary = (labels == "primary").to_numpy()
    known = structure.values()
    box_lo, box_hi = attacker_boxes(primary, threshold, suppress_zeros)
    targets = np.flatnonzero(np.isnan(known))
    lo, hi = solve_intervals(
        structure, known, box_lo, box_hi, targets, additive=additive, rounding_base=rounding_base
    )
    return report_frame(structure, targets, lo, hi, labels)


def _labels(
    cells: pl.DataFrame, margins: dict[Key, pl.DataFrame], structure: Structure
) -> pl.Series:
    frames = [cells, *margins.values()]
    per_part = [
        f["suppression"].cast(pl.Utf8)
        if "suppression" in f.columns
        else pl.Series("suppression", [None] * f.height, pl.Utf8)
        for f in frames
    ]
    # structure rows are sorted per part; map back through (part, row)
    parts = structure.frame[PART].to_numpy()
    rows = structure.frame[ROW].to_numpy()
    out = [per_part[p][int(r)] for p, r in zip(parts, rows, strict=True)]
    return pl.Series("suppression", out, pl.Utf8)


def report_frame(
    structure: Structure,
    targets: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    labels: pl.Series,
) -> pl.DataFrame:
    """One row per attacked cell, in id order (interior first, dims sort order)."""
    labels_by_part = [key_label(k) for k in structure.keys]
    f = structure.frame[targets.tolist()]
    table = pl.Series("table", [labels_by_part[p] if p else "cells" for p in f[PART].to_list()])
    return pl.DataFrame([table]).hstack(
        [
            *f.select(structure.dims).get_columns(),
            f[ID].alias("cell_id"),
            labels.gather(targets.tolist()).alias("suppression"),
            pl.Series("lo", lo, pl.Float64),
            pl.Series("hi", hi, pl.Float64),
            pl.Series("width", hi - lo + 1, pl.Float64),
        ]
    )
