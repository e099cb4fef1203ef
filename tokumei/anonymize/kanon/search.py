"""Optimal search over the full-domain generalization lattice, for any quality model.

The lattice has one node per combination of levels (one level per QI); node ``a`` is below ``b``
when every level of ``a`` is ≤ that of ``b``. The privacy models are monotone (see
:mod:`tokumei.anonymize.kanon.models`): the failing nodes form a down-set and the satisfying nodes an
up-set. The score (a :class:`~tokumei.anonymize.kanon.quality.QualityModel`; by default the
granularity loss) is *not* monotone once records are suppressed (coarser nodes suppress less),
so "first satisfying node" is not enough; instead the search is a best-first enumeration by a
lower bound of the score, with predictive tagging:

0. Nodes already known to fail (from one- and two-QI projections, :mod:`.projections`) tag their
   down-sets first; the base table is then rolled up once to the meet of the remaining nodes.
1. The model's static bound (the generalization-only score: no record suppressed) is known for
   every node before any data is grouped. Nodes are visited in increasing bound; the search
   stops at the first node whose bound cannot beat the best satisfying node found so far. A
   model without a static bound that varies by node (discernibility, AECS, KL divergence) is
   visited in the granularity bound's order instead, and the search ends only when every node
   is evaluated, tagged, or bounded away by what evaluated nodes below it proved
   (``QualityModel.up_bound``).
2. A visited node whose status is unknown is evaluated (its frequency table rolled up from the
   smallest cached table of a node below it). If it satisfies the models, every node above it is
   tagged satisfying; with the granularity loss every node below it gets the sharper bound
   ``lb + δ``, δ being the loss its suppressed records add (the records suppressed here are
   suppressed below it too, and their shares there are no larger). If it suppresses nothing and
   the model's score grows with generalization (``clean_up_closed``: all but KL divergence), no
   node above it can be better.
3. If it fails, the search climbs from it to a *maximal* failing node, raising one QI at a time
   (in a fixed order) while the result still fails, evaluating each step from the previous step's
   table; every failing node tags its whole down-set failing, and satisfying nodes met on the way
   are scored. One sweep over the QIs reaches a maximal node, since a satisfying successor stays
   satisfying whatever else is raised later.

The result is exact: every node is either evaluated, tagged failing by a failing node above it,
or bounded away from the optimum. Ties (equal score within 1e-9 relative) go to the node with the
lowest height (sum of levels), then to the lexicographically smallest levels in QI order.
"""

from __future__ import annotations

import operator
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tokumei.anonymize.kanon.encode import EncodedQI
from tokumei.anonymize.kanon.models import Models
from tokumei.anonymize.kanon.quality import Context, Granularity, QualityModel
from tokumei.anonymize.kanon.table import NodeStats, Table, rollup, strides_of

UNKNOWN, SAT, FAIL = 0, 1, -1
CACHE_SLOTS = 256  # tables kept (within ``cache_bytes``): more slots, closer roll-up sources


@dataclass
class Evaluation:
    node: tuple[int, ...]
    table: Table
    stats: NodeStats
    sat: bool


@dataclass
class Evaluator:
    """Evaluates nodes, rolling each up from the cheapest cached table of a node below it."""

    qis: list[EncodedQI]
    base: Table
    models: Models
    cache_bytes: int = 512 << 20
    evaluations: int = 0
    # G[q][l] (records × share, all records): lets the suppression loss be computed from the
    # kept classes when they are fewer than the failing ones (loose limits, large k)
    share_sums: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        self._level_sizes = [list(q.sizes) for q in self.qis]
        # every node keeps the base's layout: QI q's codes live in [offsets[q], offsets[q] +
        # level-0 size) at any level (levels only merge values), so a roll-up touches only the
        # QIs whose level changes, and the class key can use one radix for all nodes
        self._fixed = self.base.offsets
        sizes0 = [s[0] for s in self._level_sizes]
        st = strides_of(sizes0)
        self._radix = None if st is None else st[0]
        if self._radix is not None and self.base.key is None:
            self.base.key = self.base.level_codes @ self._radix
        # shares per QI and level, zero-padded to the QI's block so that they concatenate to
        # an array indexed by the (fixed-offset) codes
        self._shares = [
            [np.pad(s.astype(np.float64), (0, n0 - len(s))) for s in q.share]
            for q, n0 in zip(self.qis, sizes0, strict=True)
        ]
        self._shares_memo: dict[tuple[int, ...], np.ndarray] = {}
        self._steps: dict[tuple[int, int, int], np.ndarray] = {}
        self._changes: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._n_codes = int(sum(sizes0))
        # the cache: tables by node, plus a matrix of their levels and costs for fast look-up
        self._cache: OrderedDict[tuple[int, ...], Table] = OrderedDict()
        self._slot: dict[tuple[int, ...], int] = {}
        n_slots = CACHE_SLOTS
        self._levels = np.zeros((n_slots, len(self.qis)), dtype=np.int16)
        self._costs = np.full(n_slots, np.iinfo(np.int64).max, dtype=np.int64)
        self._free: list[int] = list(range(n_slots - 1, -1, -1))
        self._slot_node: list[tuple[int, ...] | None] = [None] * n_slots
        self._bytes = 0

    @property
    def radix(self) -> np.ndarray | None:
        """The per-QI radix of the class keys (``Table.key``); None if they would overflow."""
        return self._radix

    def _step(self, q: int, lo: int, hi: int) -> np.ndarray:
        """QI ``q``'s map from level ``lo`` to level ``hi`` codes over its whole block (codes
        unused at ``lo`` map to 0), offset included."""
        key = (q, lo, hi)
        m = self._steps.get(key)
        if m is None:
            m = np.zeros(self._level_sizes[q][0], dtype=np.int64)
            m[: self._level_sizes[q][lo]] = self.qis[q].step(lo, hi)
            m += self._fixed[q]
            self._steps[key] = m
        return m

    def _change(self, q: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """QI ``q`` from level ``lo`` to ``hi``, over the whole shared code space (other QIs'
        codes unchanged): each code's new code and how much a class key moves with it, so a
        roll-up updates a changed QI with one gather each for codes and keys."""
        key = (q, lo, hi)
        ch = self._changes.get(key)
        if ch is None:
            codes = np.arange(self._n_codes, dtype=np.int64)
            block = slice(int(self._fixed[q]), int(self._fixed[q]) + self._level_sizes[q][0])
            codes[block] = self._step(q, lo, hi)
            delta = np.zeros(self._n_codes, dtype=np.int64)
            delta[block] = (codes[block] - np.arange(block.start, block.stop)) * int(self._radix[q])
            ch = self._changes[key] = (codes, delta)
        return ch

    def shares(self, node: tuple[int, ...]) -> np.ndarray:
        """Domain share per (fixed-offset) code at ``node``'s levels."""
        sh = self._shares_memo.get(node)
        if sh is None:
            sh = self._shares_memo[node] = np.concatenate(
                [s[lvl] for s, lvl in zip(self._shares, node, strict=True)]
            )
        return sh

    def source_for(self, node: tuple[int, ...]) -> Table:
        """The cached table below ``node`` that is cheapest to roll up (the base if none)."""
        below = (self._levels <= np.asarray(node, dtype=np.int16)).all(axis=1)
        costs = np.where(below, self._costs, np.iinfo(np.int64).max)
        j = int(np.argmin(costs))
        if costs[j] >= self.base.cost:
            return self.base
        return self._cache[self._slot_node[j]]

    def rebase(self, floor: tuple[int, ...]) -> None:
        """Use ``floor``'s table as the base: every node still to evaluate is above it."""
        if floor != self.base.node:
            self.base = self.table(floor)

    def table(self, node: tuple[int, ...], source: Table | None = None) -> Table:
        if node == self.base.node:
            return self.base
        hit = self._cache.get(node)
        if hit is not None:
            self._cache.move_to_end(node)
            return hit
        src = source if source is not None else self.source_for(node)
        sizes = [s[lvl] for s, lvl in zip(self._level_sizes, node, strict=True)]
        if self._radix is not None and src.key is not None:
            changes = {
                j: self._change(j, a, b)
                for j, (a, b) in enumerate(zip(src.node, node, strict=True))
                if a != b
            }
            t = rollup(src, node, None, sizes, self._fixed, self.models.n_sid, changes)
        else:
            step = np.concatenate(
                [self._step(j, a, b) for j, (a, b) in enumerate(zip(src.node, node, strict=True))]
            )
            t = rollup(src, node, step, sizes, self._fixed, self.models.n_sid)
        self._remember(t)
        return t

    def _remember(self, t: Table) -> None:
        size = t.nbytes
        if size > self.cache_bytes // 4:
            return
        while self._cache and (self._bytes + size > self.cache_bytes or not self._free):
            old_node, old = self._cache.popitem(last=False)
            self._bytes -= old.nbytes
            slot = self._slot.pop(old_node)
            self._costs[slot] = np.iinfo(np.int64).max
            self._free.append(slot)
        if not self._free:  # pragma: no cover - only when cache_bytes is tiny
            return
        slot = self._free.pop()
        self._cache[t.node] = t
        self._slot[t.node] = slot
        self._slot_node[slot] = t.node
        self._levels[slot] = t.node
        self._costs[slot] = t.cost
        self._bytes += size

    def evaluate(self, node: tuple[int, ...], source: Table | None = None) -> Evaluation:
        t = self.table(node, source)
        gen = None
        if self.share_sums is not None:
            gen = sum(float(g[lvl]) for g, lvl in zip(self.share_sums, node, strict=True))
        st = self.models.evaluate(t, self.shares(node), gen)
        self.evaluations += 1
        return Evaluation(node, t, st, st.suppressed_persons <= self.models.max_suppressed)


@dataclass
class SearchResult:
    node: tuple[int, ...]
    share_total: float  # the score under the model (granularity: Σ of shares, unnormalized)
    evaluation: Evaluation
    nodes: int
    evaluated: int
    optimal: bool = True  # False: a budget stopped the search (best node found so far)


def search(
    ev: Evaluator,
    share_sums: list[np.ndarray],
    known_failing: Iterable[tuple[int, ...]] = (),
    rel_tol: float = 1e-9,
    model: QualityModel | None = None,
    down_deltas: Iterable[tuple[int, int, np.ndarray]] = (),
    budget_evaluations: int | None = None,
    budget_seconds: float | None = None,
) -> SearchResult:
    """The satisfying node of least score under ``model`` (default: the granularity loss; see
    the module docstring for the method).

    ``known_failing``: nodes already known to fail (e.g. from projections); their down-sets are
    tagged before the search starts. ``down_deltas`` (granularity only, see
    :func:`.projections.plain_deltas`): per QI pair, loss that suppression adds below each
    projection node, raised into the bounds of its down-set.

    With a budget (``budget_evaluations`` node evaluations or ``budget_seconds``), the search is
    a heuristic for lattices too large to search optimally: a greedy descent from the top node
    (repeatedly the best-scoring satisfying child, one QI one level down) gives a satisfying node
    first, then the exact search runs until the budget is spent and returns the best node found;
    ``SearchResult.optimal`` says whether the search finished (then the result is exact).
    ``share_sums`` (``G[q][l]``) give the lattice's shape and,
    for models without a static bound, the order of the visit.
    """
    if model is None:
        model = Granularity()
        model.prepare(Context(ev.qis, ev.base, share_sums, int(ev.base.rows.sum())))
    shape = tuple(len(g) for g in share_sums)
    n_q = len(shape)
    grid = np.indices(shape).reshape(n_q, -1)
    n_nodes = grid.shape[1]
    surrogate = np.zeros(n_nodes)
    for q in range(n_q):
        surrogate += share_sums[q][grid[q]]
    static = model.bounds(grid)
    # with a static lower bound the visit follows it and stops at the first bound above the best
    # score; without one (or with a constant one) it follows the granularity bound and stops
    # only when every node is done
    ordered_by_bound = static is not None and bool(np.ptp(static) > 0)
    lb = np.asarray(static, dtype=np.float64) if static is not None else np.full(n_nodes, -np.inf)
    key = lb if ordered_by_bound else surrogate
    height = grid.sum(axis=0)
    # stable: equal (key, height) keep flat order, which is the lexicographic order of levels
    order = np.lexsort((height, key))
    finite = np.abs(lb[np.isfinite(lb)])
    tol = rel_tol * max(1.0, float(finite.max()) if len(finite) else 1.0)

    status = np.zeros(n_nodes, dtype=np.int8)
    done = np.zeros(n_nodes, dtype=bool)  # evaluated, or known unable to beat the best
    bound = lb.copy()
    views = {
        name: a.reshape(shape)
        for name, a in (("status", status), ("done", done), ("bound", bound), ("lb", lb))
    }
    strides = [int(np.prod(shape[q + 1 :])) for q in range(n_q)]

    best: list = [np.inf, None, None]  # share_total, node, evaluation

    def flat(node: tuple[int, ...]) -> int:
        return sum(map(operator.mul, strides, node))

    def down(node: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(0, lvl + 1) for lvl in node)

    def up(node: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(lvl, None) for lvl in node)

    def rank(node: tuple[int, ...]) -> tuple:
        return (sum(node), node)

    def beats(total: float, node: tuple[int, ...]) -> bool:
        if total < best[0] - tol:
            return True
        return total <= best[0] + tol and rank(node) < rank(best[1])

    def may_beat(bnd: float, node: tuple[int, ...]) -> bool:
        if best[1] is None or bnd < best[0] - tol:
            return True
        return bnd <= best[0] + tol and rank(node) < rank(best[1])

    monotone = ev.models.monotone

    def fails_down(e: Evaluation) -> bool:
        """Does every node below ``e.node`` fail? (Without monotone models: if the monotone
        ones alone already exceed the limit.)"""
        if monotone:
            return not e.sat
        return e.stats.mono_suppressed_persons > ev.models.max_suppressed

    def record(e: Evaluation) -> None:
        i = flat(e.node)
        done[i] = True
        if not e.sat:
            if fails_down(e):
                views["status"][down(e.node)] = FAIL
            return
        if monotone:
            views["status"][up(e.node)] = SAT
        total = model.score(e.node, e.table, e.stats)
        if beats(total, e.node):
            best[:] = [total, e.node, e]
        above = model.up_bound(e.node, e.table, e.stats)
        if above is not None:
            su = up(e.node)
            np.maximum(views["bound"][su], above, out=views["bound"][su])
        if e.stats.suppressed_rows == 0:
            if model.clean_up_closed:
                # above it nothing is suppressed either, the score only grows with
                # generalization, and they rank lower
                views["done"][up(e.node)] = True
        elif monotone:  # below it, at least these records are suppressed
            delta = model.down_delta(e.stats)
            if delta > 0:
                sl = down(e.node)
                np.maximum(views["bound"][sl], views["lb"][sl] + delta, out=views["bound"][sl])

    def climb(start: tuple[int, ...], src: Table | None) -> bool:
        """Raise QIs one at a time from ``start`` while the result fails; True if it ever did.

        ``src`` is ``start``'s table when ``start`` was evaluated (and failed); with None the
        start itself is unknown and each step rolls up from the cheapest cached table.
        """
        cur = list(start)
        failed = False
        for q in range(n_q):
            while cur[q] + 1 < shape[q]:
                nxt = list(cur)
                nxt[q] += 1
                i = flat(tuple(nxt))
                if status[i] == SAT:
                    break
                if status[i] == FAIL:
                    cur, failed = nxt, True
                    continue
                ez = ev.evaluate(tuple(nxt), source=src)
                record(ez)
                if not fails_down(ez):
                    break
                cur, src, failed = nxt, ez.table, True
        return failed

    def refloor() -> None:
        # every node still to evaluate is above this floor: roll the base table up to it
        alive = (status != FAIL) & ~done & (bound <= best[0] + tol)
        if alive.any():
            ev.rebase(tuple(int(grid[q][alive].min()) for q in range(n_q)))

    for node in known_failing:
        views["status"][down(node)] = FAIL
    if ev.models.max_suppressed >= ev.models.total_persons:
        status[:] = SAT  # anything may be suppressed: every node satisfies, nothing to climb
    for q, r, delta in down_deltas:
        for lq in range(delta.shape[0]):
            for lr in range(delta.shape[1]):
                d = float(delta[lq, lr])
                if d > 0:
                    sl = [slice(None)] * n_q
                    sl[q], sl[r] = slice(0, lq + 1), slice(0, lr + 1)
                    sl = tuple(sl)
                    np.maximum(views["bound"][sl], views["lb"][sl] + d, out=views["bound"][sl])
    t_start = time.perf_counter()
    budgeted = budget_evaluations is not None or budget_seconds is not None

    def spent() -> bool:
        if budget_evaluations is not None and ev.evaluations >= budget_evaluations:
            return True
        return budget_seconds is not None and time.perf_counter() - t_start >= budget_seconds

    if budgeted:
        # greedy descent: a satisfying node (and an incumbent that bounds the rest) quickly
        cur = tuple(s - 1 for s in shape)
        e = ev.evaluate(cur)
        record(e)
        while e.sat:
            children = []
            for q in range(n_q):
                if cur[q] == 0:
                    continue
                child = cur[:q] + (cur[q] - 1,) + cur[q + 1 :]
                if status[flat(child)] == FAIL:
                    continue
                ec = ev.evaluate(child)
                record(ec)
                if ec.sat:
                    children.append((model.score(ec.node, ec.table, ec.stats), rank(child), ec))
            if not children:
                break
            e = min(children, key=lambda c: c[:2])[2]
            cur = e.node

    refloor()
    candidates = 0
    optimal = True

    key_sorted = key[order]
    pos = 0
    while True:
        # next node in key order that is not failing, not done and whose bound may beat the best
        if ordered_by_bound:
            stop = int(np.searchsorted(key_sorted, best[0] + tol, side="right"))
        else:
            stop = n_nodes
        if pos >= stop:
            break
        if budgeted and best[1] is not None and spent():
            optimal = False
            break
        chunk = order[pos : min(pos + 512, stop)]
        live = (status[chunk] != FAIL) & ~done[chunk] & (bound[chunk] <= best[0] + tol)
        if not live.any():
            pos += len(chunk)
            continue
        j = int(np.argmax(live))
        pos += j
        i = chunk[j]
        node = tuple(int(v) for v in grid[:, i])
        if not may_beat(float(bound[i]), node):
            done[i] = True
            continue
        # climb first: a failing node above it covers it without evaluating it (the usual case
        # for the low nodes visited here); only if every successor satisfies is it evaluated
        if not climb(node, None) and status[i] != FAIL:
            e = ev.evaluate(node)
            record(e)
        candidates += 1
        if candidates % 8 == 0:
            refloor()

    if best[1] is None:
        raise ValueError(
            "no transformation satisfies the privacy models within the suppression limit "
            "(k larger than the number of persons, or l larger than a sensitive column's values?)"
        )
    return SearchResult(best[1], best[0], best[2], n_nodes, ev.evaluations, optimal)
