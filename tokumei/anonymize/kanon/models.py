"""Privacy models, evaluated on a node's frequency table (never on rows).

- :class:`KAnonymity`: every equivalence class holds at least ``k`` distinct *persons* (with no
  person column every record is a person, which is ARX's k).
- :class:`DistinctLDiversity`: every class holds at least ``l`` distinct values of a sensitive
  column.
- :class:`SuppressionLimit`: the records of every class violating the models above are suppressed
  (every QI ``*``); the transformation is acceptable only if the persons so touched — persons with
  at least one suppressed record — are at most ``floor(share × all persons)``.

All three are monotone under full-domain generalization: a class of a coarser node is a union of
classes of a finer node, so if it violates k (or l), every class it is made of did too. The set of
suppressed records, and so of suppressed persons, can therefore only shrink as a node gets coarser
(ARX's "practical monotonicity" with a suppression limit). The search prunes with that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tokumei.anonymize.kanon.table import (
    NodeStats,
    Table,
    class_persons,
    distinct_per_class,
    suppressed_persons,
)


@dataclass(frozen=True)
class KAnonymity:
    k: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")

    def violations(self, persons: np.ndarray) -> np.ndarray:
        return persons < self.k


@dataclass(frozen=True)
class DistinctLDiversity:
    column: str
    l: int  # noqa: E741 - the model's own name
    index: int  # position of the column among the sensitive columns

    def __post_init__(self) -> None:
        if self.l < 1:
            raise ValueError(f"l for {self.column!r} must be at least 1, got {self.l}")


@dataclass(frozen=True)
class SuppressionLimit:
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"max_suppression is a share in [0, 1], got {self.share}")

    def max_persons(self, total_persons: int) -> int:
        # floor, with a little slack so that 0.05 × 30162 = 1508.1 does not become 1508.0999…
        return int(math.floor(self.share * total_persons + 1e-9))


@dataclass
class Models:
    """The models of one run and what they need to know about the sensitive columns."""

    k: KAnonymity
    ldiv: list[DistinctLDiversity]
    limit: SuppressionLimit
    total_persons: int
    n_sid: int  # distinct combinations of the sensitive columns' values (1 without any)
    sid_maps: list[np.ndarray]  # per sensitive column: sid → value code
    sid_sizes: list[int]  # per sensitive column: number of values

    @property
    def max_suppressed(self) -> int:
        return self.limit.max_persons(self.total_persons)

    def evaluate(self, t: Table, shares: np.ndarray) -> NodeStats:
        """Violating classes, suppressed persons and the loss suppression adds, for table ``t``.

        ``shares[c]`` is the domain share of the value with (offset) code ``c`` at ``t``'s levels.
        """
        persons = class_persons(t)
        fail = self.k.violations(persons)
        for m in self.ldiv:
            distinct = distinct_per_class(t, self.sid_maps[m.index], self.sid_sizes[m.index])
            fail |= distinct < m.l
        idx = np.flatnonzero(fail)
        if len(idx) == 0:
            return NodeStats(persons, fail, 0, 0, 0.0)
        rows_f = t.rows[idx]
        supp_p = int(rows_f.sum()) if t.plain else suppressed_persons(t, fail)
        if supp_p > self.max_suppressed:
            return NodeStats(persons, fail, supp_p, int(rows_f.sum()), float("nan"))
        kept_share = shares[t.codes[idx]].sum(axis=1)
        return NodeStats(
            persons, fail, supp_p, int(rows_f.sum()), float(rows_f @ (len(t.offsets) - kept_share))
        )
