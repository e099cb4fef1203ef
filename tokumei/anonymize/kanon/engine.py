"""``anonymize``: encode once, search the lattice, write the anonymized records.

Cost follows the data once (encoding every row to integer codes, building the level-0 frequency
table, and writing the output) and otherwise the distinct (QI tuple[, person]) entries: every node
the search touches is a roll-up of a frequency table, never a pass over rows. Without person and
sensitive columns the level-0 table remembers each row's class, so the output is decided per
class (generalized codes, ``*`` for failing classes) and each row, after the shuffle, only
gathers its class's codes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tokumei.anonymize.hierarchy import SUPPRESSED, Hierarchy
from tokumei.anonymize.kanon.encode import EncodedQI, compile_qis, encode_persons, encode_values
from tokumei.anonymize.kanon.metrics import LossScale, level_share_sums, summarize
from tokumei.anonymize.kanon.models import (
    DistinctLDiversity,
    EntropyLDiversity,
    FrequencyModel,
    KAnonymity,
    Models,
    Population,
    RecursiveCLDiversity,
    RiskThresholds,
    SuppressionLimit,
    TCloseness,
)
from tokumei.anonymize.kanon.projections import plain_failures
from tokumei.anonymize.kanon.quality import Context, Granularity, QualityModel
from tokumei.anonymize.kanon.quality import make as make_quality
from tokumei.anonymize.kanon.search import Evaluator, search
from tokumei.anonymize.kanon.table import (
    Table,
    build_base,
    class_keys,
    combine,
    group_ids,
    strides_of,
)

AUTO_BUDGET_NODES = 2_000_000  # above this many lattice nodes the search gets a time budget
AUTO_BUDGET_SECONDS = 60.0


@dataclass
class KAnonResult:
    """The chosen transformation, the anonymized records and what they cost.

    ``frame``: the input rows, QIs generalized (Utf8), every QI of a suppressed record ``*``, rows
    in a seeded shuffled order; the person column is kept when one was given (the caller drops it).
    ``metrics``: suppressed (persons), suppressed_records, classes, min_class_size (persons),
    granularity_loss, discernibility, max_risk, mean_risk, class_size_histogram.
    ``search``: lattice size, nodes evaluated, and ``seconds_to_transformation`` (encoding and
    search, without writing the frame). ``seconds``: engine time, frame included.
    """

    transformation: dict[str, int]
    frame: pl.DataFrame
    metrics: dict
    seconds: float
    search: dict = field(default_factory=dict)


def _check_columns(df: pl.DataFrame, names: list[str], what: str) -> None:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"{what} column(s) not in the data: {', '.join(missing)}")


def _shuffle_seed(base: Table, n_rows: int) -> int:
    """A seed that depends on the data (so the shuffle is reproducible for the same input) but
    not on anything published, so the output order cannot be unshuffled from the output alone."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.int64(n_rows).tobytes())
    for a in (base.codes[::8], base.rows, base.a_persons, base.e_pid, base.e_cls):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return int.from_bytes(h.digest(), "little")


def anonymize(
    data: pl.LazyFrame | pl.DataFrame,
    qis: Mapping[str, Hierarchy],
    k: int,
    max_suppression: float,
    person_col: str | None = None,
    sensitive: Mapping[str, float | None] | None = None,
    *,
    l_variant: str = "distinct",
    c: float | None = None,
    t: float | None = None,
    t_hierarchies: Mapping[str, Hierarchy] | None = None,
    seed: int | None = None,
    transformation: Mapping[str, int] | None = None,
    cache_bytes: int = 512 << 20,
    metric: str | QualityModel = "granularity",
    monotonic: bool = False,
    gs_factor: float = 0.5,
    aggregate: str | None = None,
    weights: Mapping[str, float] | None = None,
    budget_evaluations: int | None = None,
    budget_seconds: float | None = None,
    avg_risk: float | None = None,
    max_uniqueness: float | None = None,
    population: pl.LazyFrame | pl.DataFrame | None = None,
    k_map: int | None = None,
    delta_min: float | None = None,
    delta_max: float | None = None,
) -> KAnonResult:
    """Least-loss full-domain generalization satisfying k (over persons), optional distinct
    l-diversity and a suppression limit (a share of persons). See :mod:`tokumei.anonymize.kanon`.

    ``transformation`` (level per QI) skips the search and applies those levels (with the same
    suppression and metrics); it raises if they exceed the suppression limit. ``seed`` fixes the
    shuffle; by default it is derived from the data (same input, same output).

    ``sensitive`` maps each sensitive column to its ``l`` (None: no l-diversity on it), of the
    ``l_variant`` distinct, entropy or recursive (with ``c``); ``t`` adds t-closeness on every
    sensitive column, with the hierarchical ground distance where ``t_hierarchies`` has the
    column's hierarchy, else the equal one. Entropy, recursive and t need records as persons
    (no ``person_col``).

    ``metric`` (a name of :data:`quality.METRICS` or a :class:`quality.QualityModel`) is what the
    search minimizes; ``monotonic``, ``gs_factor``, ``aggregate`` and ``weights`` (per QI, default
    1) are ARX's parameters of that model (:func:`quality.make`). ``metrics["score"]`` is the
    chosen node's score under it.

    ``avg_risk`` / ``max_uniqueness``: ARX's average re-identification risk and sample
    uniqueness thresholds (:class:`models.RiskThresholds`), without a person column.

    ``population`` (one row per individual, the QI columns; it must contain the data): k-map
    (``k_map``: every class's population holds at least k individuals) and δ-presence
    (``delta_min`` ≤ records / population of every class ≤ ``delta_max``; without a person
    column), ARX's ``KMap`` with a subset and ``DPresence`` (:class:`models.Population`).

    ``budget_evaluations`` / ``budget_seconds`` bound the search (greedy descent, then the exact
    search until the budget is spent; ``search["optimal"]`` says whether it finished). Lattices
    of more than :data:`AUTO_BUDGET_NODES` nodes get a budget of :data:`AUTO_BUDGET_SECONDS`
    unless one is given.
    """
    t0 = time.perf_counter()
    df = data.collect() if isinstance(data, pl.LazyFrame) else data
    qi_cols = list(qis)
    sens = dict(sensitive or {})
    if not qi_cols:
        raise ValueError("at least one quasi-identifier is needed")
    _check_columns(df, qi_cols, "quasi-identifier")
    _check_columns(df, list(sens), "sensitive")
    if person_col is not None:
        _check_columns(df, [person_col], "person")
        if person_col in qi_cols or person_col in sens:
            raise ValueError(f"the person column {person_col!r} cannot be a QI or sensitive")
    overlap = set(qi_cols) & set(sens)
    if overlap:
        raise ValueError(f"column(s) both QI and sensitive: {', '.join(sorted(overlap))}")
    if isinstance(metric, QualityModel):
        quality = metric
    else:
        unknown = set(weights or {}) - set(qi_cols)
        if unknown:
            raise ValueError(
                f"weights for column(s) that are not QIs: {', '.join(sorted(unknown))}"
            )
        quality = make_quality(
            metric,
            monotonic=monotonic,
            gs_factor=gs_factor,
            aggregate=aggregate,
            weights=None if weights is None else [float(weights.get(c, 1.0)) for c in qi_cols],
        )
    kmodel = KAnonymity(int(k))
    limit = SuppressionLimit(float(max_suppression))
    n_rows = df.height
    if n_rows == 0:
        raise ValueError("no records to anonymize")

    # 1. encode every column once; compile hierarchies on distinct values only
    enc_codes, enc_values, padded = encode_values(df, qi_cols + list(sens))
    raw = enc_codes[: len(qi_cols)]
    encoded: list[EncodedQI] = compile_qis(
        {c: qis[c] for c in qi_cols}, enc_values[: len(qi_cols)], padded
    )
    codes0 = [
        r if np.array_equal(q.up[0], np.arange(len(q.up[0]))) else q.up[0][r]
        for q, r in zip(encoded, raw, strict=True)
    ]
    sid, n_sid, sid_maps, sid_sizes = _sensitive_ids(
        enc_codes[len(qi_cols) :], [len(v) for v in enc_values[len(qi_cols) :]]
    )
    pid = None
    n_persons = n_rows
    if person_col is not None:
        pid, n_persons = encode_persons(df, person_col)
    ldiv, freq = _sensitive_models(
        df,
        sens,
        enc_codes[len(qi_cols) :],
        enc_values[len(qi_cols) :],
        l_variant,
        c,
        t,
        dict(t_hierarchies or {}),
    )
    risk = RiskThresholds(avg_risk, max_uniqueness)
    if (freq or risk.active) and person_col is not None:
        raise ValueError(
            "entropy and recursive l-diversity, t-closeness and the risk thresholds count "
            "records per class; they are not available with a person column"
        )
    pop = _population(population, qis, encoded, k_map, delta_min, delta_max)
    if pop is not None and pop.presence and person_col is not None:
        raise ValueError(
            "delta-presence compares records per class with the population; it is not "
            "available with a person column"
        )
    models = Models(kmodel, ldiv, limit, n_persons, n_sid, sid_maps, sid_sizes, freq, risk, pop)

    # 2. the level-0 frequency table, then the search over it
    base = build_base(codes0, [q.sizes[0] for q in encoded], sid, n_sid, pid, n_persons)
    if pop is not None:
        from tokumei.anonymize.kanon.table import class_persons

        short = int(np.count_nonzero(pop.class_counts(base) < class_persons(base)))
        if short:
            raise ValueError(
                f"population table: {short} class(es) of the data have more persons than the "
                "population has individuals with those values (the population must contain "
                "the data)"
            )
    share_sums = level_share_sums(encoded, base)
    scale = LossScale.of(encoded, n_rows)
    ev = Evaluator(encoded, base, models, cache_bytes=cache_bytes, share_sums=share_sums)
    quality.prepare(Context(encoded, base, share_sums, n_rows, ev.radix))
    if transformation is None:
        # rows are persons: projections give necessary conditions (k only; l is left out)
        # and, for the granularity loss under a limit, the loss suppression adds below them
        deltas: list | None = (
            [] if isinstance(quality, Granularity) and models.max_suppressed else None
        )
        failing = (
            list(plain_failures(encoded, base, kmodel.k, models.max_suppressed, deltas))
            if person_col is None
            else []
        )
        n_nodes = int(np.prod([q.levels for q in encoded], dtype=np.float64))
        if budget_evaluations is None and budget_seconds is None and n_nodes > AUTO_BUDGET_NODES:
            budget_seconds = AUTO_BUDGET_SECONDS
        found = search(
            ev,
            share_sums,
            failing,
            model=quality,
            down_deltas=deltas or (),
            budget_evaluations=budget_evaluations,
            budget_seconds=budget_seconds,
        )
        node, evaluation = found.node, found.evaluation
        search_info = {
            "nodes": found.nodes,
            "evaluated": found.evaluated,
            "optimal": found.optimal,
        }
    else:
        node = tuple(int(transformation[c]) for c in qi_cols)
        for q, lvl in zip(encoded, node, strict=True):
            if not 0 <= lvl < q.levels:
                raise ValueError(f"level {lvl} of {q.name!r} is outside 0..{q.levels - 1}")
        evaluation = ev.evaluate(node)
        if not evaluation.sat:
            raise ValueError(
                f"transformation {list(node)} suppresses {evaluation.stats.suppressed_persons} "
                f"persons, over the limit of {models.max_suppressed}"
            )
        search_info = {"nodes": 1, "evaluated": 1, "optimal": True}
    share_total = sum(float(g[lvl]) for g, lvl in zip(share_sums, node, strict=True))
    loss = scale.normalize(share_total + evaluation.stats.supp_loss)
    metrics = summarize(evaluation.table, evaluation.stats, loss)
    metrics["metric"] = quality.describe()
    metrics["score"] = quality.report(quality.score(node, evaluation.table, evaluation.stats))
    search_info["seconds_to_transformation"] = time.perf_counter() - t0

    # 3. the records: generalized codes per row, suppression per row, one shuffle
    seed = _shuffle_seed(base, n_rows) if seed is None else seed
    frame = _output_by_class(
        df, encoded, base, ev.radix, node, evaluation.table, evaluation.stats.fail, seed
    )
    if frame is None:
        frame = _output(df, encoded, raw, node, evaluation.table, evaluation.stats.fail, seed)
    seconds = time.perf_counter() - t0
    return KAnonResult(
        transformation=dict(zip(qi_cols, node, strict=True)),
        frame=frame,
        metrics=metrics,
        seconds=seconds,
        search=search_info,
    )


def _population(
    population: pl.LazyFrame | pl.DataFrame | None,
    qis: Mapping[str, Hierarchy],
    encoded: list[EncodedQI],
    k_map: int | None,
    d_min: float | None,
    d_max: float | None,
) -> Population | None:
    """The population's distinct QI tuples, coded at every level against the data's labels.

    Population values are generalized by the same hierarchies and matched by label, so values
    the data does not have need no code of their own: a tuple whose label at a level is no
    data value's label belongs to no class of the data at that level.
    """
    wants = k_map is not None or d_min is not None or d_max is not None
    if population is None:
        if wants:
            raise ValueError("k-map and delta-presence need a population table")
        return None
    if not wants:
        raise ValueError("a population table needs k-map or delta-presence")
    pop = population.collect() if isinstance(population, pl.LazyFrame) else population
    cols = [q.name for q in encoded]
    missing = [c for c in cols if c not in pop.columns]
    if missing:
        raise ValueError(f"population table: quasi-identifier column(s) missing: {missing}")
    agg = pop.group_by(cols).agg(pl.len().alias("__n"))
    codes: list[list[np.ndarray]] = []
    for q in encoded:
        h = qis[q.name]
        gen = agg.select(
            [h.expr(pl.col(q.name), lvl).cast(pl.String).alias(str(lvl)) for lvl in range(q.levels)]
        )
        per_level = []
        for lvl in range(q.levels):
            lookup = pl.DataFrame(
                {
                    "lab": pl.Series(q.labels[lvl], dtype=pl.String),
                    "code": np.arange(len(q.labels[lvl]), dtype=np.int64),
                }
            )
            code = (
                gen.select(pl.col(str(lvl)).alias("lab"))
                .join(lookup, on="lab", how="left", nulls_equal=True, maintain_order="left")
                .get_column("code")
                .fill_null(-1)
                .to_numpy()
                .astype(np.int64)
            )
            per_level.append(code)
        codes.append(per_level)
    counts = agg.get_column("__n").to_numpy().astype(np.int64)
    st = strides_of([q.sizes[0] for q in encoded])
    return Population(codes, counts, k_map, d_min, d_max, None if st is None else st[0])


def _sensitive_models(
    df: pl.DataFrame,
    sens: dict[str, float | None],
    codes: list[np.ndarray],
    values: list[pl.Series],
    variant: str,
    c: float | None,
    t: float | None,
    t_hierarchies: dict[str, Hierarchy],
) -> tuple[list[DistinctLDiversity], list[FrequencyModel]]:
    """The l-diversity and t-closeness models of the sensitive columns (see ``anonymize``)."""
    if variant not in ("distinct", "entropy", "recursive"):
        raise ValueError(f"unknown l-diversity variant {variant!r} (distinct, entropy, recursive)")
    if variant == "recursive" and c is None:
        raise ValueError("recursive (c, l)-diversity needs c")
    extra = set(t_hierarchies) - set(sens)
    if extra:
        raise ValueError(f"t-closeness hierarchy for non-sensitive column(s): {sorted(extra)}")
    ldiv: list[DistinctLDiversity] = []
    freq: list[FrequencyModel] = []
    for i, (col, lv) in enumerate(sens.items()):
        if lv is not None:
            if variant == "distinct":
                ldiv.append(DistinctLDiversity(col, int(lv), i))
            elif variant == "entropy":
                freq.append(EntropyLDiversity(col, float(lv), i))
            else:
                freq.append(RecursiveCLDiversity(col, int(lv), float(c), i))  # type: ignore[arg-type]
        if t is not None:
            overall = np.bincount(codes[i], minlength=len(values[i])) / max(1, df.height)
            groups = None
            h = t_hierarchies.get(col)
            if h is not None:
                frame = pl.DataFrame({"v": values[i]})
                groups = []
                for lvl in range(1, h.levels):
                    lab = frame.select(h.expr(pl.col("v"), lvl).cast(pl.String)).to_series()
                    if lab.null_count():
                        raise ValueError(f"hierarchy of sensitive column {col!r} misses values")
                    groups.append(lab.rank("dense").cast(pl.Int64).to_numpy() - 1)
            freq.append(TCloseness(col, float(t), i, overall, groups))
    return ldiv, freq


def _sensitive_ids(
    codes: list[np.ndarray], sizes: list[int]
) -> tuple[np.ndarray | None, int, list[np.ndarray], list[int]]:
    """One id per distinct combination of the sensitive columns' values ("sid"), the number of
    sids, and per column the value code of each sid."""
    if not codes:
        return None, 1, [], []
    key, space = combine(codes, sizes)
    sid, n_sid, first = group_ids(key, space)
    return sid, n_sid, [c[first].astype(np.int64) for c in codes], sizes


def _output(
    df: pl.DataFrame,
    encoded: list[EncodedQI],
    raw: list[np.ndarray],
    node: tuple[int, ...],
    t: Table,
    fail: np.ndarray,
    seed: int,
) -> pl.DataFrame:
    """The input rows, QIs generalized to ``node`` (``*`` where the class fails), shuffled."""
    labels = [q.up[lvl].astype(np.uint32)[r] for q, lvl, r in zip(encoded, node, raw, strict=True)]
    sizes = [q.sizes[lvl] for q, lvl in zip(encoded, node, strict=True)]
    suppressed = _rows_in(labels, sizes, t, fail)
    idx = {}
    for q, lvl, lab in zip(encoded, node, labels, strict=True):
        if suppressed is not None:
            lab[suppressed] = len(q.labels[lvl])  # the "*" label (after _rows_in used the codes)
        idx[q.name] = lab
    names = {
        q.name: pl.Series(q.labels[lvl] + [SUPPRESSED], dtype=pl.String)
        for q, lvl in zip(encoded, node, strict=True)
    }
    order = pl.Series("__perm", np.random.default_rng(seed).permutation(df.height))
    return pl.DataFrame(
        [pl.Series(c, idx[c]) if c in idx else df.get_column(c) for c in df.columns]
    ).select(
        pl.lit(names[c]).gather(pl.col(c).gather(order)).alias(c)
        if c in idx
        else pl.col(c).gather(order)
        for c in df.columns
    )


def _output_by_class(
    df: pl.DataFrame,
    encoded: list[EncodedQI],
    base: Table,
    radix: np.ndarray | None,
    node: tuple[int, ...],
    t: Table,
    fail: np.ndarray,
    seed: int,
) -> pl.DataFrame | None:
    """``_output`` through the level-0 classes: each class's generalized (or ``*``) codes are
    worked out once, and each row only gathers its class's, after the shuffle. Same frame as
    ``_output``, without the per-row key of every QI. None when the tables lack what it needs
    (a person or sensitive column, or a key space too large for one radix)."""
    if base.row_class is None or radix is None or t.key is None:
        return None
    lc = base.level_codes
    gen = [q.step(0, lvl)[lc[:, j]] for j, (q, lvl) in enumerate(zip(encoded, node, strict=True))]
    base_key = np.zeros(len(lc), dtype=np.int64)
    for g, r in zip(gen, radix, strict=True):
        base_key += g.astype(np.int64) * int(r)
    order = np.argsort(t.key)
    at = order[np.minimum(np.searchsorted(t.key, base_key, sorter=order), len(order) - 1)]
    if not np.array_equal(t.key[at], base_key):  # pragma: no cover - tables out of step
        return None
    bad = fail[at]
    perm = np.random.default_rng(seed).permutation(df.height)
    row_cls = base.row_class[perm]
    cols: dict[str, pl.Series] = {}
    names = {}
    for q, lvl, g in zip(encoded, node, gen, strict=True):
        lab = g.astype(np.uint32)
        lab[bad] = len(q.labels[lvl])  # the "*" label
        cols[q.name] = pl.Series(q.name, lab[row_cls])
        names[q.name] = pl.Series(q.labels[lvl] + [SUPPRESSED], dtype=pl.String)
    order_s = pl.Series("__perm", perm)
    return pl.DataFrame([cols[c] if c in cols else df.get_column(c) for c in df.columns]).select(
        pl.lit(names[c]).gather(pl.col(c)).alias(c) if c in cols else pl.col(c).gather(order_s)
        for c in df.columns
    )


def _rows_in(
    labels: list[np.ndarray], sizes: list[int], t: Table, fail: np.ndarray
) -> np.ndarray | None:
    """Per-row flag: does the row's class (at the chosen node) fail? None when none fails."""
    if not fail.any():
        return None
    space = 1
    for s in sizes:
        space *= s
    if space < 1 << 62:
        row_key, _ = combine(labels, sizes)
        cls_key, _ = class_keys(t.level_codes, sizes)
        bad = cls_key[fail]
        if space <= 4 * len(row_key) + 1024:
            flag = np.zeros(space, dtype=bool)
            flag[bad] = True
            return flag[row_key]
        return np.isin(row_key, bad)
    # astronomically large key space: match the failing classes' codes column by column
    rows = pl.DataFrame({str(i): lab.astype(np.int64) for i, lab in enumerate(labels)})
    lc = t.level_codes
    bad = pl.DataFrame({str(i): lc[fail, i] for i in range(len(labels))}).with_columns(
        pl.lit(True).alias("__bad")
    )
    joined = rows.join(
        bad, on=[str(i) for i in range(len(labels))], how="left", maintain_order="left"
    )
    return joined.get_column("__bad").fill_null(False).to_numpy()
