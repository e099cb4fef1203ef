"""Cheap necessary conditions from one- and two-QI projections.

A *projection* of a node keeps one or two QIs at their levels and suppresses the others (top
level). It is a generalization of the node, so by monotonicity its suppressed persons are a lower
bound on the node's: if a projection already suppresses more than the limit, the node and its
whole down-set fail. There are only Σ_q L_q + Σ_{q<r} L_q·L_r such projections, and they are
computed on marginal histograms (one ``bincount`` per pair of QIs over the level-0 classes, then
each level pair by two small matrix products), not by evaluating nodes.

Only without a person column (class size in records is class size in persons) is this used; with
persons the distinct-person counts do not follow from histograms. The l-diversity condition is
left out here, which keeps the test necessary (a node failing k alone fails k and l).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tokumei.anonymize.kanon.encode import EncodedQI
from tokumei.anonymize.kanon.table import Table


def plain_failures(
    qis: list[EncodedQI],
    base: Table,
    k: int,
    max_suppressed: int,
    deltas: list[tuple[int, int, np.ndarray]] | None = None,
) -> Iterator[tuple[int, ...]]:
    """Projection nodes (other QIs at top) that suppress more than ``max_suppressed`` records.

    Per pair of QIs, one histogram of the level-0 classes, aggregated to every pair of levels at
    once (a product with the stacked one-hot level maps); the suppressed records of each level
    pair are then block sums of the cells under ``k``. Yields, per pair and level of the first QI,
    the highest failing level of the second (failing is downward closed).

    With ``deltas`` (a list to fill), also appends per pair ``(q, r, δ)``, ``δ[lq, lr]`` the
    granularity loss suppression adds at the projection node: Σ over its classes under ``k`` of
    records × ((1 − share_q) + (1 − share_r)). Those records are suppressed at every node below
    the projection too (a class under k there is made of classes under k), where their shares
    are no larger, so ``lb + δ`` bounds the loss of the projection's whole down-set before any
    node is evaluated; with a loose limit nothing fails and this is the pruning left.
    """
    n_q = len(qis)
    top = [q.levels - 1 for q in qis]
    rows = base.rows.astype(np.float64)
    codes = base.level_codes
    n0 = [q.sizes[0] for q in qis]
    stacked, starts = [], []
    for q in qis:
        maps = [q.step(0, lvl) for lvl in range(q.levels)]
        widths = [q.sizes[lvl] for lvl in range(q.levels)]
        offs = np.concatenate([[0], np.cumsum(widths[:-1])]).astype(np.int64)
        a = np.zeros((q.sizes[0], int(sum(widths))))
        for m, o in zip(maps, offs, strict=True):
            a[np.arange(len(m)), m + o] = 1.0
        stacked.append(a)
        starts.append(offs)
    loss = [
        np.concatenate([1.0 - q.share[lvl][: q.sizes[lvl]] for lvl in range(q.levels)]) for q in qis
    ]
    for q in range(n_q):
        for r in range(q + 1, n_q):
            if top[q] == 0 and top[r] == 0:
                continue
            m = np.bincount(
                codes[:, q] * n0[r] + codes[:, r], weights=rows, minlength=n0[q] * n0[r]
            ).reshape(n0[q], n0[r])
            h = stacked[q].T @ m @ stacked[r]
            h[h >= k] = 0.0
            if deltas is not None:
                w = h * (loss[q][:, None] + loss[r][None, :])
                delta = np.add.reduceat(np.add.reduceat(w, starts[q], axis=0), starts[r], axis=1)
                if delta.any():
                    deltas.append((q, r, delta))
            supp = np.add.reduceat(np.add.reduceat(h, starts[q], axis=0), starts[r], axis=1)
            failing = supp > max_suppressed
            floor_r = -1
            for lq in range(top[q], -1, -1):
                hits = np.flatnonzero(failing[lq, floor_r + 1 :])
                if len(hits):
                    floor_r += 1 + int(hits[-1])
                    node = list(top)
                    node[q], node[r] = lq, floor_r
                    yield tuple(node)
