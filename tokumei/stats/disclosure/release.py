"""One linear system per release, built from the tables' declared relations alone.

Why one system: suppression is safe only against the relations the protector knows. Per-table
margins missed that the weight and body-fat bands of ``measurement_trends`` partition the same
persons (issue 15, finding 1: 32 suppressed cells recovered exactly while the per-table audit said
``ok``), and period tables were checked against their days by hand-written bounds. Here every
relation comes from the declarations (``TableSpec.relations``, see
:mod:`tokumei.stats.disclosure.relations`), and all of them go into one system:

- **variables**: every count cell and every summed amount of every table of the release, the
  cells of earlier published releases that a relation links (the daily releases of a week or
  month), each with a box: a published value is fixed (or its rounding interval), a suppressed
  cell lies in ``[0, min_cell - 1]`` when the primary rule hid it (the attacker is *told* which
  ones: the worst case) and in ``[0, inf)`` otherwise;
- **rows**: the relations, ``lo <= a.x <= hi``.

The system splits into connected components (a cell without a relation is its own component and
costs nothing), so completing tables on full public grids, which adds thousands of suppressed
zeros, keeps the audit cheap. :func:`protect` adds complementary suppressions until the LP
attacker (:func:`intervals`, HiGHS through ``scipy.optimize.linprog``) leaves every suppressed
cell at least the protection range of candidate values; :func:`audit` rebuilds the system from
the *published* frames and attacks it again, independently of how the cells were chosen.

Limits (ADR 0001): the attacker is an LP relaxation (an integer attacker can be narrower in rare
cases); means and medians are not in the linear system (magnitude rules cover them); relations
that hold only approximately (a person changing age band within a month) are not declared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from tokumei.stats.disclosure.relations import (
    Aggregate,
    Equal,
    Order,
    Printed,
    SamePersons,
    UndeclaredRelationsError,
    WithinDay,
)
from tokumei.stats.disclosure.rounding import rounding_interval

#: Stand-in for "unbounded above" in the LPs: a solution at or above half of it is unbounded.
BIG = 1e9
_EPS = 1e-6
_BATCH_ROUNDS = 8
#: Rounding unit of published amounts (``total_amount_jpy`` is rounded to 1,000 JPY).
AMOUNT_UNIT = 1000
#: Counts of one row that are always suppressed together (one ``suppressed`` flag per row).
_TOGETHER: dict[str, tuple[str, ...]] = {"sessions": ("persons", "sessions")}

Loader = Callable[[str, date], pl.DataFrame | None]


def _no_earlier(name: str, day: date) -> pl.DataFrame | None:
    return None


@dataclass
class System:
    """The release's variables (one per cell) and relation rows (``lo <= a.x <= hi``)."""

    threshold: int
    table: list[str] = field(default_factory=list)
    column: list[str] = field(default_factory=list)
    row: list[int] = field(default_factory=list)
    day: list[str] = field(default_factory=list)
    current: list[bool] = field(default_factory=list)
    owner: list[str] = field(default_factory=list)
    amount: list[bool] = field(default_factory=list)
    published: list[float] = field(default_factory=list)
    truth: list[float] = field(default_factory=list)
    #: (table, column) -> var id per row of the current frame
    ids: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    rows: list[dict[int, float]] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)
    #: relation label of each row (``table: label``), for error messages and the checks
    row_label: list[str] = field(default_factory=list)
    adding: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    labels: dict[str, list[str]] = field(default_factory=dict)
    rounding_base: int = 1
    #: Whether this release's own counts are published rounded (False while protecting: the
    #: rounding comes after; earlier releases are always read as published, i.e. rounded).
    round_current: bool = True
    #: Variables of the connected components where the earlier releases contradict "every
    #: suppressed cell there is primary" (a cell hidden by another rule, e.g. kept from an
    #: earlier run of the day): the earlier suppressed cells *of those components only* are
    #: then [0, inf); elsewhere the attacker keeps the primary reading (see :func:`intervals`).
    relaxed_vars: np.ndarray | None = None
    complements: dict[str, bool] = field(default_factory=dict)
    #: Latent quantities (a day's total of a table, :class:`WithinDay`): variables of the
    #: system that are no published cell, so never a target, a complement or told primary.
    latent: list[bool] = field(default_factory=list)
    #: Group of a band distribution (``diversity.DISTRIBUTIONS``) each count cell belongs to,
    #: -1 for none. A group whose counts are all suppressed is *hidden whole*: the diversity
    #: rule or small counts, which the attacker cannot tell apart (see :meth:`boxes`).
    group: list[int] = field(default_factory=list)
    n_groups: int = 0

    # -- building ------------------------------------------------------------------------------

    def add_vars(
        self,
        name: str,
        frame: pl.DataFrame,
        column: str,
        *,
        current: bool,
        owner: str,
        amount: bool,
        truth: np.ndarray | None = None,
        latent: bool = False,
    ) -> np.ndarray:
        """One variable per row of ``frame[column]``; returns their ids."""
        start = len(self.table)
        n = frame.height
        self.latent += [latent] * n
        self.group += self._groups(name, frame, column)
        vals = frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        days = frame["date"].cast(pl.String).to_list() if "date" in frame.columns else [""] * n
        self.table += [name] * n
        self.column += [column] * n
        self.row += list(range(n))
        self.day += days
        self.current += [current] * n
        self.owner += [owner] * n
        self.amount += [amount] * n
        self.published += vals.tolist()
        self.truth += (truth if truth is not None else np.full(n, np.nan)).tolist()
        return np.arange(start, start + n)

    @property
    def relaxed(self) -> bool:
        """Whether some earlier suppressed cells are no longer read as primary."""
        return self.relaxed_vars is not None and bool(self.relaxed_vars.any())

    def _groups(self, name: str, frame: pl.DataFrame, column: str) -> list[int]:
        """Distribution group ids of the rows (fresh ids per frame), or -1 each."""
        from tokumei.stats.disclosure.diversity import DISTRIBUTIONS

        dist = DISTRIBUTIONS.get(name)
        keys = [*dist.group, *dist.by] if dist is not None else []
        if dist is None or column != dist.count or not set(keys) <= set(frame.columns):
            return [-1] * frame.height
        local = frame.select(pl.struct(keys).rank("dense").cast(pl.Int64) - 1).to_series()
        ids = (local + self.n_groups).to_list()
        self.n_groups += int(local.max() or 0) + 1 if frame.height else 0
        return ids

    def hidden_whole(self, suppressed: np.ndarray) -> np.ndarray:
        """Per variable: a count cell of a distribution group whose counts are all suppressed."""
        g = np.asarray(self.group, dtype=np.int64)
        member = g >= 0
        if not member.any():
            return np.zeros(self.n, dtype=bool)
        shown = np.bincount(g[member], weights=~suppressed[member], minlength=self.n_groups)
        out = np.zeros(self.n, dtype=bool)
        out[member] = shown[g[member]] == 0
        return out

    def add_row(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        """One relation row; rows without a variable are dropped."""
        coefs = {k: v for k, v in coefs.items() if v != 0}
        if coefs:
            self.rows.append(coefs)
            self.lo.append(lo)
            self.hi.append(hi)
            self.row_label.append(self.adding)

    @property
    def n(self) -> int:
        """Number of variables."""
        return len(self.table)

    def matrix(self) -> sparse.csr_matrix:
        """Rows x variables (built once per shape; the system does not change once built)."""
        key = (len(self.rows), self.n)
        if self._cache.get("matrix_key") != key:
            r, c, v = [], [], []
            for i, row in enumerate(self.rows):
                for k, a in row.items():
                    r.append(i)
                    c.append(k)
                    v.append(a)
            self._cache.clear()
            self._cache["matrix_key"] = key
            self._cache["matrix"] = sparse.csr_matrix((v, (r, c)), shape=key)
        return self._cache["matrix"]

    # -- boxes ---------------------------------------------------------------------------------

    def boxes(self, suppressed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The attacker's bounds per variable given the suppression pattern."""
        pub = np.asarray(self.published)
        truth = np.asarray(self.truth)
        amount = np.asarray(self.amount)
        t = self.threshold
        lo = np.zeros(self.n)
        hi = np.full(self.n, BIG)
        known = ~suppressed
        exact = np.where(np.isnan(pub), truth, pub)
        c_down, c_up = rounding_interval(self.rounding_base) if self.rounding_base > 1 else (0, 0)
        a_down, a_up = rounding_interval(AMOUNT_UNIT)
        down = np.where(amount, a_down, c_down)
        up = np.where(amount, a_up, c_up)
        if not self.round_current:
            exact_now = np.asarray(self.current) & ~amount
            down = np.where(exact_now, 0, down)
            up = np.where(exact_now, 0, up)
        lo[known] = np.maximum(exact[known] - down[known], 0.0)
        hi[known] = exact[known] + up[known]
        # primary rule: told to the attacker (worst case); unknown truth (an earlier release of a
        # table without complements) means every suppressed cell there is primary
        primary = suppressed & ~amount & ~(truth >= t) & ~np.asarray(self.latent, dtype=bool)
        # an earlier distribution group hidden whole was hidden either for small counts or by
        # the diversity rule (a group with a band of min_cell or more): the attacker cannot
        # tell which, so its cells are [0, inf), not told primary (ADR 0002)
        primary &= ~(self.hidden_whole(suppressed) & ~np.asarray(self.current))
        if self.relaxed_vars is not None:  # see intervals(): an earlier cell hid more
            unknown = np.isnan(truth) & ~np.asarray(self.current)
            primary &= ~(unknown & self.relaxed_vars)
        hi[primary] = t - 1
        return lo, hi

    def required(self) -> np.ndarray:
        """Candidate values each suppressed cell must keep: min_cell (x 1,000 JPY for amounts);
        none for a latent quantity (it is no cell)."""
        req = np.where(np.asarray(self.amount), self.threshold * AMOUNT_UNIT, self.threshold)
        return np.where(np.asarray(self.latent, dtype=bool), 0, req)


def _rowids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index("_r")


def _key_groups(frame: pl.DataFrame, key: list[str], ids: np.ndarray) -> pl.DataFrame:
    """Per key value, the list of var ids."""
    f = frame.select(key).with_columns(pl.Series("_v", ids))
    return f.group_by(key, maintain_order=True).agg(pl.col("_v"))


def _period_days(spec_release: str, day: date) -> list[date]:
    from tokumei.stats.periods import month_of, week_of

    period = week_of(day) if spec_release == "weekly" else month_of(day)
    return period.days()


def build(
    frames: dict[str, pl.DataFrame],
    threshold: int,
    *,
    truth: dict[str, pl.DataFrame] | None = None,
    earlier: Loader = _no_earlier,
    printed: dict[str, float] | None = None,
    rounding_base: int = 1,
    noisy: frozenset[str] = frozenset(),
    specs: dict[str, Any] | None = None,
    round_current: bool = True,
) -> System:
    """The system of a release from the declarations of ``specs`` (default: ``TABLES``).

    ``frames`` are the tables as about to be published (null = suppressed), all of one date.
    ``truth`` (optional) holds the unsuppressed values per table, keyed by the non-date dims;
    cells missing there are 0. ``earlier(name, day)`` loads an earlier published release.
    ``printed`` maps a source to the count the manifest prints as its kept rows. Relations
    touching a ``noisy`` (differentially private) table are not added: its values are noisy.
    """
    specs = _specs(specs)
    sys_ = System(threshold=threshold, rounding_base=rounding_base, round_current=round_current)
    for name in frames:
        if name not in specs or specs[name].relations is None:
            raise UndeclaredRelationsError(
                f"table {name}: no declared relations (TableSpec.relations); not publishable"
            )
    for name, df in frames.items():
        spec = specs[name]
        sys_.complements[name] = spec.complements
        sys_.labels[name] = [r.label for r in spec.relations]
        dims = [d for d in spec.dims if d != "date"]
        tru = None
        if truth is not None and name in truth:
            tru = df.select(dims).join(
                truth[name], on=dims, how="left", nulls_equal=True, maintain_order="left"
            )
        amounts = [m for m, kind in spec.magnitudes if kind == "sum"]
        for col in (*spec.counts, *amounts):
            t_col = (
                tru[col].cast(pl.Float64).fill_null(0.0).to_numpy()
                if tru is not None and col in tru.columns
                else None
            )
            sys_.ids[(name, col)] = sys_.add_vars(
                name, df, col, current=True, owner=name, amount=col in amounts, truth=t_col
            )
    for name, df in frames.items():
        spec = specs[name]
        for rel in spec.relations:
            if name in noisy:
                continue
            sys_.adding = f"{name}: {rel.label}"
            _add_relation(sys_, name, df, rel, frames, specs, earlier, printed or {}, noisy)
    return sys_


def _add_relation(
    s: System,
    name: str,
    df: pl.DataFrame,
    rel: Any,
    frames: dict[str, pl.DataFrame],
    specs: dict[str, Any],
    earlier: Loader,
    printed: dict[str, float],
    noisy: frozenset[str],
) -> None:
    if isinstance(rel, Order):
        cols = [s.ids[(name, c)] for c in rel.columns]
        for a, b in zip(cols, cols[1:], strict=False):
            for i, j in zip(a.tolist(), b.tolist(), strict=True):
                s.add_row({j: 1.0, i: -1.0}, -math.inf, 0.0)  # later <= earlier
    elif isinstance(rel, Equal):
        ids = s.ids[(name, rel.column)]
        for vs in _key_groups(df, list(rel.key), ids)["_v"].to_list():
            for j in vs[1:]:
                s.add_row({vs[0]: 1.0, j: -1.0}, 0.0, 0.0)
    elif isinstance(rel, Printed):
        if rel.source in printed:
            ids = s.ids[(name, rel.column)]
            s.add_row({int(i): 1.0 for i in ids}, 0.0, float(printed[rel.source]))
    elif isinstance(rel, SamePersons):
        ids = s.ids[(name, rel.column)]
        truth = np.asarray(s.truth)
        parts = _key_groups(df, [*rel.group, rel.split], ids)
        for _, grp in parts.group_by(list(rel.group), maintain_order=True):
            lists = grp["_v"].to_list()
            for a, b in zip(lists, lists[1:], strict=False):
                d = float(truth[a].sum() - truth[b].sum())
                if math.isnan(d):
                    continue  # unknown difference (no truth): no tie (documented limit)
                coefs = {int(i): 1.0 for i in a}
                for j in b:
                    coefs[int(j)] = coefs.get(int(j), 0.0) - 1.0
                s.add_row(coefs, d, d)
    elif isinstance(rel, Aggregate):
        _add_aggregate(s, name, df, rel, frames, specs, earlier, noisy)
    elif isinstance(rel, WithinDay):
        total = _day_total(s, rel.table, rel.table_column, frames, noisy)
        if total is not None:
            for i in s.ids[(name, rel.column)].tolist():
                s.add_row({int(i): 1.0, total: -1.0}, -math.inf, 0.0)
    else:  # pragma: no cover - a new relation type must be handled here
        raise UndeclaredRelationsError(f"table {name}: unknown relation type {type(rel).__name__}")


def _add_aggregate(
    s: System,
    name: str,
    df: pl.DataFrame,
    rel: Aggregate,
    frames: dict[str, pl.DataFrame],
    specs: dict[str, Any],
    earlier: Loader,
    noisy: frozenset[str],
) -> None:
    key = list(rel.key)
    tot_ids = s.ids[(name, rel.column)]
    mcol = rel.member_column or rel.column
    if rel.members is None:
        dim, value = rel.total_rows  # type: ignore[misc]
        is_tot = (df[dim] == value).to_numpy()
        key = ["date", *key] if "date" in df.columns else key
        totals = _key_groups(df.filter(pl.Series(is_tot)), key, tot_ids[is_tot])
        members = _key_groups(df.filter(pl.Series(~is_tot)), key, s.ids[(name, mcol)][~is_tot])
    else:
        if rel.members in noisy:
            return
        spec = specs[name]
        m_amount = any(m == mcol and k == "sum" for m, k in specs[rel.members].magnitudes)
        if rel.over_days:
            day = date.fromisoformat(str(df["date"][0])) if df.height else None
            if day is None:
                return
            loaded: list[tuple[pl.DataFrame, np.ndarray]] = []
            for d in _period_days(spec.release, day):
                got = _member_frame(s, rel.members, mcol, d, frames, earlier, name, m_amount)
                if got is None:
                    return  # a day not published: the sum is unbounded, the relation is void
                loaded.append(got)
            mframe = pl.concat([f.select(key) for f, _ in loaded], how="vertical_relaxed")
            mids = np.concatenate([i for _, i in loaded])
            totals = _key_groups(df, key, tot_ids)
            members = _key_groups(mframe, key, mids)
        else:
            day = date.fromisoformat(str(df["date"][0])) if df.height else None
            if day is None:
                return
            got = _member_frame(s, rel.members, mcol, day, frames, earlier, name, m_amount)
            if got is None:
                return
            mframe, mids = got
            totals = _key_groups(df, key, tot_ids)
            members = _key_groups(mframe, key, mids)
    joined = totals.join(
        members.rename({"_v": "_m"}), on=key, how="left", nulls_equal=True, maintain_order="left"
    )
    for tvs, mvs in joined.select("_v", "_m").iter_rows():
        mvs = mvs or []
        for t in tvs:
            coefs = {int(t): 1.0}
            for m in mvs:
                coefs[int(m)] = coefs.get(int(m), 0.0) - 1.0
            if rel.kind == "sum":
                s.add_row(coefs, 0.0, 0.0)
            else:  # total <= sum(members)
                s.add_row(coefs, -math.inf, 0.0)
            if rel.kind == "union":
                for m in mvs:
                    s.add_row({int(m): 1.0, int(t): -1.0}, -math.inf, 0.0)


def _day_total(
    s: System, table: str, column: str, frames: dict[str, pl.DataFrame], noisy: frozenset[str]
) -> int | None:
    """A latent variable ``z <= sum(table.column)`` over this release's day, or None when the
    table is not in the release or is noisy (no exact sum).

    ``cell <= z <= sum`` says exactly ``cell <= sum`` for every cell; an inequality, not
    ``z = sum``, so that the attacker's ratio test can still move one cell of the day alone
    (an equality row has no slack, which sent every DAU cell to its own LPs: 20x slower).
    """
    key = (f"{table}#day_total", column)
    if key in s.ids:
        return int(s.ids[key][0])
    frame = frames.get(table)
    if frame is None or frame.height == 0 or table in noisy:
        return None
    cells = s.ids[(table, column)]
    t = np.asarray(s.truth, dtype=float)[cells]
    total = pl.DataFrame({"date": [frame["date"][0]], column: [None]}).with_columns(
        pl.col(column).cast(pl.Float64)
    )
    ids = s.add_vars(
        key[0],
        total,
        column,
        current=True,
        owner="",
        amount=False,
        truth=np.array([t.sum() if not np.isnan(t).any() else np.nan]),
        latent=True,
    )
    s.ids[key] = ids
    coefs = {int(ids[0]): 1.0}
    for c in cells.tolist():
        coefs[int(c)] = -1.0
    s.add_row(coefs, -math.inf, 0.0)
    return int(ids[0])


def _member_frame(
    s: System,
    table: str,
    column: str,
    day: date,
    frames: dict[str, pl.DataFrame],
    earlier: Loader,
    owner: str,
    amount: bool,
) -> tuple[pl.DataFrame, np.ndarray] | None:
    """Member cells of ``table`` for ``day``: this release's frame or an earlier release."""
    cur = frames.get(table)
    if cur is not None and cur.height and str(cur["date"][0]) == day.isoformat():
        return cur, s.ids[(table, column)]
    cache = s.ids.get((f"{table}@{day.isoformat()}", column))
    frame = earlier(table, day)
    if frame is None:
        return None
    if cache is None:
        cache = s.add_vars(table, frame, column, current=False, owner=owner, amount=amount)
        s.ids[(f"{table}@{day.isoformat()}", column)] = cache
    return frame, cache


def violated(s: System) -> list[str]:
    """Relation labels whose rows the known values break (sorted, unique).

    Known = the unsuppressed values where given (``truth``), else the published ones; a row
    with an unknown variable is not checked (earlier releases' suppressed cells). A declared
    relation that does not hold would make the attacker model wrong, so callers fail closed.
    """
    pub = np.asarray(s.published, dtype=float)
    truth = np.asarray(s.truth, dtype=float)
    x = np.where(np.isnan(truth), pub, truth)
    amount = np.asarray(s.amount)
    # published amounts are rounded to 1,000 JPY: allow the rounding per published amount
    tol = np.where(amount & np.isnan(truth), AMOUNT_UNIT, 0.0)
    if s.rounding_base > 1:
        tol = np.where(~amount & np.isnan(truth), s.rounding_base, tol)
    bad: set[str] = set()
    for i, row in enumerate(s.rows):
        ids = np.fromiter(row.keys(), dtype=np.int64)
        vals = x[ids]
        if np.isnan(vals).any():
            continue
        a = np.fromiter(row.values(), dtype=float)
        act = float(a @ vals)
        slack = float(np.abs(a) @ tol[ids]) + _EPS
        if act < s.lo[i] - slack or act > s.hi[i] + slack:
            bad.add(s.row_label[i])
    return sorted(bad)


# ---------------------------------------------------------------------------------------------
# The attacker


def components(s: System) -> tuple[int, np.ndarray]:
    """Connected components of the variables (two variables meet when a row holds both)."""
    if "components" in s._cache and s._cache.get("matrix_key") == (len(s.rows), s.n):
        return s._cache["components"]
    a = s.matrix()
    m = a.shape[0]
    inc = sparse.csr_matrix(
        (np.ones(a.nnz), a.indices, a.indptr), shape=(m, s.n)
    )  # rows x vars, 0/1
    graph = sparse.bmat([[None, inc], [inc.T, None]]).tocsr() if m else None
    if graph is None:
        return s.n, np.arange(s.n)
    k, labels = connected_components(graph, directed=False)
    s._cache["components"] = (k, labels[m:])
    return k, labels[m:]


@dataclass
class _LP:
    a_ub: sparse.csr_matrix
    b_ub: np.ndarray
    a_eq: sparse.csr_matrix
    b_eq: np.ndarray


def _lp(a: sparse.csr_matrix, lo: np.ndarray, hi: np.ndarray) -> _LP:
    eq = lo == hi
    up = ~eq & np.isfinite(hi)
    dn = ~eq & np.isfinite(lo)
    a_ub = sparse.vstack([a[up], -a[dn]]).tocsr()
    b_ub = np.concatenate([hi[up], -lo[dn]])
    return _LP(a_ub, b_ub, a[eq].tocsr(), lo[eq])


def _solve(lp: _LP, c: np.ndarray, bounds: np.ndarray) -> tuple[int, np.ndarray | None]:
    """Status (0 optimal, 2 infeasible, …) and a basic optimal point of one attacker LP.

    HiGHS's interior-point solver with crossover (a vertex, as the simplex gives) instead of
    its dual simplex: the audit's ~300 LPs of a day cost 1.3 instead of 4.5 CPU-s (a 500-person
    day) and 2.2 instead of 4.5 (the 10M-event day), with the same published tables on both
    days and the reference run. What the audit decides does not depend on which optimal point
    comes back: the intervals are the optima, and a point only widens inner bounds.
    """
    kw: dict[str, Any] = {"bounds": bounds, "method": "highs-ipm"}
    if lp.a_ub.shape[0]:
        kw |= {"A_ub": lp.a_ub, "b_ub": lp.b_ub}
    if lp.a_eq.shape[0]:
        kw |= {"A_eq": lp.a_eq, "b_eq": lp.b_eq}
    res = linprog(c, **kw)
    return res.status, (res.x if res.status == 0 else None)


class InconsistentReleaseError(ValueError):
    """The published values contradict the declared relations (a relation is wrong)."""


def intervals(
    s: System,
    suppressed: np.ndarray,
    targets: np.ndarray,
    *,
    required: np.ndarray | None = None,
    seen: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The attacker's [lo, hi] (integers; ``inf`` when unbounded) for each target variable.

    Knows: every published value (or its rounding interval), the primary rule on the cells it
    hid, nonnegativity and every declared relation; nothing about how complements were chosen.
    ``required`` (per target) lets a target stop as soon as known feasible points already span
    that many values (then [lo, hi] is only an inner bound; used by :func:`protect`). ``seen``
    carries per-variable ranges of feasible points between calls.
    """
    box_lo, box_hi = s.boxes(suppressed)
    a = s.matrix()
    row_lo, row_hi = np.asarray(s.lo, dtype=float), np.asarray(s.hi, dtype=float)
    _, comp = components(s)
    if seen is None:
        seen = (np.full(s.n, np.inf), np.full(s.n, -np.inf))
    seen_lo, seen_hi = seen
    out_lo = box_lo[targets].copy()
    out_hi = box_hi[targets].copy()
    # only components holding a target; others are irrelevant
    wanted = np.isin(comp, np.unique(comp[targets]))
    rows_wanted = np.zeros(a.shape[0], dtype=bool)
    if a.shape[0]:
        coo = a.tocoo()
        rows_wanted[coo.row[wanted[coo.col]]] = True
    # a target in a component without rows keeps its box
    has_rows = np.zeros(s.n, dtype=bool)
    if a.shape[0]:
        has_rows[np.unique(a.indices)] = True
    active = targets[has_rows[targets]]
    if active.size == 0:
        return _rounded(out_lo, out_hi)
    vars_ = np.flatnonzero(wanted & has_rows)
    col = np.full(s.n, -1)
    col[vars_] = np.arange(vars_.size)
    sub = a[rows_wanted][:, vars_].tocsr()
    bounds = np.column_stack([box_lo[vars_], box_hi[vars_]])
    req = required if required is not None else np.full(targets.size, np.inf)
    req_of = np.full(s.n, np.inf)
    req_of[targets] = req

    sub_lo, sub_hi = row_lo[rows_wanted], row_hi[rows_wanted]
    row_comp = comp[vars_[sub.indices[sub.indptr[:-1]]]] if sub.shape[0] else np.zeros(0, int)
    var_comp = comp[vars_]

    def part(keep: np.ndarray) -> tuple[np.ndarray, sparse.csr_matrix, np.ndarray, np.ndarray]:
        """Members (positions in vars_) and rows of the components in ``keep``."""
        members = np.flatnonzero(np.isin(var_comp, keep))
        rsub = np.flatnonzero(np.isin(row_comp, keep))
        return members, sub[rsub][:, members].tocsr(), sub_lo[rsub], sub_hi[rsub]

    def run(
        members: np.ndarray,
        k_a: sparse.csr_matrix,
        k_lo: np.ndarray,
        k_hi: np.ndarray,
        c: np.ndarray,
        lp_k: _LP | None = None,
    ) -> int:
        """Solve on these components; note the point and its ratio-test moves as seen."""
        status, x = _solve(lp_k or _lp(k_a, k_lo, k_hi), c, bounds[members])
        if x is not None:
            # x is feasible, and so is x with any one coordinate moved within its reach
            down, up = _reach(k_a, k_a.tocoo(), k_lo, k_hi, x, bounds[members])
            ids = vars_[members]
            seen_lo[ids] = np.minimum(seen_lo[ids], x - down)
            seen_hi[ids] = np.maximum(seen_hi[ids], x + up)
        return status

    def open_cells(side: str) -> np.ndarray:
        t = active
        inner = np.floor(seen_hi[t] + _EPS) - np.ceil(seen_lo[t] - _EPS) + 1
        todo = ~(inner >= req_of[t])
        if side == "lo":
            return t[todo & (seen_lo[t] > box_lo[t] + _EPS)]
        return t[todo & (seen_hi[t] < np.minimum(box_hi[t], BIG / 2) - _EPS)]

    # Batch phase: one LP over the components that still hold open cells pushes many cells to
    # their bounds at once (min / max of their sum); the first one, over every component, also
    # proves the publication consistent.
    first = True
    for side, sign in (("lo", 1.0), ("hi", -1.0)):
        for _ in range(_BATCH_ROUNDS):
            cells = open_cells(side)
            if cells.size < 2 and not first:
                break
            keep = np.unique(comp[active if first else cells])
            members, k_a, k_lo, k_hi = part(keep)
            c = np.zeros(members.size)
            c[np.searchsorted(members, col[cells])] = sign
            status = run(members, k_a, k_lo, k_hi, c)
            if first and status == 2 and _earlier_hidden(s, suppressed):
                # a weaker, true attacker instead of a false assumption, on the components
                # the assumption contradicts (each solved alone for feasibility)
                bad = [
                    k
                    for k in keep.tolist()
                    if _infeasible(s, comp, k, part, bounds, suppressed)
                ]
                mask = np.isin(comp, bad) if bad else np.zeros(s.n, dtype=bool)
                prev = s.relaxed_vars if s.relaxed_vars is not None else np.zeros(s.n, bool)
                if (mask & ~prev).any():
                    s.relaxed_vars = prev | mask
                    return intervals(s, suppressed, targets, required=required, seen=seen)
            if first and status == 2:
                raise InconsistentReleaseError(
                    "the published values contradict the declared relations of "
                    + ", ".join(sorted({s.table[i] for i in active.tolist()}))
                )
            first = False
            if status != 0 or open_cells(side).size > cells.size - 2:
                break
    # per-cell LPs, each on its own component only (components are independent)
    cache: dict[int, tuple] = {}
    for side, sign in (("lo", 1.0), ("hi", -1.0)):
        for t in open_cells(side).tolist():
            if side == "lo" and not seen_lo[t] > box_lo[t] + _EPS:
                continue  # an earlier LP of this component already reached it
            if side == "hi" and not seen_hi[t] < min(box_hi[t], BIG / 2) - _EPS:
                continue
            k = int(comp[t])
            if k not in cache:
                members, k_a, k_lo, k_hi = part(np.array([k]))
                cache[k] = (members, k_a, k_lo, k_hi, _lp(k_a, k_lo, k_hi))
            members, k_a, k_lo, k_hi, lp_k = cache[k]
            c = np.zeros(members.size)
            c[np.searchsorted(members, col[t])] = sign
            run(members, k_a, k_lo, k_hi, c, lp_k)
    lo_all = np.where(np.isfinite(seen_lo[targets]), seen_lo[targets], box_lo[targets])
    hi_all = np.where(np.isfinite(seen_hi[targets]), seen_hi[targets], box_hi[targets])
    passive = ~has_rows[targets]
    lo_all[passive] = box_lo[targets][passive]
    hi_all[passive] = box_hi[targets][passive]
    return _rounded(lo_all, hi_all)


def told(s: System, suppressed: np.ndarray) -> np.ndarray:
    """Count cells of distribution groups hidden whole that the attacker proves hold at least
    ``min_cell`` persons (ids).

    A group is hidden whole either because every band is small or because the diversity rule
    hid a homogeneous group; a band proven >= min_cell rules out the first and points at the
    band that made the group homogeneous, the very attribute the rule hid (ADR 0002; e.g. a
    month's band count minus the other days of the month). The width criterion does not see
    it: such a cell's interval is [lower, inf). Exact lower bounds (no early stop).
    """
    _, box_hi = s.boxes(suppressed)  # a cell told primary (< min_cell) cannot be proven large
    cand = s.hidden_whole(suppressed) & ~np.asarray(s.amount) & suppressed & (box_hi >= s.threshold)
    whole = np.flatnonzero(cand)
    if whole.size == 0:
        return whole
    lo, _ = intervals(s, suppressed, whole)
    return whole[lo >= s.threshold]


def _infeasible(
    s: System,
    comp: np.ndarray,
    k: int,
    part: Callable[[np.ndarray], tuple[np.ndarray, sparse.csr_matrix, np.ndarray, np.ndarray]],
    bounds: np.ndarray,
    suppressed: np.ndarray,
) -> bool:
    """Whether component ``k`` holds an earlier hidden cell and has no feasible point."""
    unknown = np.isnan(np.asarray(s.truth)) & ~np.asarray(s.current) & ~np.asarray(s.amount)
    if not (unknown & suppressed & (comp == k)).any():
        return False
    members, k_a, k_lo, k_hi = part(np.array([k]))
    status, _ = _solve(_lp(k_a, k_lo, k_hi), np.zeros(members.size), bounds[members])
    return status == 2


def _earlier_hidden(s: System, suppressed: np.ndarray) -> bool:
    """Whether an earlier release (truth unknown) has a suppressed count."""
    unknown = np.isnan(np.asarray(s.truth)) & ~np.asarray(s.current) & ~np.asarray(s.amount)
    return bool((unknown & suppressed).any())


def _reach(
    a: sparse.csr_matrix,
    coo: sparse.coo_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    x: np.ndarray,
    bounds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio test: how far each coordinate of the feasible ``x`` moves down / up alone.

    Each single-coordinate move stays feasible, so it proves values an interval contains
    without an LP: e.g. under ``sum(cells) <= printed`` every cell reaches its box from the
    all-low point.
    """
    act = a @ x
    alpha = coo.data
    r, c = coo.row, coo.col
    hi_slack = np.maximum(row_hi[r] - act[r], 0.0)
    lo_slack = np.maximum(act[r] - row_lo[r], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        up_lim = np.where(alpha > 0, hi_slack / alpha, lo_slack / -alpha)
        dn_lim = np.where(alpha > 0, lo_slack / alpha, hi_slack / -alpha)
    up = np.minimum(bounds[:, 1] - x, BIG)
    down = np.maximum(x - bounds[:, 0], 0.0)
    np.minimum.at(up, c, up_lim)
    np.minimum.at(down, c, dn_lim)
    return np.maximum(down, 0.0), np.maximum(up, 0.0)


def _rounded(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.ceil(lo - _EPS)
    hi = np.where(hi >= BIG / 2, np.inf, np.floor(hi + _EPS))
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Protection (secondary suppression on the release system) and the independent audit


@dataclass(frozen=True)
class Outcome:
    """What protection or the audit found: the pattern and each suppressed cell's interval."""

    suppressed: np.ndarray
    targets: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    required: np.ndarray
    added: int
    rounds: int

    @property
    def width(self) -> np.ndarray:
        """Candidate values per target (``hi - lo + 1``)."""
        return self.hi - self.lo + 1

    @property
    def ok(self) -> bool:
        """Every suppressed cell keeps at least its protection range."""
        return bool(np.all(self.width >= self.required))


def _coupled(s: System, v: int, specs: dict[str, Any]) -> list[int]:
    """Variables suppressed with ``v``: its row's counts of ``_TOGETHER``, amounts of persons,
    and every band of its distribution group (a complement inside a band distribution hides
    the group whole: hiding one band could leave the published rest possibly homogeneous)."""
    group = s.group[v]
    if group >= 0:
        members = np.flatnonzero(np.asarray(s.group) == group).tolist()
        return [u for m in members for u in _coupled_cell(s, m, specs)]
    return _coupled_cell(s, v, specs)


def _coupled_cell(s: System, v: int, specs: dict[str, Any]) -> list[int]:
    name, col, row = s.table[v], s.column[v], s.row[v]
    out = [v]
    cols = list(_TOGETHER.get(name, ()))
    if col == "persons":
        cols += [m for m, k in specs[name].magnitudes if k == "sum"]
    for c in cols:
        ids = s.ids.get((name, c))
        if ids is not None and c != col:
            out.append(int(ids[row]))
    return out


def protect(s: System, specs: dict[str, Any] | None = None, *, max_rounds: int = 200) -> Outcome:
    """Suppress complements until no suppressed cell is narrower than its protection range.

    Start: the cells the frames already hide (primary rule, diversity rules, earlier releases).
    Each round attacks the cells not yet proven wide enough; for each failing cell the cheapest
    publishable cell of this release (smallest value, then lowest id) in a row with it is
    suppressed, or, when those rows hold none, in the rows of the suppressed cells connected to
    it. Suppressing more never narrows another interval, so cells that passed keep passing.
    Only tables declared ``complements=True`` give complements. Deterministic.
    """
    specs = _specs(specs)
    pub = np.asarray(s.published, dtype=float)
    truth = np.asarray(s.truth, dtype=float)
    amount = np.asarray(s.amount)
    cur = np.asarray(s.current)
    suppressed = np.isnan(pub)
    # fail closed: a count of this release published under the threshold is hidden (primary)
    small = cur & ~amount & ~suppressed & (pub < s.threshold)
    suppressed |= small
    can = np.array([s.complements.get(t, False) for t in s.table]) & cur
    value = np.where(np.isnan(truth), pub, truth)
    required = s.required().astype(float)
    a = s.matrix()
    by_var = a.tocsc()
    rows_of = [by_var.indices[by_var.indptr[v] : by_var.indptr[v + 1]] for v in range(s.n)]
    a = a.tocsr()
    seen = (np.full(s.n, np.inf), np.full(s.n, -np.inf))
    latent = np.asarray(s.latent, dtype=bool)
    check = np.flatnonzero(suppressed & ~latent)
    added_total = 0
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        failing = np.zeros(0, dtype=np.int64)
        if check.size:
            lo, hi = intervals(s, suppressed, check, required=required[check], seen=seen)
            failing = check[(hi - lo + 1) < required[check]]
        failing = np.union1d(failing, told(s, suppressed))
        if failing.size == 0:
            break
        added: list[int] = []
        for c in failing.tolist():
            if suppressed[c] and c in added:
                continue
            pick = _complement(c, a, rows_of, suppressed, can, value)
            if pick is None:
                continue
            for v in _coupled(s, pick, specs):
                if not suppressed[v]:
                    suppressed[v] = True
                    added.append(v)
        if not added:
            break
        added_total += len(added)
        check = np.union1d(failing, np.asarray(added, dtype=np.int64))
    targets = np.flatnonzero(suppressed & ~latent)
    lo, hi = intervals(s, suppressed, targets, seen=seen)
    return Outcome(suppressed, targets, lo, hi, required[targets], added_total, rounds)


def _complement(
    cell: int,
    a: sparse.csr_matrix,
    rows_of: list[np.ndarray],
    suppressed: np.ndarray,
    can: np.ndarray,
    value: np.ndarray,
) -> int | None:
    """The cheapest publishable cell sharing a row with ``cell`` (searched outward)."""
    seen_rows: set[int] = set()
    seen_cells = {cell}
    frontier = [cell]
    while frontier:
        rows = sorted({int(r) for c in frontier for r in rows_of[c]} - seen_rows)
        if not rows:
            return None
        seen_rows.update(rows)
        layer = np.unique(np.concatenate([a.indices[a.indptr[r] : a.indptr[r + 1]] for r in rows]))
        cand = layer[can[layer] & ~suppressed[layer]]
        if cand.size:
            return int(cand[np.lexsort((cand, value[cand]))[0]])
        frontier = [int(c) for c in layer[suppressed[layer]] if int(c) not in seen_cells]
        seen_cells.update(frontier)
    return None


def apply(
    s: System, frames: dict[str, pl.DataFrame], suppressed: np.ndarray, specs: dict[str, Any]
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """Null the newly suppressed cells in the frames (measures follow ``persons``).

    Returns the frames and, per table, how many values were hidden as complements.
    """
    out: dict[str, pl.DataFrame] = {}
    added: dict[str, int] = {}
    for name, df in frames.items():
        spec = specs[name]
        hides: dict[str, np.ndarray] = {}
        for (t, col), ids in s.ids.items():
            if t != name:
                continue
            new = suppressed[ids] & df[col].is_not_null().to_numpy()
            if new.any():
                hides[col] = new
        if "persons" in hides:
            for m in spec.measures:
                if m not in hides:
                    hides[m] = hides["persons"] & df[m].is_not_null().to_numpy()
        added[name] = int(sum(int(v.sum()) for c, v in hides.items() if c in spec.counts))
        if not hides:
            out[name] = df
            continue
        any_new = np.logical_or.reduce(list(hides.values()))
        df = df.with_columns(
            *[
                pl.when(pl.Series(h)).then(None).otherwise(pl.col(c)).alias(c)
                for c, h in hides.items()
            ]
        )
        if "suppressed" in df.columns:
            df = df.with_columns((pl.col("suppressed") | pl.Series(any_new)).alias("suppressed"))
        out[name] = df
    return out, added


def audit(
    frames: dict[str, pl.DataFrame],
    threshold: int,
    *,
    truth: dict[str, pl.DataFrame] | None = None,
    earlier: Loader = _no_earlier,
    printed: dict[str, float] | None = None,
    rounding_base: int = 1,
    noisy: frozenset[str] = frozenset(),
    specs: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Attack the release as published; per table the verdict (``record[name]["disclosure"]``).

    The system is rebuilt from the published frames and the declarations (nothing of the
    protection run is reused). Per table: ``cells`` (count cells), ``suppressed_cells``,
    ``min_width`` (narrowest interval of a suppressed count of the table, or of an earlier
    release's cell its relations link; None when nothing is suppressed or all unbounded),
    ``required_width``, ``relations`` (labels), ``ok``; plus ``linked_earlier_cells`` and
    ``amounts_min_width`` (JPY) where amounts are suppressed.
    """
    specs = _specs(specs)
    s = build(
        frames,
        threshold,
        truth=truth,
        earlier=earlier,
        printed=printed,
        rounding_base=rounding_base,
        noisy=noisy,
        specs=specs,
    )
    pub = np.asarray(s.published, dtype=float)
    suppressed = np.isnan(pub)
    targets = np.flatnonzero(suppressed & ~np.asarray(s.latent, dtype=bool))
    broken = violated(s)
    lo, hi = intervals(s, suppressed, targets)
    width = hi - lo + 1
    req = s.required()[targets]
    whole = s.hidden_whole(suppressed)[targets] & ~np.asarray(s.amount)[targets]
    exposed = whole & (lo >= threshold)  # told(): a group hidden whole with a band proven large
    owner = np.asarray(s.owner, dtype=object)[targets]
    amount = np.asarray(s.amount)[targets]
    cur = np.asarray(s.current)[targets]
    out: dict[str, dict[str, Any]] = {}
    for name in frames:
        spec = specs[name]
        mine = owner == name
        counts = mine & ~amount
        n_cells = sum(int(s.ids[(name, c)].size) for c in spec.counts)
        w_counts = width[counts]
        rec: dict[str, Any] = {
            "cells": n_cells,
            "suppressed_cells": int((counts & cur).sum()),
            "min_width": _finite_min(w_counts),
            "required_width": threshold,
            "relations": list(s.labels.get(name, [])),
            "relations_hold": not any(b.startswith(f"{name}: ") for b in broken),
        }
        rec["ok"] = bool(np.all(width[mine] >= req[mine])) and rec["relations_hold"]
        if (mine & whole).any():
            # groups of a band distribution hidden whole: no band may be proven >= min_cell
            rec["whole_groups_bands_proven_large"] = int((mine & exposed).sum())
            rec["ok"] = rec["ok"] and not (mine & exposed).any()
        if (counts & ~cur).any():
            rec["linked_earlier_cells"] = int((counts & ~cur).sum())
        if (mine & amount).any():
            rec["amounts_min_width"] = _finite_min(width[mine & amount])
        if s.relaxed and (counts & ~cur).any():
            rec["earlier_cells_assumed_primary"] = False
        out[name] = rec
    return out


def _specs(specs: dict[str, Any] | None) -> dict[str, Any]:
    """The table specs the declarations come from (default: every table of tokumei.stats)."""
    if specs is not None:
        return specs
    from tokumei.stats.tables import TABLES

    return TABLES


def _finite_min(w: np.ndarray) -> int | None:
    w = w[np.isfinite(w)]
    return int(w.min()) if w.size else None


def protect_release(
    frames: dict[str, pl.DataFrame],
    threshold: int,
    *,
    truth: dict[str, pl.DataFrame] | None = None,
    earlier: Loader = _no_earlier,
    printed: dict[str, float] | None = None,
    rounding_base: int = 1,
    noisy: frozenset[str] = frozenset(),
    specs: dict[str, Any] | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, int], Outcome]:
    """Build the release system, add complements, null them in the frames.

    Returns the frames to publish (before rounding), the complements added per table and the
    protection's own outcome (its final intervals; the audit re-derives them independently).
    """
    specs = _specs(specs)
    s = build(
        frames,
        threshold,
        truth=truth,
        earlier=earlier,
        printed=printed,
        rounding_base=rounding_base,
        noisy=noisy,
        specs=specs,
        round_current=False,
    )
    if bad := violated(s):
        raise InconsistentReleaseError(
            "declared relations do not hold on the data: " + "; ".join(bad)
        )
    outcome = protect(s, specs)
    out, added = apply(s, frames, outcome.suppressed, specs)
    return out, added, outcome
