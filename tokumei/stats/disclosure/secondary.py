"""Complementary (secondary) suppression: hide enough further cells that no suppressed one
can be recovered from the margins and totals published in the same table.

Heuristic (hypercube-like "lines" method, suitable for 1-3 dimensional tables with margins):

1. A *line* is a margin cell plus the cells it aggregates (see ``_structure``). A line with
   exactly one suppressed cell gives that cell back by subtraction (additive tables). While such
   a line exists, suppress the cheapest unsuppressed cell of that line: cost = its value divided
   by (1 + the number of OTHER single-suppression lines it also sits in), so one complement that
   closes a row and a column at once beats two cheaper ones; ties by id (dims sort order).
2. Verify with the LP attacker (``attacker.solve_intervals``). For every suppressed cell whose
   interval is narrower than the protection range, suppress the cheapest further cell in one of
   its lines (cost = value x (1 + number of lines it would newly open, i.e. that have no
   suppressed cell yet)) -- or, when its lines hold no eligible cell, in the lines of the
   suppressed cells connected to it (``extra_complement``) --, rerun step 1, and re-check only the cells that failed plus the new
   ones: suppressing a cell never narrows any other interval (the feasible set only grows), so
   cells that passed keep passing. The loop is bounded (``max_rounds``).

What this guarantees: when ``stats["attacker_ok"]`` is true, the LP attacker of ``attacker``
(every published value and relation, primary cells known to be in ``[lb, threshold-1]``) cannot
narrow any suppressed cell below its protection range. What it does NOT give: cost-optimality.
Finding the cheapest safe pattern is NP-hard (Kelly, Golden & Assad 1992); tau-ARGUS solves it as
a mixed-integer program (Fischetti & Salazar). This greedy pattern may suppress more than needed,
is not protected against attackers who combine several tables (pass the other tables' pattern via
``force_suppress``), and the LP interval is a relaxation of the integer one (see ``attacker``).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from tokumei.stats.disclosure._structure import Structure


def line_counts(structure: Structure, suppressed: np.ndarray) -> np.ndarray:
    """Number of suppressed cells (members + total) in each line."""
    return np.array(
        [int(suppressed[ln.members].sum() + suppressed[ln.total]) for ln in structure.lines],
        dtype=np.int64,
    )


def _line_cells(structure: Structure, li: int) -> np.ndarray:
    ln = structure.lines[li]
    return np.concatenate([ln.members, [ln.total]])


def _suppress(
    cell: int, suppressed: np.ndarray, counts: np.ndarray, cell_lines: list[list[int]]
) -> None:
    suppressed[cell] = True
    for li in cell_lines[cell]:
        counts[li] += 1


def close_single_lines(
    structure: Structure,
    values: np.ndarray,
    suppressed: np.ndarray,
    eligible: np.ndarray,
    cell_lines: list[list[int]],
    counts: np.ndarray,
) -> list[int]:
    """Step 1: suppress complements until no line has exactly one suppressed cell.

    Mutates ``suppressed`` and ``counts``; returns the ids added, in order. A line whose every
    other cell is ineligible (e.g. published zeros) cannot be closed and is left to the LP check.
    """
    added: list[int] = []
    stuck: set[int] = set()
    while True:
        singles = np.flatnonzero(counts == 1)
        todo = [li for li in singles.tolist() if li not in stuck]
        if not todo:
            return added
        li = todo[0]
        cand = _line_cells(structure, li)
        cand = cand[eligible[cand] & ~suppressed[cand]]
        if cand.size == 0:
            stuck.add(li)
            continue
        best: tuple[float, int] | None = None
        for c in cand.tolist():
            also = sum(1 for lj in cell_lines[c] if lj != li and counts[lj] == 1)
            key = (values[c] / (1 + also), c)
            if best is None or key < best:
                best = key
        assert best is not None
        _suppress(best[1], suppressed, counts, cell_lines)
        added.append(best[1])


def extra_complement(
    structure: Structure,
    cell: int,
    values: np.ndarray,
    suppressed: np.ndarray,
    eligible: np.ndarray,
    cell_lines: list[list[int]],
    counts: np.ndarray,
    incidence: sparse.csr_matrix | None = None,
) -> int | None:
    """Step 2: the cheapest further cell near ``cell`` (or None if nothing can help).

    "Near" is searched outward: first the cells sharing a line with ``cell``; if all of those
    are suppressed or ineligible, the cells of the lines one suppressed cell further, and so on
    through the suppressed cells connected to ``cell`` by lines. The relation that pins ``cell``
    down need not be one line: it can be a combination of lines (e.g. margins a×b and a×c
    without an ``a`` margin imply ``sum_b ab = sum_c ac``), so every published value it uses
    sits in a line of that connected set. When no eligible cell is left there, no further
    suppression anywhere changes the attacker's interval for ``cell`` (its LP decouples from
    the rest), and None is returned. ``incidence`` (cells x lines, from ``incidence_matrix``)
    vectorizes the "lines it would newly open" count; without it, it is built on the fly.
    """
    inc = incidence if incidence is not None else incidence_matrix(structure)
    seen_lines: set[int] = set()
    seen_cells = {cell}
    frontier = [cell]
    cand = np.array([], dtype=np.int64)
    while frontier:
        lines = sorted({li for c in frontier for li in cell_lines[c]} - seen_lines)
        if not lines:
            return None
        seen_lines.update(lines)
        layer = np.unique(np.concatenate([_line_cells(structure, li) for li in lines]))
        cand = layer[eligible[layer] & ~suppressed[layer]]
        if cand.size:
            break
        frontier = [c for c in layer[suppressed[layer]].tolist() if c not in seen_cells]
        seen_cells.update(frontier)
    if cand.size == 0:
        return None
    opens = inc[cand] @ (counts == 0).astype(np.float64)
    cost = values[cand] * (1 + opens)
    best = int(cand[np.lexsort((cand, cost))[0]])
    _suppress(best, suppressed, counts, cell_lines)
    return best


def incidence_matrix(structure: Structure) -> sparse.csr_matrix:
    """Cells x lines 0/1 matrix (member or total)."""
    a = structure.line_matrix(interior_only=False)
    a.data = np.abs(a.data)
    return a.T.tocsr()
