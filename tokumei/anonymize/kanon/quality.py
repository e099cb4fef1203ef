"""Quality models: what the search minimizes, separate from the privacy models and the search.

ARX splits an anonymization into a privacy model, a quality model, a search and hierarchies; this
module is the quality-model part. Each model scores an *evaluated* node (its frequency table and
which classes fail) exactly as ARX 3.9.2 defines the model in ``org.deidentifier.arx.metric.v2``
(cited per class), and tells the search what it may prune:

- ``bounds(grid)``: a lower bound of the score of every node, known before any node is grouped
  (the generalization-only part). With valid bounds the search visits nodes in bound order and
  stops at the first bound above the best score; without them (KL divergence) every node that
  satisfies the privacy models is evaluated.
- ``clean_up_closed``: whether a satisfying node that suppresses nothing scores no more than any
  node above it (true when the score without suppression grows with generalization); the search
  then skips the whole up-set. False for KL divergence, whose ARX form (a sum over *records*, so
  frequent tuples weigh twice) is not monotone under generalization.
- ``up_bound(...)``: a lower bound, learned from an evaluated node, of every node above it
  (discernibility: Σ size² over all classes; AECS: records / classes).
- ``down_delta(...)``: for the granularity loss only, what the node's suppression adds to the
  bound of every node below it (the records suppressed here are suppressed there too).

Scores are "lower is better" like ARX's information loss. ARX's gs-factor splits into a
generalization factor ``gF`` and a suppression factor ``sF`` (``Metric``'s constructor):
``sF = 2·gs`` if ``gs < 0.5`` else 1, ``gF = 1`` if ``gs ≤ 0.5`` else ``2 − 2·gs``. Values per
QI are rounded down to 10 digits as in ``Metric.round`` before they are aggregated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tokumei.anonymize.kanon.encode import EncodedQI
from tokumei.anonymize.kanon.table import NodeStats, Table, combine

METRICS = (
    "granularity",
    "loss",
    "nu-entropy",
    "discernibility",
    "aecs",
    "height",
    "precision",
    "kl",
)
AGGREGATES = ("geometric", "arithmetic", "sum", "max")
_ROUND = 1e10


def arx_round(x: np.ndarray | float) -> np.ndarray | float:
    """``Metric.round``: floor to 10 decimal digits."""
    return np.floor(np.asarray(x, dtype=np.float64) * _ROUND) / _ROUND


def gs_factors(gs: float) -> tuple[float, float]:
    """ARX's (generalization factor, suppression factor) of a gs-factor in [0, 1]."""
    if not 0.0 <= gs <= 1.0:
        raise ValueError(f"gs-factor is in [0, 1], got {gs}")
    s = 2.0 * gs if gs < 0.5 else 1.0
    g = 1.0 if gs <= 0.5 else 1.0 - 2.0 * (gs - 0.5)
    return g, s


def aggregate(values: np.ndarray, weights: np.ndarray, how: str) -> np.ndarray:
    """ARX's ``ILMultiDimensional*`` aggregates over axis 0 (one row per QI)."""
    w = weights.reshape((-1,) + (1,) * (values.ndim - 1))
    n = values.shape[0]
    if how == "geometric":
        return np.prod(np.power(values * w + 1.0, 1.0 / n), axis=0) - 1.0
    if how == "arithmetic":
        return np.sum(values / n * w, axis=0)
    if how == "sum":
        out = np.sum(values * w, axis=0)
        return np.where(np.isfinite(out), out, np.finfo(np.float64).max)
    if how == "max":
        return np.maximum(np.max(values * w, axis=0), 0.0)
    raise ValueError(f"unknown aggregate function {how!r} (use one of {', '.join(AGGREGATES)})")


@dataclass
class Context:
    """What every model may precompute from: the QIs, the level-0 table, record counts."""

    qis: list[EncodedQI]
    base: Table  # the level-0 table (the search may later rebase; this one stays)
    share_sums: list[np.ndarray]  # G[q][l]: Σ over records of QI q's domain share at level l
    n_rows: int
    radix: np.ndarray | None = None  # the search's class-key radix (``Evaluator.radix``)
    counts0: list[np.ndarray] = field(init=False)  # records per level-0 value, per QI
    base_codes: list[np.ndarray] = field(init=False)  # level-0 codes per QI, contiguous

    def __post_init__(self) -> None:
        codes = self.base.level_codes
        rows = self.base.rows.astype(np.float64)
        self.counts0 = [
            np.bincount(codes[:, j], weights=rows, minlength=q.sizes[0])
            for j, q in enumerate(self.qis)
        ]
        self.base_codes = [np.ascontiguousarray(codes[:, j]) for j in range(len(self.qis))]


def _kept(st: NodeStats) -> np.ndarray:
    return ~st.fail


class QualityModel:
    """Base class; see the module docstring for the contract."""

    name = "quality"
    clean_up_closed = True

    def prepare(self, ctx: Context) -> None:
        self.ctx = ctx

    def bounds(self, grid: np.ndarray) -> np.ndarray | None:
        """Per node (columns of ``grid``: levels per QI), a lower bound of the score, or None."""
        return None

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        raise NotImplementedError

    def up_bound(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float | None:
        return None

    def down_delta(self, st: NodeStats) -> float:
        return 0.0

    def report(self, score: float) -> float:
        """The figure printed for a score (the search may work on an affine image of it)."""
        return score

    def describe(self) -> dict:
        return {"metric": self.name}


class Granularity(QualityModel):
    """ARX's reporting statistic "granularity loss" (shared/data/adult/README.md; see
    :mod:`.metrics`). The search works on the plain sum of shares, an affine image of it."""

    name = "granularity"

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        from tokumei.anonymize.kanon.metrics import LossScale

        self.scale = LossScale.of(ctx.qis, ctx.n_rows)

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        lb = np.zeros(grid.shape[1])
        for q, g in enumerate(self.ctx.share_sums):
            lb += g[grid[q]]
        return lb

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        gen = sum(float(g[lvl]) for g, lvl in zip(self.ctx.share_sums, node, strict=True))
        return gen + st.supp_loss

    def down_delta(self, st: NodeStats) -> float:
        return st.supp_loss

    def report(self, score: float) -> float:
        return self.scale.normalize(score)


class _MultiDimensional(QualityModel):
    """Per-QI values aggregated with attribute weights (``AbstractMetricMultiDimensional``)."""

    default_aggregate = "sum"

    def __init__(
        self,
        gs_factor: float = 0.5,
        aggregate: str | None = None,
        weights: list[float] | None = None,
    ) -> None:
        self.gs = gs_factor
        self.g_factor, self.s_factor = gs_factors(gs_factor)
        self.how = aggregate or self.default_aggregate
        if self.how not in AGGREGATES:
            raise ValueError(f"unknown aggregate function {self.how!r}")
        self._weights = weights

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        w = self._weights if self._weights is not None else [1.0] * len(ctx.qis)
        if len(w) != len(ctx.qis) or any(x < 0 or not math.isfinite(x) for x in w):
            raise ValueError("attribute weights: one finite, non-negative weight per QI")
        self.weights = np.asarray(w, dtype=np.float64)

    def agg(self, per_qi: np.ndarray) -> np.ndarray:
        return aggregate(per_qi, self.weights, self.how)

    def describe(self) -> dict:
        return {"metric": self.name, "gs_factor": self.gs, "aggregate": self.how}


class Loss(_MultiDimensional):
    """``MetricMDNMLoss``: per QI, Σ over records of the generalized value's domain share × gF
    (a suppressed record counts 1, or ``share + sF·(1 − share)`` when sF < 1), normalized from
    ``[gF·N/|domain|, N]`` to [0, 1], floored at 0, then aggregated (default geometric mean).

    Bound: the same without suppression (suppression can only raise a QI's value, and every
    aggregate is non-decreasing in each QI's value)."""

    name = "loss"
    default_aggregate = "geometric"

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        n = float(ctx.n_rows)
        self._min = np.array([self.g_factor * n / q.domain_size for q in ctx.qis])
        self._n = n
        # per QI and level, the normalized generalization-only value
        self._gen = [self._normalize(self.g_factor * g, j) for j, g in enumerate(ctx.share_sums)]

    def _normalize(self, x: np.ndarray | float, j: int) -> np.ndarray:
        den = self._n - self._min[j]
        out = (np.asarray(x, dtype=np.float64) - self._min[j]) / den if den else np.zeros_like(x)
        return arx_round(np.maximum(out, 0.0))

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        per = np.stack([self._gen[q][grid[q]] for q in range(grid.shape[0])])
        return self.agg(per)

    def per_qi(self, node: tuple[int, ...], t: Table, st: NodeStats) -> np.ndarray:
        ev_shares = _node_shares(self.ctx.qis, t, node)
        rows = t.rows.astype(np.float64)
        fail = st.fail
        out = np.empty(len(node))
        for j in range(len(node)):
            share = rows * ev_shares[j]
            kept = share[~fail].sum() * self.g_factor
            if self.s_factor == 1.0:
                supp = rows[fail].sum()
            else:
                s = share[fail]
                supp = (s + self.s_factor * (rows[fail] - s)).sum()
            out[j] = self._normalize(kept + supp, j)
        return out

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        return float(self.agg(self.per_qi(node, t, st)))


def _node_shares(qis: list[EncodedQI], t: Table, node: tuple[int, ...]) -> list[np.ndarray]:
    """Per QI, the domain share of each class's generalized value at ``node``."""
    lc = t.level_codes
    return [q.share[lvl][lc[:, j]] for j, (q, lvl) in enumerate(zip(qis, node, strict=True))]


class NonUniformEntropy(_MultiDimensional):
    """``MetricMDNUEntropyPrecomputed`` (monotone) and ``MetricMDNUNMEntropyPrecomputed``.

    Per QI, generalization: ``−gF · Σ_v a_v·log2(a_v / b_v)`` over the level-0 values ``v`` (``a_v``
    records with ``v``, ``b_v`` records with ``v``'s generalized value), over *all* records. The
    monotone variant stops there (suppression is free). The non-monotone one adds, over the
    suppressed records, ``−sF · Σ_u c_u·log2(c_u / S)`` (``c_u`` suppressed records whose
    generalized value is ``u``, ``S`` all suppressed records). Default aggregate: sum.
    """

    name = "nu-entropy"
    default_aggregate = "sum"

    def __init__(self, monotonic: bool = False, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.monotonic = monotonic
        self.clean_up_closed = True

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        self._gen = []
        for q, a in zip(ctx.qis, ctx.counts0, strict=True):
            vals = []
            present = a > 0
            for lvl in range(q.levels):
                up = q.step(0, lvl)
                b = np.bincount(up, weights=a, minlength=q.sizes[lvl])[up]
                v = float(np.sum(a[present] * np.log2(a[present] / b[present])))
                vals.append(-v * self.g_factor if v != 0.0 else 0.0)
            self._gen.append(np.array(vals))
        self._gen_r = [arx_round(g) for g in self._gen]

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        per = np.stack([self._gen_r[q][grid[q]] for q in range(grid.shape[0])])
        return self.agg(per)

    def per_qi(self, node: tuple[int, ...], t: Table, st: NodeStats) -> np.ndarray:
        raw = np.array([self._gen[q][lvl] for q, lvl in enumerate(node)])
        if not self.monotonic and st.fail.any():
            rows = t.rows[st.fail].astype(np.float64)
            s = rows.sum()
            lc = t.level_codes[st.fail]
            for j in range(len(node)):
                _, inv = np.unique(lc[:, j], return_inverse=True)
                c = np.bincount(inv, weights=rows)
                c = c[c > 0]
                raw[j] += -float(np.sum(c * np.log2(c / s))) * self.s_factor
        return arx_round(raw)

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        return float(self.agg(self.per_qi(node, t, st)))

    def describe(self) -> dict:
        return super().describe() | {"monotonic": self.monotonic}


class Discernibility(QualityModel):
    """``MetricSDNMDiscernability``: Σ over kept classes of size², plus ``N`` per suppressed
    record. ``MetricSDDiscernability`` (monotone, DM*): Σ over all classes of size², suppression
    ignored. Sizes in records. Up-bound: DM* of a node bounds both variants of every node above
    it (classes only merge, and a suppressed record's ``N`` ≥ its class's size)."""

    name = "discernibility"

    def __init__(self, monotonic: bool = False) -> None:
        self.monotonic = monotonic

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        # every node's classes are unions of the level-0 classes: DM* of level 0 bounds all
        r = self.ctx.base.rows.astype(np.float64)
        return np.full(grid.shape[1], float(r @ r))

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        r = t.rows.astype(np.float64)
        if self.monotonic:
            return float(r @ r)
        kept = r[~st.fail]
        return float(kept @ kept) + float(self.ctx.n_rows) * float(r[st.fail].sum())

    def up_bound(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        r = t.rows.astype(np.float64)
        return float(r @ r)

    def describe(self) -> dict:
        return {"metric": self.name, "monotonic": self.monotonic}


class AECS(QualityModel):
    """``MetricSDAECS``: records / (kept classes·sF + gF if any record is suppressed) — ARX
    switches the two factors on purpose, so with gs = 0.5 this is N / (kept classes + [S > 0]).
    Up-bound: ``N / (classes · max(gF, sF))`` (ARX's own bound, ``N / (classes · sF)``, is not
    a lower bound when gs < 0.5; the maximum makes it one)."""

    name = "aecs"

    def __init__(self, gs_factor: float = 0.5) -> None:
        self.gs = gs_factor
        self.g_factor, self.s_factor = gs_factors(gs_factor)

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        n_cls = len(self.ctx.base.rows)
        return np.full(grid.shape[1], self.ctx.n_rows / (n_cls * max(self.g_factor, self.s_factor)))

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        kept = float((~st.fail).sum()) * self.s_factor
        if st.fail.any():
            kept += self.g_factor
        return self.ctx.n_rows / kept if kept else math.inf

    def up_bound(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        return self.ctx.n_rows / (len(t.rows) * max(self.g_factor, self.s_factor))

    def describe(self) -> dict:
        return {"metric": self.name, "gs_factor": self.gs}


class Height(_MultiDimensional):
    """``MetricMDHeight``: the levels, aggregated (default sum: the node's height)."""

    name = "height"
    default_aggregate = "sum"

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        return self.agg(grid.astype(np.float64))

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        return float(self.agg(np.asarray(node, dtype=np.float64)))

    def describe(self) -> dict:
        return {"metric": self.name, "aggregate": self.how}


class Precision(_MultiDimensional):
    """``MetricMDNMPrecision``: per QI ``((N − S)·level/height·gF + S·sF) / N`` (S suppressed
    records), default arithmetic mean; ``MetricMDPrecision`` (monotone): ``level/height·gF``.
    Bound: ``min(level/height·gF, sF)`` per QI (a convex combination of the two; ARX bounds by the
    first alone, which is too high when gs < 0.5)."""

    name = "precision"
    default_aggregate = "arithmetic"

    def __init__(self, monotonic: bool = False, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.monotonic = monotonic

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        self._rel = [
            np.arange(q.levels) / (q.levels - 1) if q.levels > 1 else np.zeros(1) for q in ctx.qis
        ]

    def bounds(self, grid: np.ndarray) -> np.ndarray:
        per = np.stack([self._rel[q][grid[q]] * self.g_factor for q in range(grid.shape[0])])
        if not self.monotonic:
            per = np.minimum(per, self.s_factor)
        return self.agg(per)

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        rel = np.array([self._rel[q][lvl] for q, lvl in enumerate(node)]) * self.g_factor
        if self.monotonic:
            return float(self.agg(rel))
        n = float(self.ctx.n_rows)
        s = float(t.rows[st.fail].sum())
        return float(self.agg(((n - s) * rel + s * self.s_factor) / n))

    def describe(self) -> dict:
        return super().describe() | {"monotonic": self.monotonic}


class KLDivergence(QualityModel):
    """``MetricSDNMKLDivergence``: a sum over *records* r (not distinct tuples, as ARX does) of
    ``p_r·log2(p_r / q_r)``, ``p_r`` the share of records with r's QI tuple, ``q_r`` the share of
    records in r's class divided by the class's area (Π over QIs of the leaves under its value);
    for a suppressed record, all suppressed records over the whole domain's area. No bound and
    not monotone: every satisfying node is evaluated."""

    name = "kl"
    clean_up_closed = False

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        rows = ctx.base.rows.astype(np.float64)
        n = float(ctx.n_rows)
        self._p = rows / n
        self._w = rows * self._p  # every record of a tuple adds p·log2(p/q)
        self._max_area = float(np.prod([float(q.domain_size) for q in ctx.qis]))
        self._maps: dict[tuple[int, int], np.ndarray] = {}

    def score(self, node: tuple[int, ...], t: Table, st: NodeStats) -> float:
        n = float(self.ctx.n_rows)
        idx = self._class_of_base(t, node)
        area = np.ones(len(t.rows))
        for q, a in zip(self.ctx.qis, _node_shares(self.ctx.qis, t, node), strict=True):
            area *= a * q.domain_size
        rows = t.rows.astype(np.float64)
        q_cls = rows / n / area
        if st.fail.any():
            q_cls[st.fail] = float(rows[st.fail].sum()) / n / self._max_area
        q_rec = q_cls[idx]
        return float(np.sum(self._w * np.log2(self._p / q_rec)))

    def _class_of_base(self, t: Table, node: tuple[int, ...]) -> np.ndarray:
        """``class_of_base`` through the search's class keys when the table has them: the
        level-0 classes' keys at ``node`` by one gather per QI, looked up in the (sorted) keys."""
        radix = self.ctx.radix
        if radix is None or t.key is None:
            return class_of_base(self.ctx.qis, self.ctx.base, t, node)
        key = np.zeros(len(self.ctx.base.rows), dtype=np.int64)
        for j, (q, lvl) in enumerate(zip(self.ctx.qis, node, strict=True)):
            m = self._maps.get((j, lvl))
            if m is None:
                m = self._maps[(j, lvl)] = q.step(0, lvl).astype(np.int64) * int(radix[j])
            key += m[self.ctx.base_codes[j]]
        if np.all(t.key[1:] > t.key[:-1]):
            out = np.minimum(np.searchsorted(t.key, key), len(t.key) - 1)
        else:  # pragma: no cover - roll-ups number classes in key order
            order = np.argsort(t.key)
            out = order[np.minimum(np.searchsorted(t.key, key, sorter=order), len(order) - 1)]
        if not np.array_equal(t.key[out], key):  # pragma: no cover - tables out of step
            return class_of_base(self.ctx.qis, self.ctx.base, t, node)
        return out


def class_of_base(qis: list[EncodedQI], base: Table, t: Table, node: tuple[int, ...]) -> np.ndarray:
    """For each class of the level-0 table, the index of its class in ``t`` (``node``'s table)."""
    lc0 = base.level_codes
    gen = np.stack(
        [q.step(0, lvl)[lc0[:, j]] for j, (q, lvl) in enumerate(zip(qis, node, strict=True))], 1
    ).astype(np.int64)
    lc = t.level_codes.astype(np.int64)
    sizes = [q.sizes[lvl] for q, lvl in zip(qis, node, strict=True)]
    both, _ = combine([np.concatenate([lc[:, j], gen[:, j]]) for j in range(len(sizes))], sizes)
    cls_key, base_key = both[: len(lc)], both[len(lc) :]
    order = np.argsort(cls_key)
    pos = np.minimum(np.searchsorted(cls_key, base_key, sorter=order), len(order) - 1)
    out = order[pos]
    if not np.array_equal(cls_key[out], base_key):  # pragma: no cover - tables out of step
        raise RuntimeError("a level-0 class has no class at the node")
    return out


def make(
    metric: str = "granularity",
    *,
    monotonic: bool = False,
    gs_factor: float = 0.5,
    aggregate: str | None = None,
    weights: list[float] | None = None,
) -> QualityModel:
    """The quality model named ``metric`` (one of :data:`METRICS`) with ARX's parameters.

    ``aggregate`` None means the model's ARX default (loss: geometric; nu-entropy, height: sum;
    precision: arithmetic). ``monotonic`` selects ARX's monotone variant of nu-entropy,
    discernibility and precision (the others ignore it).
    """
    gs_factors(gs_factor)
    if aggregate is not None and aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate function {aggregate!r} (use {', '.join(AGGREGATES)})")
    kw = {"gs_factor": gs_factor, "aggregate": aggregate, "weights": weights}
    if metric == "granularity":
        return Granularity()
    if metric == "loss":
        return Loss(**kw)
    if metric == "nu-entropy":
        return NonUniformEntropy(monotonic=monotonic, **kw)
    if metric == "discernibility":
        return Discernibility(monotonic=monotonic)
    if metric == "aecs":
        return AECS(gs_factor)
    if metric == "height":
        return Height(aggregate=aggregate, weights=weights)
    if metric == "precision":
        return Precision(monotonic=monotonic, **kw)
    if metric == "kl":
        return KLDivergence()
    raise ValueError(f"unknown quality model {metric!r} (use one of {', '.join(METRICS)})")
