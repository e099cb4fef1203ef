"""``protect_table``: primary + complementary suppression, LP-verified, optionally rounded.

Consistency across releases: the same persons are counted in several releases of one run (daily
and weekly tables, a table and its re-cut by another dimension). A cell suppressed in one
release but published in another with the same margins is recovered by differencing the two.
The rule: protect the releases in a fixed order and pass each one's suppression pattern to the
next as ``force_suppress`` (``ProtectionResult.pattern()`` returns it in the expected form: the
dims columns, null where a margin aggregates). Forced cells are suppressed before the heuristic
runs, so the later release's complements are chosen around them and the LP check covers them
too. This gives a consistent pattern for tables with the same structure; it does not make
*linked* tables (sharing only some cells) jointly safe — that needs both in one structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tokumei.stats.disclosure._structure import (
    ID,
    PART,
    ROW,
    Key,
    Structure,
    build_structure,
    check_additive,
    key_label,
    normalize_margins,
)
from tokumei.stats.disclosure.attacker import attacker_boxes, report_frame, solve_intervals
from tokumei.stats.disclosure.primary import SuppressionKind, primary_mask
from tokumei.stats.disclosure.rounding import round_expr
from tokumei.stats.disclosure.secondary import (
    close_single_lines,
    extra_complement,
    incidence_matrix,
    line_counts,
)


class UnsafeTableError(RuntimeError):
    """The attacker could still narrow some suppressed cell below its protection range."""


@dataclass(frozen=True)
class ProtectionResult:
    """What to publish, and the evidence that it is safe.

    ``cells`` and each ``margins[key]`` keep the caller's rows and order; ``count`` is null where
    suppressed (and rounded elsewhere if asked); ``suppressed`` (bool) and ``suppression``
    (Enum "primary" | "secondary", null when published) are audit columns — drop them before
    publishing if the labels themselves should not be known. ``attack`` is the LP attacker's
    report (one row per suppressed cell, see ``attacker.attack``) with ``required``/``ok``.
    """

    cells: pl.DataFrame
    margins: dict[Key, pl.DataFrame]
    stats: dict[str, object]
    attack: pl.DataFrame
    dims: tuple[str, ...] = field(default=())

    def raise_if_unsafe(self) -> None:
        """Fail closed: raise when the attacker pins any suppressed cell down."""
        if not self.stats["attacker_ok"]:
            n = self.attack.filter(~pl.col("ok")).height
            raise UnsafeTableError(f"{n} suppressed cell(s) narrower than the protection range")

    def pattern(self) -> pl.DataFrame:
        """Suppressed cells (interior and margins) as dims rows, null = aggregated dim.

        Pass it as ``force_suppress`` when protecting a related release.
        """
        frames = [self.cells.filter(pl.col("suppressed")).select(self.dims)]
        for key, m in self.margins.items():
            frames.append(
                m.filter(pl.col("suppressed")).select(
                    [
                        pl.col(d) if d in key else pl.lit(None, self.cells.schema[d]).alias(d)
                        for d in self.dims
                    ]
                )
            )
        return pl.concat(frames)


def _required(
    values: np.ndarray,
    primary: np.ndarray,
    protection: float | int,
    threshold: int,
    lb: float,
) -> np.ndarray:
    """Candidate values the attacker must be left with, per cell.

    int: that many; float in (0, 1]: that share of the cell's value (at least 2, i.e. never
    pinned). Capped at what the rule itself reveals for a primary cell (``threshold - lb``
    values in ``[lb, threshold-1]``): the default ``protection=threshold`` thus means the attacker
    learns nothing about a small cell beyond "it is small".
    """
    if isinstance(protection, bool) or protection <= 0:
        raise ValueError("protection must be a positive int or a share in (0, 1]")
    if isinstance(protection, int):
        req = np.full(values.size, float(protection))
    elif protection <= 1:
        req = np.maximum(np.ceil(protection * values), 2.0)
    else:
        raise ValueError("a float protection is a share of the cell value and must be <= 1")
    return np.where(primary, np.minimum(req, threshold - lb), req)


def _structural_floor(
    structure: Structure,
    values: np.ndarray,
    suppressed: np.ndarray,
    eligible: np.ndarray,
    box_lo: np.ndarray,
    box_hi: np.ndarray,
    targets: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    required: np.ndarray,
    additive: bool,
) -> int:
    """Lower ``required`` to what no suppression pattern can beat; return how many were lowered.

    If the cells still too narrow stay exactly as narrow with EVERY eligible cell suppressed, the
    remaining knowledge comes from the structure itself (e.g. with zeros published, a total of
    two suppressed cells is known to be >= 2), not from the pattern; demanding more would block
    tables that publish nothing. Only the failing cells are re-attacked, so this costs little.
    """
    fail = (hi - lo + 1) < required[targets]
    if not fail.any():
        return 0
    everything = suppressed | eligible
    known = np.where(everything, np.nan, values)
    ids = targets[fail]
    flo, fhi = solve_intervals(structure, known, box_lo, box_hi, ids, additive=additive)
    floor = fhi - flo + 1
    capped = (hi[fail] - lo[fail] + 1) >= floor
    required[ids[capped]] = np.minimum(required[ids[capped]], floor[capped])
    return int(capped.sum())


def _forced_ids(structure: Structure, force: pl.DataFrame | None) -> tuple[np.ndarray, int]:
    if force is None or force.height == 0:
        return np.zeros(structure.n, dtype=bool), 0
    dims = list(structure.dims)
    missing = [d for d in dims if d not in force.columns]
    if missing:
        raise ValueError(f"force_suppress: missing dims columns {missing}")
    schema = structure.frame.schema
    f = force.select([pl.col(d).cast(schema[d]) for d in dims]).unique()
    hit = f.join(structure.frame.select(*dims, ID), on=dims, how="left", nulls_equal=True)
    ids = hit[ID].drop_nulls().to_numpy()
    mask = np.zeros(structure.n, dtype=bool)
    mask[ids] = True
    return mask, int(hit[ID].null_count())


def protect_table(
    cells: pl.DataFrame,
    dims: list[str],
    count: str,
    margins: dict[Key, pl.DataFrame] | None = None,
    threshold: int = 10,
    additive: bool = True,
    protection: float | int | None = None,
    rounding_base: int | None = None,
    *,
    force_suppress: pl.DataFrame | None = None,
    suppress_zeros: bool = True,
    max_rounds: int = 100,
) -> ProtectionResult:
    """Suppress small cells and enough complements that the LP attacker cannot recover them.

    ``margins`` maps a key (a proper subset of ``dims``; ``()`` = grand total) to a frame with
    those dims and ``count``, computed by the caller as distinct persons. ``additive`` declares
    that every margin equals the sum of its cells (checked; raise if not); with
    ``additive=False`` the attacker uses ``margin <= sum(cells)`` and ``cell <= margin``.
    ``protection`` (default ``threshold``): see ``_required``. ``rounding_base`` rounds the
    published values after suppression. ``force_suppress``: cells another release suppressed.
    Deterministic: the same input gives the same pattern (ties by dims sort order).
    """
    if threshold < 1:
        raise ValueError("threshold must be >= 1")
    margins_n = normalize_margins(dims, margins)
    structure = build_structure(cells, dims, count, margins_n)
    if additive:
        check_additive(structure)
    values = structure.values()
    lb = 0.0 if suppress_zeros else 1.0
    primary = primary_mask(values, threshold, suppress_zeros)
    forced, unmatched = _forced_ids(structure, force_suppress)
    suppressed = primary | forced
    eligible = ~suppressed & ((values > 0) | suppress_zeros)
    required = _required(
        values, primary, threshold if protection is None else protection, threshold, lb
    )
    box_lo, box_hi = attacker_boxes(primary, threshold, suppress_zeros)

    cell_lines = structure.cell_lines()
    incidence = incidence_matrix(structure)
    counts = line_counts(structure, suppressed)
    close_single_lines(structure, values, suppressed, eligible, cell_lines, counts)

    check = np.flatnonzero(suppressed)
    # The true values are a feasible point of every attacker system: seed the known range.
    seen = (values.copy(), values.copy())
    rounds = 0
    failing = np.array([], dtype=np.int64)
    while check.size and rounds < max_rounds:
        rounds += 1
        known = np.where(suppressed, np.nan, values)
        lo, hi = solve_intervals(
            structure,
            known,
            box_lo,
            box_hi,
            check,
            additive=additive,
            required=required[check],
            seen=seen,
        )
        failing = check[(hi - lo + 1) < required[check]]
        if failing.size == 0:
            break
        added: list[int] = []
        for c in failing.tolist():
            extra = extra_complement(
                structure, c, values, suppressed, eligible, cell_lines, counts, incidence
            )
            if extra is not None:
                added.append(extra)
        if not added:
            break  # nothing left to suppress around the failing cells
        added += close_single_lines(structure, values, suppressed, eligible, cell_lines, counts)
        check = np.union1d(failing, np.asarray(added, dtype=np.int64))

    # Final, exact report over every suppressed cell.
    targets = np.flatnonzero(suppressed)
    known = np.where(suppressed, np.nan, values)
    lo, hi = solve_intervals(
        structure, known, box_lo, box_hi, targets, additive=additive, seen=seen
    )
    structural = _structural_floor(
        structure,
        values,
        suppressed,
        eligible,
        box_lo,
        box_hi,
        targets,
        lo,
        hi,
        required,
        additive,
    )
    kind = np.where(primary, "primary", np.where(suppressed, "secondary", None))
    labels = pl.Series("suppression", kind.tolist(), pl.Utf8)
    report = (
        report_frame(structure, targets, lo, hi, labels)
        .with_columns(
            pl.Series("required", required[targets], pl.Float64),
        )
        .with_columns((pl.col("width") >= pl.col("required")).alias("ok"))
    )

    out_cells, out_margins = _outputs(
        structure, cells, margins_n, count, suppressed, kind, rounding_base
    )
    part = structure.part
    widths = report["width"]
    stats: dict[str, object] = {
        "cells": int((part == 0).sum()),
        "margin_cells": int((part > 0).sum()),
        "primary": int(primary.sum()),
        "secondary": int((suppressed & ~primary).sum()),
        "forced": int(forced.sum()),
        "forced_unmatched": unmatched,
        "cells_suppressed": int(suppressed[part == 0].sum()),
        "margins_suppressed": int(suppressed[part > 0].sum()),
        "suppressed_value_share": float(
            values[(part == 0) & suppressed].sum() / max(values[part == 0].sum(), 1.0)
        ),
        "attacker_min_width": float(widths.min()) if report.height else math.inf,
        "attacker_ok": bool(report["ok"].all()) if report.height else True,
        "rounds": rounds,
        "capped_by_structure": structural,
        "threshold": threshold,
        "additive": additive,
        "rounding_base": rounding_base,
    }
    return ProtectionResult(out_cells, out_margins, stats, report, tuple(dims))


def _outputs(
    structure: Structure,
    cells: pl.DataFrame,
    margins: dict[Key, pl.DataFrame],
    count: str,
    suppressed: np.ndarray,
    kind: np.ndarray,
    rounding_base: int | None,
) -> tuple[pl.DataFrame, dict[Key, pl.DataFrame]]:
    """Write flags back onto the caller's frames, in the caller's row order."""
    flags = structure.frame.select(PART, ROW).with_columns(
        pl.Series("suppressed", suppressed),
        pl.Series("suppression", kind.tolist(), pl.Utf8).cast(SuppressionKind),
    )
    frames = [cells, *margins.values()]
    out: list[pl.DataFrame] = []
    for p, frame in enumerate(frames):
        f = flags.filter(pl.col(PART) == p).sort(ROW).drop(PART, ROW)
        value = pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(count))
        if rounding_base:
            value = round_expr(value, rounding_base)
        out.append(
            pl.concat(
                [frame.drop("suppressed", "suppression", strict=False), f], how="horizontal"
            ).with_columns(value.alias(count))
        )
    return out[0], dict(zip(margins.keys(), out[1:], strict=True))


__all__ = ["ProtectionResult", "UnsafeTableError", "key_label", "protect_table"]
