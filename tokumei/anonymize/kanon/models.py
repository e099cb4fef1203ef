"""Privacy models, evaluated on a node's frequency table (never on rows).

- :class:`KAnonymity`: every equivalence class holds at least ``k`` distinct *persons* (with no
  person column every record is a person, which is ARX's k).
- :class:`DistinctLDiversity`: every class holds at least ``l`` distinct values of a sensitive
  column.
- :class:`SuppressionLimit`: the records of every class violating the models above are suppressed
  (every QI ``*``); the transformation is acceptable only if the persons so touched — persons with
  at least one suppressed record — are at most ``floor(share × all persons)``.

Over the frequencies of a sensitive column's values in a class (records; ARX's definitions in
``org.deidentifier.arx.criteria``), only for data without a person column:

- :class:`EntropyLDiversity`: at least ``ceil(l)`` values and Shannon entropy ≥ ``ln l``
  (``EntropyLDiversity``, Shannon estimator: ``Σ f·ln f ≤ N·(ln N − ln l)``);
- :class:`RecursiveCLDiversity`: with counts ``r1 ≥ r2 ≥ … ≥ rm``, ``m ≥ l`` and
  ``r1 < c·(r_l + … + r_m)`` (``RecursiveCLDiversity``);
- :class:`TCloseness`: the earth mover's distance between the class's distribution and the whole
  data's is at most ``t``, with the equal ground distance (``EqualDistanceTCloseness``: half the
  L1 distance) or the hierarchical one of a hierarchy on the sensitive column
  (``HierarchicalDistanceTCloseness``: ``Σ`` over inner nodes of ``level/height ·
  min(positive, negative extra)``, computed here per level as ``½ Σ_j (j/H)·(A_{j−1} − A_j)``
  with ``A_j`` the L1 distance of the two distributions rolled up to level ``j``).

With a person column these are refused: a person's records would be counted once per record in a
class but once in a merged class, which breaks the monotonicity below.

k and distinct l are monotone under full-domain generalization: a class of a coarser node is a union of
classes of a finer node, so if it violates k (or l), every class it is made of did too. The set of
suppressed records, and so of suppressed persons, can therefore only shrink as a node gets coarser
(ARX's "practical monotonicity" with a suppression limit). The search prunes with that. For the
frequency models a merged class's distribution is a mixture of its parts': entropy of a mixture
is at least the smallest part's, the recursive condition is closed under sums (Machanavajjhala et
al.), and an earth mover's distance to a fixed distribution is convex. So merged *passing*
classes pass, but a merged class fails as soon as one part fails, taking its passing parts into
suppression: with a suppression limit they are not monotone (``Models.monotone``), and the search
tags failing down-sets only from the monotone models (a brute-force test found the
counterexample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tokumei.anonymize.kanon.table import (
    NodeStats,
    Table,
    class_keys,
    class_persons,
    distinct_per_class,
    group_ids,
    suppressed_persons,
    value_counts,
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


_TOL = 1e-9  # relative: a condition met with equality (uniform over l values) holds


@dataclass(frozen=True)
class EntropyLDiversity:
    column: str
    l: float  # noqa: E741 - the model's own name
    index: int

    def __post_init__(self) -> None:
        if not self.l >= 1:
            raise ValueError(f"entropy l for {self.column!r} must be at least 1, got {self.l}")

    def violations(self, cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, n: int) -> np.ndarray:
        f = cnt.astype(np.float64)
        tot = np.bincount(cls, weights=f, minlength=n)
        distinct = np.bincount(cls, minlength=n)
        flogf = np.bincount(cls, weights=f * np.log(f), minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = tot * (np.log(np.maximum(tot, 1.0)) - math.log(self.l))
        return (distinct < math.ceil(self.l)) | (flogf > bound + _TOL * np.maximum(tot, 1.0))


@dataclass(frozen=True)
class RecursiveCLDiversity:
    column: str
    l: int  # noqa: E741 - the model's own name
    c: float
    index: int

    def __post_init__(self) -> None:
        if self.l < 1 or not self.c > 0:
            raise ValueError(f"recursive (c, l) for {self.column!r} needs l >= 1 and c > 0")

    def violations(self, cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, n: int) -> np.ndarray:
        order = np.lexsort((cnt, cls))  # per class, counts ascending
        c_s, f_s = cls[order], cnt[order].astype(np.float64)
        m = np.bincount(cls, minlength=n)
        start = np.concatenate([[0], np.cumsum(m)[:-1]])
        rank = np.arange(len(c_s)) - start[c_s]
        # the m − l + 1 smallest counts are r_l … r_m
        tail = np.bincount(c_s, weights=np.where(rank <= m[c_s] - self.l, f_s, 0.0), minlength=n)
        top = np.zeros(n)
        np.maximum.at(top, c_s, f_s)
        return (m < self.l) | ~(top < self.c * tail)


@dataclass
class TCloseness:
    """``groups[j][v]``: the level-(j+1) group of value ``v`` of the sensitive hierarchy (none:
    equal ground distance); ``overall[v]``: the value's share of all records."""

    column: str
    t: float
    index: int
    overall: np.ndarray
    groups: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.t <= 1.0:
            raise ValueError(f"t for {self.column!r} is in [0, 1], got {self.t}")

    def distance(self, cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, n: int) -> np.ndarray:
        f = cnt.astype(np.float64)
        q = f / np.bincount(cls, weights=f, minlength=n)[cls]

        def l1(g: np.ndarray | None, p_all: np.ndarray) -> np.ndarray:
            # Σ_g |P_g − Q_g| = 1 + Σ over groups present in the class of (|P_g − Q_g| − P_g)
            if g is None:
                key, q_g, p_g = cls, q, p_all[val]
            else:
                width = int(g.max()) + 1
                key_all = cls * width + g[val]
                uniq, inv = np.unique(key_all, return_inverse=True)
                q_g = np.bincount(inv, weights=q)
                key = uniq // width
                p_g = np.bincount(g, weights=p_all, minlength=width)[uniq % width]
            return 1.0 + np.bincount(key, weights=np.abs(p_g - q_g) - p_g, minlength=n)

        a0 = l1(None, self.overall)
        if not self.groups:
            return np.maximum(a0 / 2.0, 0.0)
        h = len(self.groups)
        prev, cost = a0, np.zeros(n)
        for j, g in enumerate(self.groups, start=1):
            cur = l1(g, self.overall)
            cost += (j / h) * (prev - cur) / 2.0
            prev = cur
        return np.maximum(cost, 0.0)

    def violations(self, cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, n: int) -> np.ndarray:
        return self.distance(cls, val, cnt, n) > self.t + _TOL


FrequencyModel = EntropyLDiversity | RecursiveCLDiversity | TCloseness


@dataclass(frozen=True)
class RiskThresholds:
    """ARX's sample-based risk models, enforced the way ARX does (``HashGroupifyDistribution
    .suppressWhileNotFulfilledBinary``): the smallest classes still published are suppressed,
    fewest first, until the condition holds; then the suppression limit decides.

    - ``average``: average re-identification risk of the published records (prosecutor: each
      record's risk is 1 / its class size, so the average is classes / records) ≤ ``average``
      (``AverageReidentificationRisk``);
    - ``uniqueness``: share of published records that are alone in their class ≤ ``uniqueness``
      (``SampleUniqueness``).

    Suppressing the smallest class never raises either (a smallest class is at most the mean
    size, and a unique record's removal lowers the unique share), so the fewest classes to
    suppress is the first prefix of the classes sorted by size that meets both; found for all
    prefixes at once. Records are persons here (refused with a person column).
    """

    average: float | None = None
    uniqueness: float | None = None

    def __post_init__(self) -> None:
        for name, v in (("average risk", self.average), ("uniqueness", self.uniqueness)):
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} threshold is a share in [0, 1], got {v}")

    @property
    def active(self) -> bool:
        return self.average is not None or self.uniqueness is not None

    def enforce(self, rows: np.ndarray, fail: np.ndarray) -> np.ndarray:
        """``fail`` plus the classes to suppress so that the published records meet both."""
        keep = np.flatnonzero(~fail)
        order = keep[np.argsort(rows[keep], kind="stable")]
        sizes = rows[order].astype(np.float64)
        c = len(sizes)
        x = np.arange(c + 1, dtype=np.float64)  # classes suppressed, smallest first
        removed = np.concatenate([[0.0], np.cumsum(sizes)])
        left = sizes.sum() - removed
        ok = np.ones(c + 1, dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.average is not None:
                ok &= (left == 0) | ((c - x) <= self.average * left * (1 + _TOL))
            if self.uniqueness is not None:
                uniques = max(0, int(np.count_nonzero(sizes == 1)))
                ok &= (left == 0) | (np.maximum(uniques - x, 0) <= self.uniqueness * left + _TOL)
        n_supp = int(np.argmax(ok))
        out = fail.copy()
        out[order[:n_supp]] = True
        return out


@dataclass
class Population:
    """k-map and δ-presence against a population table (ARX's ``KMap`` with a ``DataSubset``,
    and ``DPresence``): for each class of the release, ``F`` = individuals of the population
    (one per row of the population table) who share the class's generalized values.

    - ``k_map``: ``F ≥ k`` (``KMap.isAnonymous``: ``pcount >= k``);
    - ``d_min``/``d_max``: ``d_min ≤ f / F ≤ d_max`` with ``f`` the class's records
      (``DPresence``).

    Only classes of the release are judged (a population-only class has nothing to suppress).
    ``codes[q][l]``: for each distinct population tuple, the level-``l`` code of QI ``q`` among
    the *release's* labels at that level (-1: no released value has that label, so the tuple
    belongs to no class of the release at that level); ``counts``: individuals per tuple.

    k-map is monotone (populations of merged classes add up, so a failing merged class is made
    of failing classes). δ-presence is not: ``Σf / ΣF`` of a merged class lies between its
    parts' ratios, so it may fail while a part passes, or pass while parts fail; and a
    population-only part (ratio 0) can pull a passing class under ``d_min``. Without
    suppression and with ``d_min = 0`` it is monotone (a mediant of ratios ≤ ``d_max`` is).
    """

    codes: list[list[np.ndarray]]
    counts: np.ndarray
    k_map: int | None = None
    d_min: float | None = None
    d_max: float | None = None
    # per QI, the radix of a class key over level-0 sizes (level codes only shrink, so one
    # radix serves every node); None when such keys would overflow
    radix: np.ndarray | None = None
    _parts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if self.k_map is not None and self.k_map < 1:
            raise ValueError(f"k-map k must be at least 1, got {self.k_map}")
        lo = 0.0 if self.d_min is None else self.d_min
        hi = 1.0 if self.d_max is None else self.d_max
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"delta-presence needs 0 <= d_min <= d_max <= 1, got {lo}, {hi}")

    @property
    def presence(self) -> bool:
        return self.d_min is not None or self.d_max is not None

    @property
    def lower(self) -> float:
        return 0.0 if self.d_min is None else self.d_min

    def class_counts(self, t: Table) -> np.ndarray:
        """``F`` per class of ``t``: population individuals with the class's codes."""
        if self.radix is not None:
            # keys with one radix for all nodes: each (QI, level)'s share of a key is cached
            key = np.zeros(len(self.counts), dtype=np.int64)
            valid = np.ones(len(self.counts), dtype=bool)
            for q, lvl in enumerate(t.node):
                part = self._parts.get((q, lvl))
                if part is None:
                    c = self.codes[q][lvl]
                    part = self._parts[(q, lvl)] = (np.maximum(c, 0) * int(self.radix[q]), c >= 0)
                key += part[0]
                valid &= part[1]
            pk, w = key[valid], self.counts[valid]
            sk = t.level_codes @ self.radix
            if len(sk) == 0:
                return np.zeros(0, dtype=np.int64)
            order = np.argsort(sk)
            sks = sk[order]  # searching a sorted copy beats a ``sorter`` (random access)
            pos = np.minimum(np.searchsorted(sks, pk), len(sk) - 1)
            hit = sks[pos] == pk
            out = np.bincount(order[pos[hit]], weights=w[hit].astype(np.float64), minlength=len(sk))
            return out.astype(np.int64)
        pop = np.column_stack([self.codes[q][lvl] for q, lvl in enumerate(t.node)])
        ok = (pop >= 0).all(axis=1)
        pop, w = pop[ok], self.counts[ok]
        lc = t.level_codes
        n = len(lc)
        sizes = [
            int(max(lc[:, q].max(initial=-1), pop[:, q].max(initial=-1))) + 1
            for q in range(lc.shape[1])
        ]
        key, space = class_keys(np.vstack([lc, pop]).astype(np.int64), sizes)
        ids, n_groups, _ = group_ids(key, space)
        cnt = np.bincount(ids[n:], weights=w.astype(np.float64), minlength=n_groups)
        return cnt[ids[:n]].astype(np.int64)

    def monotone_violations(self, counts: np.ndarray) -> np.ndarray:
        if self.k_map is None:
            return np.zeros(len(counts), dtype=bool)
        return counts < self.k_map

    def presence_violations(self, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
        delta = rows / np.maximum(counts, 1)
        hi = 1.0 if self.d_max is None else self.d_max
        return (delta < self.lower - _TOL) | (delta > hi + _TOL)


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
    freq: list[FrequencyModel] = field(default_factory=list)  # entropy/recursive l, t-closeness
    risk: RiskThresholds = field(default_factory=RiskThresholds)
    population: Population | None = None  # k-map, δ-presence

    @property
    def monotone(self) -> bool:
        """Is "acceptable within the suppression limit" monotone under generalization?

        k and distinct l are: a coarser class that violates them is made of violating classes
        only, so the suppressed records can only shrink. Entropy-l, recursive-(c,l) and
        t-closeness are not: a merged class violates them as soon as one part does (a mixture
        is never better than its worst part), and then its passing parts are suppressed with
        it, so a coarser node can suppress *more*. Without suppression (limit 0) they are:
        merged passing classes pass. The search then tags only with the monotone models.
        k-map is monotone; δ-presence is not, not even without suppression when
        ``d_min > 0`` (:class:`Population`).
        """
        presence = self.population is not None and self.population.presence
        if self.max_suppressed == 0:
            return not (presence and self.population.lower > 0)  # type: ignore[union-attr]
        return not self.freq and not self.risk.active and not presence

    @property
    def max_suppressed(self) -> int:
        return self.limit.max_persons(self.total_persons)

    def evaluate(self, t: Table, shares: np.ndarray, gen_total: float | None = None) -> NodeStats:
        """Violating classes, suppressed persons and the loss suppression adds, for table ``t``.

        ``shares[c]`` is the domain share of the value with (offset) code ``c`` at ``t``'s levels.
        ``gen_total``: Σ over all records of Σ_q share at these levels; when given and the
        failing classes outnumber the kept ones, the added loss is computed from the kept ones
        (``rows_failing·Q − (gen_total − kept part)``), which is the cheap side with large k.
        """
        persons = class_persons(t)
        fail = self.k.violations(persons)
        for m in self.ldiv:
            distinct = distinct_per_class(t, self.sid_maps[m.index], self.sid_sizes[m.index])
            fail |= distinct < m.l
        pop_counts = None
        if self.population is not None:
            pop_counts = self.population.class_counts(t)
            fail |= self.population.monotone_violations(pop_counts)
        mono_supp = None
        if not self.monotone:
            mono_supp = int(t.rows[fail].sum()) if t.plain else suppressed_persons(t, fail)
        counts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for m in self.freq:
            if m.index not in counts:
                counts[m.index] = value_counts(t, self.sid_maps[m.index], self.sid_sizes[m.index])
            fail |= m.violations(*counts[m.index], t.n_classes)
        if pop_counts is not None and self.population.presence:  # type: ignore[union-attr]
            fail |= self.population.presence_violations(t.rows, pop_counts)  # type: ignore[union-attr]
        if self.risk.active:
            fail = self.risk.enforce(t.rows, fail)
        idx = np.flatnonzero(fail)
        if len(idx) == 0:
            return NodeStats(persons, fail, 0, 0, 0.0, mono_supp)
        rows_f = t.rows[idx]
        supp_p = int(rows_f.sum()) if t.plain else suppressed_persons(t, fail)
        if supp_p > self.max_suppressed:
            return NodeStats(persons, fail, supp_p, int(rows_f.sum()), float("nan"), mono_supp)
        n_q = len(t.offsets)
        if gen_total is not None and 2 * len(idx) > len(fail):
            keep = np.flatnonzero(~fail)
            kept_gen = float(t.rows[keep] @ shares[t.codes[keep]].sum(axis=1)) if len(keep) else 0.0
            supp_loss = float(rows_f.sum()) * n_q - (gen_total - kept_gen)
        else:
            supp_loss = float(rows_f @ (n_q - shares[t.codes[idx]].sum(axis=1)))
        return NodeStats(persons, fail, supp_p, int(rows_f.sum()), supp_loss, mono_supp)
