"""The record-level release ``anonymized/page_views``: every column under a privacy model.

k-anonymity over persons on the quasi-identifiers alone let the free-text-derived column ride
along: rare templates (``/u/<name>/wishlist``), special-care pages (``/clinic/...``) and classes
whose page mix was one heavy user's browsing were published (issue 15, finding 5). Here every
published column is one of (:data:`COLUMN_MODEL`, checked by :func:`check_column_model`):

- a **quasi-identifier** generalized by the lattice search (k distinct persons per class);
- the **sensitive attribute** ``url_template`` under distinct l-diversity (at least ``l``
  values per class, the engine's :class:`~tokumei.anonymize.kanon.models.DistinctLDiversity`
  during the search, re-checked on the final records) whose values are folded
  (:mod:`tokumei.anonymize.folding`) to those at least ``k`` persons use *in the release*, and
  never special care;
- nothing else: a new column fails the release until it is given a model here.

Each person contributes at most ``m`` records to a class (:func:`bound_contributions`), so one
person holds at most m / (m + k - 1) of a class's records. The bound is applied twice: per
level-0 class before the search (so the search sees the bounded data), and per published class
after it (a generalized device merges a person's classes). Which records a person keeps is
decided by a hash of the (keyed-pseudonym) person and the template, never by input order:
distinct templates first, so the bound costs diversity last.

Folding and withholding interact: the search may suppress persons, so a template that had k
persons before it can have fewer after; folding a template can leave a class with fewer than
``l`` values; withholding that class lowers other templates' persons. :func:`settle` runs these
rules to their fixed point (each round folds a value or withholds a class, so it ends), then
:func:`assert_release` checks every property on the final records and raises if any fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tokumei.anonymize.folding import OTHER, SpecialCare, fold_rare
from tokumei.anonymize.hierarchy import SUPPRESSED, Hierarchy

#: What each published column of ``anonymized/page_views`` is in disclosure terms.
COLUMN_MODEL: dict[str, str] = {
    "age": "quasi_identifier",
    "gender": "quasi_identifier",
    "prefecture": "quasi_identifier",
    "device_class": "quasi_identifier",
    "url_template": "sensitive:distinct_l_diversity+folded_k_persons",
}


#: What each published column of ``anonymized/page_views`` holds (data dictionary, catalog).
COLUMN_DOCS: dict[str, str] = {
    "age": "age in years, 5- or 10-year band, or `*` (90+ top-coded), as the search chose",
    "gender": "gender or `*`",
    "prefecture": "prefecture, region or `*`",
    "device_class": "device class (from the user agent) or `*`",
    "url_template": "page path template (ids → :id, no query); a template used by fewer "
    "than k persons of the release, or revealing special care, is `other`",
}


class ReleaseCheckError(RuntimeError):
    """The records about to be released break a property they must have: nothing is written."""


@dataclass(frozen=True)
class RecordRules:
    """The parameters of one record-level release (policy ``thresholds`` and ``records``)."""

    k: int
    l: int  # noqa: E741 - the model's own name
    max_records_per_person_class: int
    max_suppression: float
    special_care: SpecialCare = field(default_factory=SpecialCare)
    #: t-closeness of url_template per class (None: measured and reported, not enforced)
    t: float | None = None


@dataclass
class RecordsResult:
    """The released records (person column still present, for GX's class sizes) and metrics.

    ``metrics`` holds exact record counts next to their shares (internal run record); the
    published manifest prints both by one rule (tokumei/release/manifest.py: printed_count,
    printed_share), so no small count can be derived from a printed share.
    """

    frame: pl.DataFrame
    transformation: dict[str, int] | None
    metrics: dict[str, Any]
    engine: dict[str, Any]
    seconds: float = 0.0


def check_column_model(columns: Sequence[str], model: Mapping[str, str] = COLUMN_MODEL) -> None:
    """Raise unless every column is in ``model`` (a QI, a sensitive column under a model, or a
    closed public domain): a column nobody classified is never published."""
    unknown = [c for c in columns if c not in model]
    if unknown:
        raise ReleaseCheckError(
            f"anonymized/page_views: column(s) {', '.join(unknown)} have no privacy model "
            "(quasi-identifier, sensitive under l-diversity, or closed public domain)"
        )


def bound_contributions(
    records: pl.LazyFrame, person: str, class_cols: Sequence[str], value: str, m: int
) -> pl.LazyFrame:
    """Keep at most ``m`` records per (person, class): distinct ``value``s first, in an order
    fixed by a hash of (person, value), so the choice depends on neither input order nor time.

    Rows of one (person, class, value) are identical, so numbering them within that group
    reveals nothing about the input order either. The person column is a keyed pseudonym, or
    (``anonymize_records``) its rank among the day's pseudonyms, so nobody without the key can
    predict which records stay. (Polars' hash is stable within a
    Polars version; an upgrade may choose other records, never more of them.)
    """
    if m < 1:
        raise ValueError(f"max_records_per_person_class must be at least 1, got {m}")
    group = [person, *class_cols]
    columns = records.collect_schema().names()
    # The n rows of one (person, class, value) are counted, not numbered by a window: they
    # are the same row, and only their first m copies can be kept (10M-event day: 4.9M
    # records, 7.6 -> 3.8 CPU-s, the same frame).
    # Collected here, not by the caller: the sort keys' codes are the counted values.
    counted = records.group_by([*group, value]).agg(pl.len().alias("_n")).collect()
    key = _sort_keys(counted, [*group, value])
    by_group = [key[c] for c in group]
    return (
        counted.lazy()
        .with_columns(
            pl.int_ranges(0, pl.min_horizontal("_n", m)).alias("_occ"),
            pl.struct(person, value).hash(seed=0).alias("_h"),
        )
        .explode("_occ")
        .sort([*by_group, pl.col("_occ"), pl.col("_h"), key[value]], nulls_last=True)
        .filter(pl.int_range(pl.len()).over(by_group) < m)
        .select(columns)
    )


def _sort_keys(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, pl.Expr]:
    """Each column as a sort key that orders like the column: a string column as an ``Enum``
    of its sorted values (an integer code in the same order), any other column as it is.

    Why: sorting and windowing millions of records on four string columns cost more than the
    rest of :func:`bound_contributions` (10M-event day: 4.7 -> 3.9 CPU-s with the codes, the
    same frame; bench/results/scale.md, session 16).
    """
    return {
        c: pl.col(c).cast(pl.Enum(frame[c].drop_nulls().unique().sort()))
        if frame.schema[c] == pl.String
        else pl.col(c)
        for c in columns
    }


def class_stats(
    records: pl.LazyFrame, person: str, class_cols: Sequence[str], value: str
) -> pl.LazyFrame:
    """Per class: persons, records, distinct values, and the largest share one person holds."""
    per_person = records.group_by([*class_cols, person]).agg(pl.len().alias("_n"))
    shares = per_person.group_by(class_cols).agg(
        pl.len().alias("persons"),
        pl.col("_n").sum().alias("records"),
        pl.col("_n").max().alias("_max"),
    )
    distinct = records.group_by(class_cols).agg(pl.col(value).n_unique().alias("distinct"))
    return shares.join(distinct, on=list(class_cols), nulls_equal=True).select(
        *class_cols,
        "persons",
        "records",
        "distinct",
        (pl.col("_max") / pl.col("records")).alias("max_person_share"),
    )


def class_distances(records: pl.LazyFrame, class_cols: Sequence[str], value: str) -> pl.LazyFrame:
    """Per class: the distance between its ``value`` distribution (over records) and the
    release's, for t-closeness. With no order between URL templates every pair of values is
    at ground distance 1, and the earth mover's distance is the total variation distance
    ½ Σ_v |p(v) − q(v)|; values absent from the class contribute q(v), hence the
    ``½ (Σ_{v in class} (|p − q| − q) + 1)`` form over the class's own values only.
    """
    cols = list(class_cols)
    overall = records.group_by(value).agg(pl.len().alias("_n"))
    overall = overall.select(value, (pl.col("_n") / pl.col("_n").sum()).alias("_q"))
    per = records.group_by([*cols, value]).agg(pl.len().alias("_c"))
    per = per.with_columns((pl.col("_c") / pl.col("_c").sum().over(cols)).alias("_p"))
    return (
        per.join(overall, on=value, nulls_equal=True)
        .group_by(cols)
        .agg(
            (0.5 * ((pl.col("_p") - pl.col("_q")).abs() - pl.col("_q")).sum() + 0.5).alias(
                "distance"
            )
        )
    )


def published_cells_only(
    records: pl.LazyFrame, stats_table: pl.DataFrame, value: str, link: str
) -> pl.LazyFrame:
    """Keep the records whose cell of the day's statistics table (``value`` as that table folds
    it × ``link``) was published.

    Why: a record release is a lower bound on the statistics table that counts the same persons
    (n records of a template on a device prove at least n / m persons), so records of a cell
    the table suppressed would narrow that suppressed cell (bench/results/attack.md, finding
    A). Records of published cells only give bounds the published values already imply.
    """
    rows = stats_table.select(value, link, pl.col("persons").is_not_null().alias("_pub"))
    named = rows.filter(pl.col(value) != OTHER)[value].unique().to_list()
    cell = (
        pl.when(pl.col(value).is_in(named)).then(pl.col(value)).otherwise(pl.lit(OTHER))
    ).alias("_cell")
    published = rows.filter(pl.col("_pub")).select(pl.col(value).alias("_cell"), link)
    return (
        records.with_columns(cell)
        .join(published.lazy(), on=["_cell", link], how="semi", nulls_equal=True)
        .drop("_cell")
    )


def other_rows_published(stats_table: pl.DataFrame, value: str, link: str) -> pl.Expr:
    """Rows whose folded value is ``other`` may stay only where the table's ``other`` cells of
    that ``link`` value (or, for a generalized ``link``, all of them) are published.

    The records' ``other`` holds values the table publishes by name (a template with k persons
    that day can have fewer in the release), so an attacker reading it as a bound on the
    table's ``other`` cell would use a false relation that can still land on the truth.
    """
    other = stats_table.filter(pl.col(value) == OTHER)
    pub = other.filter(pl.col("persons").is_not_null())[link].to_list()
    every = other.height > 0 and len(pub) == other.height
    return (
        (pl.col(value) != OTHER)
        | pl.col(link).is_in(pub)
        | ((pl.col(link) == SUPPRESSED) & pl.lit(every))
    )


def settle(
    records: pl.DataFrame,
    person: str,
    class_cols: Sequence[str],
    value: str,
    rules: RecordRules,
    keep: pl.Expr | None = None,
) -> tuple[pl.DataFrame, int]:
    """Fold and withhold until every value has k persons and every class k persons, l values
    and (when ``rules.t`` is set) a value distribution within ``t`` of the release's; rows
    outside ``keep`` (when given) are withheld too.

    Returns the records and the number of records withheld.
    """
    withheld = 0
    while True:
        folded = fold_rare(records.lazy(), value, person, rules.k, rules.special_care).collect()
        if keep is not None:
            kept_rows = folded.filter(keep)
            withheld += folded.height - kept_rows.height
            folded = kept_rows
        stats = class_stats(folded.lazy(), person, class_cols, value).collect()
        fails = (pl.col("persons") < rules.k) | (pl.col("distinct") < rules.l)
        if rules.t is not None:
            dist = class_distances(folded.lazy(), class_cols, value).collect()
            stats = stats.join(dist, on=list(class_cols), nulls_equal=True)
            fails = fails | (pl.col("distance") > rules.t + 1e-12)
        bad = stats.filter(fails)
        changed = not folded[value].equals(records[value])
        records = folded
        if bad.height:
            kept = records.join(
                bad.select(class_cols), on=list(class_cols), how="anti", nulls_equal=True
            )
            withheld += records.height - kept.height
            records, changed = kept, True
        if not changed:
            return records, withheld


def assert_release(
    records: pl.DataFrame, person: str, class_cols: Sequence[str], value: str, rules: RecordRules
) -> dict[str, Any]:
    """Check the final records (fail closed) and return the figures the run record reports."""
    if records.height == 0:
        return {"classes": 0}
    per_value = records.group_by(value).agg(pl.col(person).n_unique().alias("persons"))
    rare = per_value.filter((pl.col(value) != OTHER) & (pl.col("persons") < rules.k))
    if rare.height:
        raise ReleaseCheckError(
            f"anonymized/page_views: {rare.height} {value} value(s) used by fewer than k persons"
        )
    special = records.filter(rules.special_care.matches(pl.col(value)))
    if special.height:
        raise ReleaseCheckError(f"anonymized/page_views: special-care {value} value(s) remain")
    stats = class_stats(records.lazy(), person, class_cols, value).collect()
    m = rules.max_records_per_person_class
    over = records.group_by([*class_cols, person]).len().filter(pl.col("len") > m)
    if over.height:
        raise ReleaseCheckError(
            f"anonymized/page_views: a person contributes more than {m} records to a class"
        )
    if stats["persons"].min() < rules.k or stats["distinct"].min() < rules.l:
        raise ReleaseCheckError(
            "anonymized/page_views: a class has fewer than k persons or l distinct values"
        )
    distance = float(class_distances(records.lazy(), class_cols, value).collect()["distance"].max())
    if rules.t is not None and distance > rules.t + 1e-12:
        raise ReleaseCheckError(
            f"anonymized/page_views: a class's {value} distribution is farther than t from the "
            "release's"
        )
    named = per_value.filter(pl.col(value) != OTHER)
    return {
        "classes": stats.height,
        "min_class_persons": int(stats["persons"].min()),
        "max_person_share": round(float(stats["max_person_share"].max()), 4),
        "mean_max_person_share": round(float(stats["max_person_share"].mean()), 4),
        "distinct_values": per_value.height,
        "min_value_persons": int(named["persons"].min()) if named.height else None,
        "other_share": round(float((records[value] == OTHER).mean()), 4),
        "max_class_distance": round(distance, 4),  # t-closeness the release has
    }


def release_risks(
    records: pl.DataFrame,
    person: str,
    qis: Mapping[str, Hierarchy],
    transformation: Mapping[str, int],
    population: pl.DataFrame | None,
    threshold: float,
) -> dict[str, Any]:
    """Prosecutor, journalist and marketer risk of the released ``records`` (ARX's definitions,
    :func:`tokumei.anonymize.kanon.risk.risk_summary`), classes counted in distinct persons.

    ``population``: one row per person of the population with the QI columns it has (the run's
    persons table: age, gender, prefecture), generalized here to ``transformation``. A QI the
    population lacks (``device_class``: a person uses several devices, the register has none)
    is not matched, so a class's population is every person sharing its other values; the
    suppressed class (every QI ``*``) has the whole population. ``None``: the release is its
    own population (ARX's default).
    """
    from tokumei.anonymize.kanon.risk import risk_summary

    class_cols = list(qis)
    sample = records.group_by(class_cols).agg(pl.col(person).n_unique().alias("_f"))
    pop_sizes = None
    if population is not None:
        cols = [c for c in class_cols if c in population.columns]
        gen = population.select(
            person,
            *[qis[c].expr(pl.col(c), transformation[c]).cast(pl.String).alias(c) for c in cols],
        )
        per = gen.group_by(cols).agg(pl.col(person).n_unique().alias("_F"))
        star = pl.all_horizontal([pl.col(q) == SUPPRESSED for q in class_cols])
        everyone = gen[person].n_unique()
        sample = sample.join(per, on=cols, how="left", nulls_equal=True).with_columns(
            pl.when(star).then(pl.lit(everyone)).otherwise(pl.col("_F")).fill_null(0).alias("_F")
        )
        pop_sizes = sample["_F"].to_numpy()
    return risk_summary(sample["_f"].to_numpy(), pop_sizes, threshold)


def release_records(
    records: pl.DataFrame,
    qis: Mapping[str, Hierarchy],
    person: str,
    value: str,
    rules: RecordRules,
    stats_table: pl.DataFrame | None = None,
    link: str = "device_class",
    population: pl.DataFrame | None = None,
) -> RecordsResult:
    """k-anonymize ``records`` over persons with ``value`` folded, bounded and l-diverse.

    ``records``: one row per record with ``person``, the QI columns and ``value``. When no
    transformation satisfies k and l within the suppression limit, nothing is released (an
    empty frame with the same columns; fail closed) and the metrics say so. ``stats_table``:
    the day's published statistics table over ``value`` × ``link`` (null = suppressed); records
    of its suppressed cells are withheld (:func:`published_cells_only`). ``population``: the
    persons the journalist and marketer risks are measured against (:func:`release_risks`).
    """
    from tokumei.anonymize.kanon import anonymize

    class_cols = list(qis)
    check_column_model([*class_cols, value])
    n_in = records.height
    m = rules.max_records_per_person_class
    keep = None
    unpublished = 0
    if stats_table is not None:
        records = published_cells_only(records.lazy(), stats_table, value, link).collect()
        keep = other_rows_published(stats_table, value, link)
    unpublished = n_in - records.height  # records of cells the statistics table suppressed
    # 1. fold on the input (rare and special care), bound per level-0 class
    prepared = bound_contributions(
        fold_rare(records.lazy(), value, person, rules.k, rules.special_care),
        person,
        class_cols,
        value,
        m,
    ).collect()
    metrics: dict[str, Any] = {
        "input_records": n_in,
        # a sentence, not integers: the manifest prints every integer of this record as a count
        "privacy_model": f"k={rules.k} persons per class; url_template distinct "
        f"{rules.l}-diverse per class, folded to values of >= {rules.k} persons and never "
        f"special care; <= {m} records per person per class"
        + (f"; {rules.t}-close per class" if rules.t is not None else ""),
        # exact counts with their shares: the manifest prints each share from the printed
        # counts (tokumei/release/manifest.py printed_share), never this 4-decimal value
        "bounded_records": n_in - unpublished - prepared.height,
        "bounded_records_share": round((n_in - unpublished - prepared.height) / n_in, 4)
        if n_in
        else 0.0,
    }
    # 2. the search, with url_template as the sensitive column under distinct l-diversity
    try:
        result = anonymize(
            prepared,
            qis,
            k=rules.k,
            max_suppression=rules.max_suppression,
            person_col=person,
            sensitive={value: rules.l},
            seed=0,
        )
    except ValueError as exc:
        if "no transformation satisfies" not in str(exc):
            raise
        # the engine's output types (generalized QIs are strings), no rows
        empty = records.clear().select(
            person, *[pl.col(c).cast(pl.String) for c in class_cols], value
        )
        metrics.update(
            {
                "released": False,
                "reason": "no transformation satisfies k and l-diversity within the "
                "suppression limit; nothing released",
                "withheld_records": n_in,
                "withheld_records_share": 1.0 if n_in else 0.0,
                "kept_records": 0,
                "kept_records_share": 0.0,
                "classes": 0,
            }
        )
        return RecordsResult(empty, None, metrics, {}, 0.0)
    frame = result.frame.select(person, *class_cols, value)
    # 3. bound per published class, then fold/withhold to the fixed point, then check
    bounded = bound_contributions(frame.lazy(), person, class_cols, value, m).collect()
    settled, withheld = settle(bounded, person, class_cols, value, rules, keep)
    withheld += unpublished
    final = assert_release(settled, person, class_cols, value, rules)
    star = pl.all_horizontal([pl.col(q) == SUPPRESSED for q in class_cols])
    metrics.update(
        {
            "released": True,
            "bounded_records": n_in - unpublished - bounded.height,
            "bounded_records_share": round((n_in - unpublished - bounded.height) / n_in, 4)
            if n_in
            else 0.0,
            "withheld_records_share": round(withheld / n_in, 4) if n_in else 0.0,
            "withheld_records": withheld,
            "kept_records": settled.height,
            "kept_records_share": round(settled.height / n_in, 4) if n_in else 0.0,
            "suppressed_class_released": bool(settled.filter(star).height),
            **final,
            # threshold 1/k: a pair above it is in a class the policy would not accept
            "reidentification_risk": release_risks(
                settled, person, qis, result.transformation, population, 1.0 / rules.k
            ),
        }
    )
    return RecordsResult(settled, result.transformation, metrics, result.metrics, result.seconds)


def describe_markdown() -> str:
    """The data dictionary section of ``anonymized/page_views`` (docs/data_dictionary.md)."""
    lines = [
        "## anonymized/page_views (record-level release, 匿名加工情報)",
        "",
        "One row per page view of a known person, k-anonymized over persons "
        "(`tokumei/anonymize/records.py`): every class of (age, gender, prefecture, "
        "device_class) holds at least k distinct persons and at least `records.l` distinct "
        "url_template values; one person contributes at most "
        "`records.max_records_per_person_class` records to a class (distinct pages first, "
        "chosen by a keyed hash, not by time or order). Records of classes that fail after "
        "folding are withheld; when no generalization satisfies k and l within the "
        "suppression limit the day's dataset is published empty. The largest distance "
        "(total variation) of a class's url_template mix from the release's is measured "
        "and reported as `max_class_distance` (t-closeness), and enforced when the policy "
        "sets `records.t_closeness`. Rows are shuffled.",
        "",
        "Re-identification risk (manifest and privacy report, `reidentification_risk`): "
        "ARX's prosecutor, journalist and marketer models over classes counted in distinct "
        "persons (a person in two classes counts in both). The journalist and marketer "
        "population is the run's own persons table (every known person with an age), "
        "generalized to the release's transformation and matched on age, gender and "
        "prefecture; it has no device class (a person uses several), so a class's population "
        "is every person sharing its other values, and an attacker who also knows the "
        "target's device class is bounded by the prosecutor risk. Printed as shares: "
        "highest and lowest risk and success rates rounded up to two significant digits, "
        "records at risk (risk above 1/k) as a share of printed counts.",
        "",
        "| column | privacy model | description |",
        "|---|---|---|",
        *[f"| `{c}` | {COLUMN_MODEL[c]} | {COLUMN_DOCS[c]} |" for c in COLUMN_MODEL],
    ]
    return "\n".join(lines)
