"""The published structure of one table: every published cell, and the lines that tie them.

Primary suppression, the complementary-suppression heuristic and the LP attacker all reason about
the same object, so it is built once here. A *published cell* is either an interior cell (one row
of ``cells``) or a margin cell (one row of a margin frame). All of them are stacked into one frame
with a global integer id; dimensions that a margin aggregates over are null in that frame, which
is also how callers name margin cells (e.g. in ``force_suppress``).

A *line* is one margin cell together with the cells one level finer that it aggregates: for every
margin key ``K`` and every published key ``K2`` that strictly contains ``K`` (the interior key
included), each margin cell of ``K`` forms a line with the cells of ``K2`` that project onto it.
For an additive table each line is an equation ``sum(members) = total``; otherwise it gives the
inequalities ``total <= sum(members)`` and ``member <= total``. Lines between two margins are
implied by the interior lines in the additive case, but the suppression heuristic still needs them
to see e.g. a prefecture total that can be recovered as grand total minus the other prefectures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse

Key = tuple[str, ...]

ID = "_id"
PART = "_part"
ROW = "_row"
VALUE = "_value"


@dataclass(frozen=True)
class Line:
    """One margin cell (``total``) and the ids of the finer cells it aggregates (``members``).

    ``interior`` is true when the members are interior cells: in the additive case those lines
    alone span every linear relation of the table, so the attacker only needs them.
    """

    total: int
    members: np.ndarray
    interior: bool


@dataclass(frozen=True)
class Structure:
    """Stacked published cells and their lines.

    ``frame`` has one row per published cell, ordered by ``_id`` (= position), with columns
    ``_id``, ``_part`` (0 = interior, i = i-th margin key), ``_row`` (row position in the caller's
    frame, to restore its order), the dims (null where aggregated) and ``_value``. Ids are given
    in (part, dims sort order), so "lower id" is the documented deterministic tie-break.
    """

    dims: tuple[str, ...]
    keys: tuple[Key, ...]
    frame: pl.DataFrame
    lines: tuple[Line, ...]

    @property
    def n(self) -> int:
        """Number of published cells (interior + margins)."""
        return self.frame.height

    @property
    def part(self) -> np.ndarray:
        """Part index of each cell (0 = interior)."""
        return self.frame[PART].to_numpy()

    def values(self) -> np.ndarray:
        """Cell values as float64, NaN where the value is not known (suppressed/null)."""
        return self.frame[VALUE].cast(pl.Float64).fill_null(float("nan")).to_numpy()

    def line_matrix(self, interior_only: bool) -> sparse.csr_matrix:
        """Rows = lines, +1 for members, -1 for the total: ``row @ x == 0`` when additive."""
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        r = 0
        for line in self.lines:
            if interior_only and not line.interior:
                continue
            m = line.members
            rows.append(np.full(m.size + 1, r))
            cols.append(np.concatenate([m, [line.total]]))
            vals.append(np.concatenate([np.ones(m.size), [-1.0]]))
            r += 1
        if r == 0:
            return sparse.csr_matrix((0, self.n))
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, self.n)
        )

    def cell_lines(self) -> list[list[int]]:
        """For each cell id, the indices of the lines it belongs to (as member or total)."""
        out: list[list[int]] = [[] for _ in range(self.n)]
        for li, line in enumerate(self.lines):
            out[line.total].append(li)
            for m in line.members.tolist():
                out[m].append(li)
        return out


def key_label(key: Key) -> str:
    """Human label of a margin key: ``"prefecture"``, ``"age_band×gender"``, ``"total"``."""
    return "×".join(key) if key else "total"


def normalize_margins(
    dims: list[str], margins: dict[Key, pl.DataFrame] | None
) -> dict[Key, pl.DataFrame]:
    """Validate margin keys: each a proper subset of ``dims``, no duplicates as sets."""
    out: dict[Key, pl.DataFrame] = {}
    seen: set[frozenset[str]] = set()
    for key, frame in (margins or {}).items():
        key = tuple(key)
        ks = frozenset(key)
        if not ks < frozenset(dims) or len(ks) != len(key):
            raise ValueError(f"margin key {key!r} must be a proper subset of dims {dims!r}")
        if ks in seen:
            raise ValueError(f"margin key {key!r} given twice")
        seen.add(ks)
        out[key] = frame
    return out


def _check_frame(frame: pl.DataFrame, key: Key, count: str, what: str) -> None:
    missing = [c for c in (*key, count) if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}")
    if frame.select(pl.any_horizontal(pl.col(list(key)).is_null()).any()).item() if key else False:
        raise ValueError(f"{what}: null in dimension columns (null is reserved for 'all')")
    c = frame[count]
    if not c.dtype.is_integer():
        raise ValueError(f"{what}: count column {count!r} must be an integer column")
    if c.null_count() or (frame.height and c.min() < 0):  # type: ignore[operator]
        raise ValueError(f"{what}: count column {count!r} must be non-negative and non-null")
    if key and frame.select(pl.struct(list(key)).is_duplicated().any()).item():
        raise ValueError(f"{what}: duplicate rows for the same {key!r}")


def build_structure(
    cells: pl.DataFrame,
    dims: list[str],
    count: str,
    margins: dict[Key, pl.DataFrame],
    *,
    value_col: str | None = None,
    validate: bool = True,
) -> Structure:
    """Stack interior and margin cells and derive the lines.

    ``value_col`` names the column holding the (possibly null) value; defaults to ``count``.
    ``validate`` is off when reading a publication, where suppressed values are null.
    """
    value_col = value_col or count
    keys: tuple[Key, ...] = (tuple(dims), *margins.keys())
    schema = {d: cells.schema[d] for d in dims}
    parts: list[pl.DataFrame] = []
    for p, key in enumerate(keys):
        frame = cells if p == 0 else margins[key]
        what = "cells" if p == 0 else f"margin {key_label(key)}"
        if validate:
            _check_frame(frame, key, value_col, what)
        part = (
            frame.with_row_index(ROW)
            .select(
                pl.lit(p, pl.Int32).alias(PART),
                pl.col(ROW),
                *[
                    pl.col(d).cast(schema[d]) if d in key else pl.lit(None, schema[d]).alias(d)
                    for d in dims
                ],
                pl.col(value_col).cast(pl.Int64).alias(VALUE),
            )
            .sort(list(key) or ROW, maintain_order=True)
        )
        parts.append(part)
    stacked = pl.concat(parts).with_row_index(ID).with_columns(pl.col(ID).cast(pl.Int64))

    lines: list[Line] = []
    for p, key in enumerate(keys):
        if p == 0:
            continue
        tot = stacked.filter(pl.col(PART) == p).select(*key, pl.col(ID).alias("_tid"))
        for q, key2 in enumerate(keys):
            if not frozenset(key) < frozenset(key2):
                continue
            fin = stacked.filter(pl.col(PART) == q).select(*key, ID)
            joined = tot.join(fin, on=list(key), how="left") if key else tot.join(fin, how="cross")
            grouped = (
                joined.group_by("_tid", maintain_order=True)
                .agg(pl.col(ID).drop_nulls().sort())
                .sort("_tid")
            )
            for tid, members in grouped.iter_rows():
                lines.append(Line(int(tid), np.asarray(members, dtype=np.int64), q == 0))
    return Structure(tuple(dims), keys, stacked, tuple(lines))


def check_additive(structure: Structure) -> None:
    """Raise when a table declared additive has a margin that is not the sum of its cells."""
    values = structure.values()
    a = structure.line_matrix(interior_only=True)
    if a.shape[0] and np.any(np.abs(a @ values) > 0.5):
        raise ValueError(
            "table declared additive but some margin differs from the sum of its cells; "
            "pass additive=False for distinct-person margins"
        )


def additive_margins(cells: pl.DataFrame, count: str, keys: list[Key]) -> dict[Key, pl.DataFrame]:
    """Margins as plain sums of the cells.

    Only right when each person is in exactly one cell; distinct-person margins must be computed
    from the person-level data by the caller (and the table passed with ``additive=False``).
    """
    out: dict[Key, pl.DataFrame] = {}
    for key in keys:
        key = tuple(key)
        if key:
            out[key] = cells.group_by(list(key)).agg(pl.col(count).sum()).sort(list(key))
        else:
            out[key] = cells.select(pl.col(count).sum())
    return out
