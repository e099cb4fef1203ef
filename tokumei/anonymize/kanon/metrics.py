"""Utility and risk metrics of a transformation, from its frequency table.

Granularity loss is ARX's "Loss" quality model as reported in ARX's statistics (it reproduces the
Adult reference values 0.7141 and 0.3000 of shared/data/adult/README.md): per record and QI the
generalized value's *domain share* (leaves of the hierarchy under the value / all leaves; a
suppressed value counts 1), averaged over records and QIs, then normalized from
``[mean_q 1/|domain_q|, 1]`` to ``[0, 1]``. Because the normalization is affine, minimizing the
loss is minimizing the plain sum of shares, which is what the search compares.

Generalization alone gives a lower bound on the loss of a node (suppression can only replace a
share by 1), and it depends on the node only: ``Σ_q G_q[level_q]`` with ``G_q[l]`` the sum over
records of QI ``q``'s share at level ``l``. The search uses it as its ordering and its bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokumei.anonymize.kanon.encode import EncodedQI
from tokumei.anonymize.kanon.table import NodeStats, Table


@dataclass(frozen=True)
class LossScale:
    """Maps a sum of shares over all records and QIs to ARX's normalized granularity loss."""

    n_rows: int
    n_qis: int
    floor: float  # mean over QIs of 1 / |domain|

    @classmethod
    def of(cls, qis: list[EncodedQI], n_rows: int) -> LossScale:
        return cls(n_rows, len(qis), float(np.mean([1.0 / q.domain_size for q in qis])))

    def normalize(self, share_total: float) -> float:
        if self.n_rows == 0 or self.floor >= 1.0:
            return 0.0
        mean = share_total / (self.n_rows * self.n_qis)
        return max(0.0, (mean - self.floor) / (1.0 - self.floor))


def level_share_sums(qis: list[EncodedQI], base: Table) -> list[np.ndarray]:
    """``G[q][l]``: Σ over records of QI ``q``'s domain share at level ``l`` (no suppression),
    from the level-0 table (records per level-0 value), not from the rows."""
    out = []
    codes = base.level_codes
    rows = base.rows.astype(np.float64)
    for j, qi in enumerate(qis):
        counts = np.bincount(codes[:, j], weights=rows, minlength=qi.sizes[0])
        out.append(
            np.array([float(counts @ qi.share[lvl][qi.step(0, lvl)]) for lvl in range(qi.levels)])
        )
    return out


def summarize(t: Table, st: NodeStats, loss: float) -> dict:
    """The metrics of a chosen transformation (sizes in persons, loss over records)."""
    keep = ~st.fail
    persons = st.persons[keep]
    rows = t.rows[keep]
    n_rows = int(t.rows.sum())
    sizes, counts = np.unique(persons, return_counts=True)
    return {
        "suppressed": st.suppressed_persons,
        "suppressed_records": st.suppressed_rows,
        "classes": int(keep.sum()),
        "min_class_size": int(persons.min()) if len(persons) else 0,
        "granularity_loss": loss,
        "discernibility": int((rows * rows).sum()) + st.suppressed_rows * n_rows,
        "max_risk": float(1.0 / persons.min()) if len(persons) else 0.0,
        "mean_risk": float(len(persons) / persons.sum()) if len(persons) else 0.0,
        "class_size_histogram": [[int(s), int(c)] for s, c in zip(sizes, counts, strict=True)],
    }
