"""Integer encoding: every column once to dense codes, every hierarchy once to code maps.

The search never touches strings. Each quasi-identifier is encoded to ``int32`` codes of its
distinct values (sorted, so codes are deterministic); its hierarchy is applied once, through the
Hierarchy protocol's Polars expression, to those distinct values only, giving per level

- ``up[level]``: code at level 0 → code at ``level`` (a numpy gather array),
- ``labels[level]``: the generalized strings, indexed by code,
- ``share[level]``: ARX's domain share of each generalized value (its leaves / all leaves).

CSV and built-in hierarchies go through the same path: only ``expr(col, level)`` is called, plus
the optional ``domain`` (leaves) that :class:`tokumei.anonymize.hierarchy_csv.CsvHierarchy` carries.

Row → code uses Polars' hash of each value and a collision-free slot table built from the hashes of
the distinct values (verified injective), which is exact and costs two numpy passes per column. On
large frames the distinct values are taken from a sample and completed by checking every row's
hash against its code's, which spares a full ``unique`` over millions of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tokumei.anonymize.hierarchy import Hierarchy
from tokumei.anonymize.hierarchy_csv import CsvHierarchy

HASH_SEED = 0x746F6B756D65  # "tokume": any fixed value; only consistency within a run matters


def _slot_lookup(h: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """Index of each hash ``h`` in the distinct hashes ``hu`` (every ``h`` is in ``hu``).

    A table of 2^b slots (b ≥ log2(16·n)) addressed by a bit window of the hash; windows are tried
    until no two distinct hashes share a slot. Distinct hashes that still collide (very large n)
    are resolved by binary search for the rows that land in a shared slot.
    """
    n = len(hu)
    if n == 1:
        return np.zeros(len(h), dtype=np.int32)
    bits = min(max(int(np.ceil(np.log2(n))) + 4, 8), 26)
    mask = np.uint64((1 << bits) - 1)
    best = None
    for shift in (0, 13, 23, 37, 47):
        sh = np.uint64(shift)
        slots_u = ((hu >> sh) & mask).astype(np.intp)
        occ = np.bincount(slots_u, minlength=1 << bits)
        shared = int((occ[slots_u] > 1).sum())
        if best is None or shared < best[0]:
            best = (shared, sh, slots_u, occ)
        if shared == 0:
            break
    shared, sh, slots_u, occ = best
    table = np.full(1 << bits, -1, dtype=np.int32)
    single = occ[slots_u] == 1
    table[slots_u[single]] = np.flatnonzero(single).astype(np.int32)
    codes = table[((h >> sh) & mask).astype(np.intp)]
    if shared:
        miss = np.flatnonzero(codes < 0)
        order = np.argsort(hu)
        codes[miss] = order[np.searchsorted(hu[order], h[miss])].astype(np.int32)
    return codes


SAMPLE_ROWS = 1 << 16  # large frames: distinct values from a sample, completed by verification


def encode_values(
    df: pl.DataFrame, cols: list[str]
) -> tuple[list[np.ndarray], list[pl.Series], pl.DataFrame]:
    """Dense ``int32`` codes per row and the sorted distinct values, for each column.

    String columns are encoded by Polars itself (a cast to an ``Enum`` of the sorted distinct
    values: one parallel pass, nothing row-sized in numpy), the others through hashes
    (:func:`_encode_hashed`). Also returns the distinct values side by side (null-padded to one
    length) so hierarchies can run over all of them in one query.
    """
    strings = [c for c in cols if df.schema[c] == pl.String]
    others = [c for c in cols if c not in strings]
    found: dict[str, tuple[np.ndarray, pl.Series]] = {}
    if strings:
        found.update(_encode_strings(df, strings))
    if others:
        codes, values, _ = _encode_hashed(df, others)
        found.update(zip(others, zip(codes, values, strict=True), strict=True))
    codes_out = [found[c][0] for c in cols]
    values = [found[c][1].alias(c) for c in cols]
    n_max = max(len(v) for v in values)
    padded = pl.DataFrame([v.extend_constant(None, n_max - len(v)) for v in values])
    return codes_out, values, padded


def _encode_strings(df: pl.DataFrame, cols: list[str]) -> dict[str, tuple[np.ndarray, pl.Series]]:
    """Codes of String columns: the sorted distinct values (from a sample on large frames) become
    an ``Enum`` whose physical codes are the codes; nulls get the last code (None sorts last).

    Exact: on large frames the rows whose value the sample missed come out null without being
    null; their values are added and the column is cast again.
    """
    lf = df.lazy()
    sampled = df.height > 8 * SAMPLE_ROWS
    lists = (
        (lf.head(SAMPLE_ROWS) if sampled else lf)
        .select(pl.col(c).unique().sort(nulls_last=True).implode() for c in cols)
        .collect()
    )
    values = {c: lists.get_column(c)[0].alias(c) for c in cols}
    out: dict[str, tuple[np.ndarray, pl.Series]] = {}
    todo = list(cols)
    while todo:
        n_cats = {c: len(values[c]) - values[c].null_count() for c in todo}
        phys = lf.select(
            pl.col(c).cast(pl.Enum(values[c].drop_nulls()), strict=False).to_physical()
            for c in todo
        ).collect()
        again = []
        for c in todo:
            col = phys.get_column(c)
            # null counts are metadata: a value missed by the sample is a null too many
            if col.null_count() > df.get_column(c).null_count():
                extra = df.get_column(c).filter(col.is_null()).drop_nulls().unique()
                values[c] = pl.concat([values[c], extra]).unique().sort(nulls_last=True)
                again.append(c)
                continue
            if col.null_count():
                col = col.fill_null(n_cats[c])
            out[c] = (col.to_numpy().astype(np.int32), values[c])
        todo = again
    return out


def _encode_hashed(
    df: pl.DataFrame, cols: list[str]
) -> tuple[list[np.ndarray], list[pl.Series], pl.DataFrame]:
    """Dense ``int32`` codes per row and the sorted distinct values, through value hashes.

    Exact: a value's code is found through its hash, the hashes of the distinct values are
    checked to be pairwise different, and on large frames (where the distinct values are first
    taken from a sample) every row's hash is checked against its code's, the values missed by
    the sample being added. A handful of Polars queries in all, whatever the number of columns.
    Also returns the distinct values side by side (null-padded to one length) so hierarchies can
    run over all of them in one query.
    """
    lf = df.lazy()
    sampled = df.height > 8 * SAMPLE_ROWS
    lists, hashes = pl.collect_all(
        [
            (lf.head(SAMPLE_ROWS) if sampled else lf).select(
                pl.col(c).unique().sort(nulls_last=True).implode() for c in cols
            ),
            lf.select(pl.col(c).hash(HASH_SEED) for c in cols),
        ]
    )
    if not sampled:
        return _encode_exact(df, lists, hashes, cols)
    values = [lists.get_column(c)[0].alias(c) for c in cols]
    codes_out = []
    for j, c in enumerate(cols):
        h = hashes.get_column(c).to_numpy()
        while True:
            hu = values[j].hash(HASH_SEED).to_numpy()
            codes = _codes(df, c, h, hu, values[j])
            miss = (codes < 0) | (hu[codes] != h)
            if not miss.any():
                break
            extra = df.get_column(c).filter(pl.Series(miss)).unique()
            values[j] = pl.concat([values[j], extra]).unique().sort(nulls_last=True)
        codes_out.append(codes)
    n_max = max(len(v) for v in values)
    padded = pl.DataFrame([v.extend_constant(None, n_max - len(v)) for v in values])
    return codes_out, values, padded


def _codes(
    df: pl.DataFrame, c: str, h: np.ndarray, hu: np.ndarray, values: pl.Series
) -> np.ndarray:
    """Row codes of column ``c`` from row hashes ``h`` and the values' hashes ``hu``."""
    if len(np.unique(hu)) != len(hu):  # pragma: no cover - 64-bit collision among values
        return (
            df.get_column(c)
            .replace_strict(values, pl.int_range(len(hu), eager=True))
            .cast(pl.Int32)
            .to_numpy()
        )
    return _slot_lookup(h, hu)


def _encode_exact(
    df: pl.DataFrame, lists: pl.DataFrame, hashes: pl.DataFrame, cols: list[str]
) -> tuple[list[np.ndarray], list[pl.Series], pl.DataFrame]:
    """``encode_values`` when the distinct values came from every row (one more query)."""
    counts = [len(lists.get_column(c)[0]) for c in cols]
    n_max = max(counts)
    both = lists.select(
        [
            pl.col(c).explode().extend_constant(None, n_max - n).alias(c)
            for c, n in zip(cols, counts, strict=True)
        ]
        + [
            pl.col(c).explode().extend_constant(None, n_max - n).hash(HASH_SEED).alias(f"{c}\x00h")
            for c, n in zip(cols, counts, strict=True)
        ]
    )
    padded = both.select(cols)
    values = [padded.get_column(c).slice(0, n) for c, n in zip(cols, counts, strict=True)]
    codes_out = []
    for c, v in zip(cols, values, strict=True):
        hu = both.get_column(f"{c}\x00h").to_numpy()[: len(v)]
        h = hashes.get_column(c).to_numpy()
        codes = _codes(df, c, h, hu, v)
        probe = slice(None, None, max(1, len(h) // 4096))
        if not np.array_equal(hu[codes[probe]], h[probe]):  # pragma: no cover
            raise RuntimeError(f"value encoding of column {c!r} is inconsistent")
        codes_out.append(codes)
    return codes_out, values, padded


def encode_persons(df: pl.DataFrame, col: str) -> tuple[np.ndarray, int]:
    """Dense person codes. Identity is the 64-bit hash of the id: a collision would merge two
    persons into one, which can only lower person counts (the safe side for k)."""
    h = df.select(pl.col(col).hash(HASH_SEED)).to_series()
    hu = h.unique().sort().to_numpy()
    return _slot_lookup(h.to_numpy(), hu), len(hu)


@dataclass
class EncodedQI:
    """One quasi-identifier: its hierarchy compiled to code maps over the data's distinct values."""

    name: str
    levels: int
    values: pl.Series  # distinct raw values, index = level-0 code
    up: list[np.ndarray]  # up[l][code0] = code at level l
    labels: list[list[str | None]]  # labels[l][code] = generalized string
    share: list[np.ndarray]  # share[l][code] = leaves under the value / all leaves
    domain_size: int
    _steps: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def sizes(self) -> list[int]:
        return [len(lab) for lab in self.labels]

    def step(self, lo: int, hi: int) -> np.ndarray:
        """Code at level ``lo`` → code at level ``hi`` (lo ≤ hi)."""
        key = (lo, hi)
        m = self._steps.get(key)
        if m is None:
            m = np.empty(len(self.labels[lo]), dtype=np.int32)
            m[self.up[lo]] = self.up[hi]
            if not np.array_equal(m[self.up[lo]], self.up[hi]):
                raise ValueError(
                    f"hierarchy {self.name!r} is not monotone on the data: values equal at level "
                    f"{lo} differ at level {hi}"
                )
            self._steps[key] = m
        return m


def _dense(values: list) -> tuple[np.ndarray, list]:
    """Codes of a small list by its sorted distinct values (None last)."""
    labels = sorted(set(values), key=lambda v: (v is None, "" if v is None else v))
    index = {v: i for i, v in enumerate(labels)}
    return np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values)), labels


def compile_qis(
    hierarchies: dict[str, Hierarchy], values: list[pl.Series], padded: pl.DataFrame
) -> list[EncodedQI]:
    """Apply each hierarchy at every level to its column's distinct ``values`` and compute ARX's
    domain shares against the hierarchy's leaves (``domain``) where it has them, else against the
    distinct values.

    Hierarchies go through their Polars expressions in one query over ``padded`` (the distinct
    values side by side). A :class:`CsvHierarchy` is a table already, so its levels are looked up
    directly (same result as its expression, without a query per level).
    """
    names = list(hierarchies)
    for name, h in hierarchies.items():
        if h.levels < 1:
            raise ValueError(f"hierarchy {h.name!r} of column {name!r} has no levels")
    by_expr = [n for n in names if not isinstance(hierarchies[n], CsvHierarchy)]
    cast = [n for n in names if n not in by_expr and padded.schema[n] != pl.String]
    gen = (
        padded.select(
            [
                hierarchies[n].expr(pl.col(n), lvl).cast(pl.String).alias(f"{n}\x00{lvl}")
                for n in by_expr
                for lvl in range(hierarchies[n].levels)
            ]
            + [pl.col(n).cast(pl.String) for n in cast]
        )
        if by_expr or cast
        else padded
    )
    domains = {
        n: h.domain
        for n, h in hierarchies.items()
        if n in by_expr and getattr(h, "domain", None) is not None
    }
    dgen = None
    if domains:
        n_max = max(len(d) for d in domains.values())
        dgen = pl.DataFrame(
            [d.alias(n).extend_constant(None, n_max - len(d)) for n, d in domains.items()]
        ).select(
            hierarchies[n].expr(pl.col(n), lvl).cast(pl.String).alias(f"{n}\x00{lvl}")
            for n in domains
            for lvl in range(hierarchies[n].levels)
        )
    out = []
    for name, v in zip(names, values, strict=True):
        h = hierarchies[name]
        n_values = len(v)
        if isinstance(h, CsvHierarchy):
            rows = h.rows_by_leaf()
            texts = gen.get_column(name).to_list()[:n_values]
            unknown = sum(x not in rows for x in texts)
            if unknown:
                raise ValueError(
                    f"column {name!r}: {unknown} distinct value(s) are not in hierarchy {h.name!r}"
                )
            data_levels = [[rows[x][lvl] for x in texts] for lvl in range(h.levels)]
            n_dom = len(rows)
            dom_levels = [list(col) for col in zip(*rows.values(), strict=True)]
        else:
            data_levels = [
                gen.get_column(f"{name}\x00{lvl}").to_list()[:n_values] for lvl in range(h.levels)
            ]
            if name in domains:
                n_dom = len(domains[name])
                dom_levels = [
                    dgen.get_column(f"{name}\x00{lvl}").to_list()[:n_dom] for lvl in range(h.levels)
                ]
                known = set(dom_levels[0])
                unknown = sum(x not in known for x in data_levels[0])
                if unknown:
                    raise ValueError(
                        f"column {name!r}: {unknown} distinct value(s) are not in "
                        f"hierarchy {h.name!r}"
                    )
            else:
                n_dom, dom_levels = n_values, data_levels
        up, labels, share = [], [], []
        for lvl in range(h.levels):
            codes, lab = _dense(data_levels[lvl])
            counts: dict = {}
            for x in dom_levels[lvl]:
                counts[x] = counts.get(x, 0) + 1
            sh = np.array([counts.get(x, 0) for x in lab], dtype=np.float64) / n_dom
            if (sh == 0).any():
                raise ValueError(
                    f"hierarchy {h.name!r} maps a value of column {name!r} outside its own "
                    f"domain at level {lvl}"
                )
            up.append(codes)
            labels.append(lab)
            share.append(sh)
        out.append(EncodedQI(name, h.levels, v, up, labels, share, n_dom))
    return out
