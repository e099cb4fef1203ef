"""Frequency tables of a lattice node and their roll-up (ARX's "groupify", over persons).

A :class:`Table` describes the data under one transformation (a level per QI) without any row:

- ``codes``: the equivalence classes, one row per class, the generalized code of each QI plus
  that QI's offset (``offsets``: the codes of all QIs live in one index space, so one gather
  through the concatenated level maps generalizes every QI at once). The search keeps the
  level-0 offsets at every node (a QI's codes only shrink with its level), so a roll-up can
  leave the columns of unchanged QIs alone;
- ``key``: per class, its codes as one mixed-radix integer with the *same* radix at every node
  (level-0 sizes), so that generalizing one QI moves each key by a looked-up amount instead
  of recomputing it from every QI;
- ``rows``: records per class;
- aggregated entries ``(a_cls, a_sid, a_persons)``: persons whose records all fall into one
  (class, sensitive-value) pair, counted, not listed;
- explicit entries ``(e_pid, e_cls, e_sid)``: the distinct (person, class, sensitive value) triples
  of the other persons, sorted by person.

Without a person column every record is its own person: the table is *plain*, class sizes are
person counts and the table is just ``codes`` and ``rows`` (ARX's setting), plus, for
l-diversity, ``sid_counts`` (records per class and sensitive-value combination, "sid") when there
are few sids, else aggregated entries.

``rollup`` computes a more general node's table from the table of any less general node: classes
merge through the per-QI level-to-level code maps, so the cost follows the source table (distinct
tuples, or fewer), never the rows; with keys, only the QIs whose level changes are touched.
Grouping sorts with numpy's default (unstable, vectorized) sort, several times faster than a
stable one; groups are numbered in key order, each with one of its positions as "first". Distinct persons per class are exact: aggregated persons are in
exactly one class, and explicit triples are de-duplicated per (person, class). Persons whose
triples collapse into one move to the aggregated part, so tables shrink as nodes get coarser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEY_LIMIT = 1 << 62
DENSE_SIDS = 64  # without persons, up to this many sensitive-value combinations are counted densely


def _dense_ok(space: int, n: int) -> bool:
    """Group with arrays over the key space (O(space)) rather than by sorting (O(n log n))?"""
    return space <= 16 * n + 4096


@dataclass
class Table:
    node: tuple[int, ...]
    codes: np.ndarray  # (classes × QIs) int64, offset per QI
    offsets: np.ndarray  # (QIs,) int64: QI q's codes start at offsets[q]
    rows: np.ndarray  # int64 records per class
    a_cls: np.ndarray | None = None  # None: plain (every record is a person)
    a_sid: np.ndarray | None = None
    a_persons: np.ndarray | None = None
    e_pid: np.ndarray | None = None  # None: no explicit entries
    e_cls: np.ndarray | None = None
    e_sid: np.ndarray | None = None
    sid_counts: np.ndarray | None = None  # (classes × sids) records, when plain with few sids
    # per class Σ_q level code × radix[q], with one radix for every node (level-0 sizes): a
    # roll-up then updates the key for the QIs whose level changes only; None if it would overflow
    key: np.ndarray | None = None
    # the level-0 table without sensitive or person columns: each input row's class (the
    # output is then written per class and gathered per row, not recomputed per row)
    row_class: np.ndarray | None = None

    @property
    def level_codes(self) -> np.ndarray:
        """Codes without the offsets (code ``c`` of QI ``q`` = its ``c``-th value at the level)."""
        return self.codes - self.offsets

    @property
    def n_classes(self) -> int:
        return len(self.rows)

    @property
    def plain(self) -> bool:
        """Class size in records is class size in persons (no person column; sids, if any, dense)."""
        return self.a_cls is None

    @property
    def cost(self) -> int:
        """Work to roll this table up (entries touched)."""
        n = len(self.rows)
        if self.a_cls is not None:
            n += len(self.a_cls)
        if self.e_cls is not None:
            n += 3 * len(self.e_cls)
        return n

    @property
    def nbytes(self) -> int:
        arrays = [
            self.codes,
            self.rows,
            self.a_cls,
            self.a_sid,
            self.a_persons,
            self.e_pid,
            self.e_cls,
            self.e_sid,
            self.sid_counts,
            self.key,
        ]
        return sum(a.nbytes for a in arrays if a is not None)


def group_ids(key: np.ndarray, space: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Dense group ids (in key order) for int64 ``key`` in ``[0, space)``.

    Returns ``(ids, n_groups, first)`` where ``first[g]`` is one position holding group ``g``.
    """
    n = len(key)
    if n == 0:
        return np.zeros(0, np.int64), 0, np.zeros(0, np.int64)
    if _dense_ok(space, n):
        present = np.zeros(space, dtype=bool)
        present[key] = True
        pos = np.flatnonzero(present)
        n_groups = len(pos)
        index = np.empty(space, dtype=np.int64)
        index[pos] = np.arange(n_groups, dtype=np.int64)
        ids = index[key]
        first = np.empty(n_groups, dtype=np.int64)
        first[ids] = np.arange(n, dtype=np.int64)
        return ids, n_groups, first
    # not a stable sort: any position of a group will do as its "first", and numpy's default
    # (vectorized) sort of int64 is several times faster than its stable one
    order = np.argsort(key)
    sk = key[order]
    start = np.empty(n, dtype=bool)
    start[0] = True
    np.not_equal(sk[1:], sk[:-1], out=start[1:])
    sorted_ids = np.cumsum(start, dtype=np.int64)
    sorted_ids -= 1
    ids = np.empty(n, dtype=np.int64)
    ids[order] = sorted_ids
    return ids, int(sorted_ids[-1]) + 1, order[start]


def distinct_counts(
    key: np.ndarray, space: int, with_ids: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """First position and count of each distinct key (in key order), and with ``with_ids`` each
    key's group (else None)."""
    ids, n_groups, first = group_ids(key, space)
    counts = np.bincount(ids, minlength=n_groups).astype(np.int64)
    return first, counts, ids if with_ids else None


def strides_of(sizes: list[int]) -> tuple[np.ndarray, int] | None:
    """Mixed-radix strides for ``sizes`` (last QI fastest) and the key space; None on overflow."""
    strides = np.ones(len(sizes), dtype=np.int64)
    space = 1
    for q in range(len(sizes) - 1, -1, -1):
        strides[q] = space
        space *= sizes[q]
        if space >= KEY_LIMIT:
            return None
    return strides, space


def combine(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, int]:
    """Mixed-radix key of code columns; re-densifies when the key space nears 2^62."""
    n = len(codes[0]) if codes else 0
    key = np.zeros(n, dtype=np.int64)
    space = 1
    for c, s in zip(codes, sizes, strict=True):
        if s == 1:
            continue
        if space * s >= KEY_LIMIT:
            key, space, _ = group_ids(key, space)
        key *= s
        key += c
        space *= s
    return key, space


def class_keys(codes: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, int]:
    """Mixed-radix key per row of a (n × Q) code matrix."""
    st = strides_of(sizes)
    if st is not None:
        return codes @ st[0], st[1]
    return combine([codes[:, q] for q in range(codes.shape[1])], sizes)


def _unique_sorted(key: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int64 array."""
    if len(key) == 0:
        return key
    s = np.sort(key)
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


@dataclass
class NodeStats:
    """What a node's table says about the privacy models and the loss."""

    persons: np.ndarray  # distinct persons per class
    fail: np.ndarray  # bool per class: violates k (or l)
    suppressed_persons: int
    suppressed_rows: int
    supp_loss: (
        float  # Σ over suppressed classes of rows × (Q − Σ_q share): loss added by suppression
    )
    # with privacy models that are not monotone under suppression: the persons the monotone
    # ones alone (k, distinct l) would suppress; None when every model is monotone
    mono_suppressed_persons: int | None = None


def offsets_of(sizes: list[int]) -> np.ndarray:
    """Where each QI's codes start in the shared code space (sizes: codes per QI)."""
    out = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=out[1:])
    return out


def build_base(
    codes: list[np.ndarray],
    sizes: list[int],
    sid: np.ndarray | None,
    n_sid: int,
    pid: np.ndarray | None,
    n_pid: int,
) -> Table:
    """The level-0 table from per-row codes (the only step that looks at every row)."""
    node = (0,) * len(codes)
    key, space = combine(codes, sizes)
    cell, cell_space = key, space
    if sid is not None:
        cell, cell_space = combine([cell, sid], [cell_space, n_sid])
    if pid is not None:
        cell, cell_space = combine([cell, pid], [cell_space, n_pid])
    # distinct cells with their record counts
    plain = sid is None and pid is None
    first, cell_rows, row_cls = distinct_counts(cell, cell_space, with_ids=plain)
    c_key = key[first]
    # classes = distinct QI tuples (the cells themselves without sid and person)
    if sid is None and pid is None:
        cls, n_cls, cfirst = np.arange(len(first)), len(first), np.arange(len(first))
    else:
        cls, n_cls, cfirst = group_ids(c_key, space)
    rep = first[cfirst]
    off = offsets_of(sizes)
    t_codes = np.stack([c[rep] for c in codes], axis=1).astype(np.int64) + off
    rows = np.bincount(cls, weights=cell_rows, minlength=n_cls).astype(np.int64)
    if pid is None:
        if sid is None:
            return Table(node, t_codes, off, rows, row_class=row_cls)
        c_sid = sid[first].astype(np.int64)
        if n_sid <= DENSE_SIDS:
            counts = np.bincount(cls * n_sid + c_sid, weights=cell_rows, minlength=n_cls * n_sid)
            return Table(
                node, t_codes, off, rows, sid_counts=counts.astype(np.int64).reshape(n_cls, n_sid)
            )
        return Table(node, t_codes, off, rows, cls, c_sid, cell_rows)
    c_sid = sid[first].astype(np.int64) if sid is not None else None
    c_pid = pid[first].astype(np.int64)
    per_person = np.bincount(c_pid, minlength=n_pid)
    single = per_person[c_pid] == 1
    multi = ~single
    a_cls, a_sid, a_persons = _aggregate(
        cls[single],
        None if c_sid is None else c_sid[single],
        np.ones(int(single.sum()), np.int64),
        n_cls,
        n_sid,
    )
    if not multi.any():
        return Table(node, t_codes, off, rows, a_cls, a_sid, a_persons)
    e_pid, e_cls = c_pid[multi], cls[multi]
    e_sid = c_sid[multi] if c_sid is not None else None
    order = np.lexsort((e_cls, e_pid) if e_sid is None else (e_sid, e_cls, e_pid))
    return Table(
        node,
        t_codes,
        off,
        rows,
        a_cls,
        a_sid,
        a_persons,
        e_pid[order],
        e_cls[order],
        None if e_sid is None else e_sid[order],
    )


def _aggregate(
    cls: np.ndarray, sid: np.ndarray | None, persons: np.ndarray, n_cls: int, n_sid: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Sum persons per (class[, sid]) entry; without sid the entries are simply the classes."""
    if sid is None:
        return (
            np.arange(n_cls, dtype=np.int64),
            None,
            np.bincount(cls, weights=persons, minlength=n_cls).astype(np.int64),
        )
    key = cls * n_sid + sid
    ids, n_groups, first = group_ids(key, n_cls * n_sid)
    summed = np.bincount(ids, weights=persons, minlength=n_groups).astype(np.int64)
    live = summed > 0
    return cls[first][live], sid[first][live], summed[live]


def rollup(
    src: Table,
    node: tuple[int, ...],
    step: np.ndarray | None,
    sizes: list[int],
    offsets: np.ndarray,
    n_sid: int,
    changes: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Table:
    """``node``'s table from ``src`` (``src.node ≤ node``).

    ``step`` is the concatenation of the per-QI maps from src's level to ``node``'s, laid out at
    src's offsets and with ``node``'s ``offsets`` already added to the values: one gather maps
    every QI of every class.

    With ``changes`` (then ``offsets`` are the same at every node, keys use one radix per QI for
    all nodes, and ``step`` is not needed) and ``src.key``, only the QIs whose level changes are
    touched: ``changes[q] = (code map, key delta)``, both indexed by code, give QI ``q``'s new
    code and how much the class key moves. In a climb a single QI changes, so the key costs one
    gather and one add, and only the surviving classes' codes are gathered.
    """
    if changes is not None and src.key is not None:
        key = src.key
        for q, (_, delta) in changes.items():
            key = key + delta[src.codes[:, q]]
        cmap, n_cls, first = group_ids(key, int(key.max()) + 1 if len(key) else 0)
        codes = src.codes[first]
        for q, (cmap_q, _) in changes.items():
            codes[:, q] = cmap_q[codes[:, q]]
        key = key[first]
    else:
        xc = step[src.codes]
        st = strides_of(sizes)
        if st is not None:
            key = xc @ st[0]
            key -= int(offsets @ st[0])
            space = st[1]
        else:
            key, space = class_keys(xc - offsets, sizes)
        cmap, n_cls, first = group_ids(key, space)
        codes = xc[first]
        key = None
    rows = np.bincount(cmap, weights=src.rows, minlength=n_cls).astype(np.int64)
    if src.plain:
        if src.sid_counts is None:
            return Table(node, codes, offsets, rows, key=key)
        n_s = src.sid_counts.shape[1]
        cells = (cmap[:, None] * n_s + np.arange(n_s)).ravel()
        counts = np.bincount(cells, weights=src.sid_counts.ravel(), minlength=n_cls * n_s)
        return Table(
            node,
            codes,
            offsets,
            rows,
            sid_counts=counts.astype(np.int64).reshape(n_cls, n_s),
            key=key,
        )
    a_cls = cmap[src.a_cls]
    a_sid, a_persons = src.a_sid, src.a_persons
    e_pid, e_cls, e_sid = src.e_pid, None, src.e_sid
    if src.e_cls is not None:
        e_cls = cmap[src.e_cls]
        # distinct (person, class[, sid]) triples, kept sorted by person
        if e_sid is None:
            k3 = _unique_sorted(e_pid * n_cls + e_cls)
            e_pid, e_cls = np.divmod(k3, n_cls)
        else:
            k3 = _unique_sorted((e_pid * n_cls + e_cls) * n_sid + e_sid)
            rest, e_sid = np.divmod(k3, n_sid)
            e_pid, e_cls = np.divmod(rest, n_cls)
        # persons left with a single triple join the aggregated part
        lone = np.ones(len(e_pid), dtype=bool)
        if len(e_pid) > 1:
            same = e_pid[1:] == e_pid[:-1]
            lone[1:] &= ~same
            lone[:-1] &= ~same
        if lone.any():
            a_cls = np.concatenate([a_cls, e_cls[lone]])
            a_persons = np.concatenate([a_persons, np.ones(int(lone.sum()), np.int64)])
            if a_sid is not None:
                a_sid = np.concatenate([a_sid, e_sid[lone]])
            keep = ~lone
            if keep.any():
                e_pid, e_cls = e_pid[keep], e_cls[keep]
                e_sid = e_sid[keep] if e_sid is not None else None
            else:
                e_pid = e_cls = e_sid = None
    a_cls, a_sid, a_persons = _aggregate(a_cls, a_sid, a_persons, n_cls, n_sid)
    return Table(node, codes, offsets, rows, a_cls, a_sid, a_persons, e_pid, e_cls, e_sid, key=key)


def class_persons(t: Table) -> np.ndarray:
    """Distinct persons per class."""
    if t.plain:
        return t.rows
    n = t.n_classes
    persons = np.bincount(t.a_cls, weights=t.a_persons, minlength=n)
    if t.e_cls is not None:
        # without sid the triples are already distinct (person, class) pairs
        e_cls = t.e_cls if t.e_sid is None else _unique_sorted(t.e_pid * n + t.e_cls) % n
        persons += np.bincount(e_cls, minlength=n)
    return persons.astype(np.int64)


def distinct_per_class(t: Table, sid_to_value: np.ndarray, n_values: int) -> np.ndarray:
    """Distinct values of one sensitive column per class (l-diversity, distinct variant)."""
    n = t.n_classes
    if t.sid_counts is not None:
        onehot = np.zeros((len(sid_to_value), n_values))
        onehot[np.arange(len(sid_to_value)), sid_to_value] = 1.0
        return (((t.sid_counts > 0) @ onehot) > 0).sum(axis=1)
    cls, sid = t.a_cls, t.a_sid
    if t.e_cls is not None:
        cls, sid = np.concatenate([cls, t.e_cls]), np.concatenate([sid, t.e_sid])
    key = cls * n_values + sid_to_value[sid]
    if _dense_ok(n * n_values, 4 * len(key)):
        seen = np.zeros(n * n_values, dtype=bool)
        seen[key] = True
        return seen.reshape(n, n_values).sum(axis=1)
    return np.bincount(_unique_sorted(key) // n_values, minlength=n)


def value_counts(
    t: Table, sid_to_value: np.ndarray, n_values: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records per (class, value) of one sensitive column, for the non-zero pairs only, sorted by
    class then value: ``(cls, value, count)``. Without a person column only (the aggregated
    entries then count records; the engine refuses these models with one)."""
    if t.e_cls is not None:  # explicit entries exist only with a person column
        raise ValueError("value frequencies need records as persons (no person column)")
    if t.sid_counts is not None:
        onehot = np.zeros((len(sid_to_value), n_values))
        onehot[np.arange(len(sid_to_value)), sid_to_value] = 1.0
        m = t.sid_counts @ onehot
        cls, val = np.nonzero(m)
        return cls.astype(np.int64), val.astype(np.int64), m[cls, val].astype(np.int64)
    key = t.a_cls * n_values + sid_to_value[t.a_sid]
    uniq, inv = np.unique(key, return_inverse=True)
    cnt = np.bincount(inv.reshape(-1), weights=t.a_persons).astype(np.int64)
    return uniq // n_values, uniq % n_values, cnt


def suppressed_persons(t: Table, fail: np.ndarray) -> int:
    """Distinct persons with at least one record in a failing class."""
    if t.plain:
        return int(t.rows[fail].sum())
    total = int(t.a_persons[fail[t.a_cls]].sum())
    if t.e_cls is not None:
        pids = t.e_pid[fail[t.e_cls]]  # sorted
        if len(pids):
            total += 1 + int(np.count_nonzero(pids[1:] != pids[:-1]))
    return total
