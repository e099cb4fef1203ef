"""Column discovery: which entity types live in which string columns, and at what rate.

The policy says what each column is; discovery checks that claim on a sample. A column whose
role is ``insensitive`` (kept as is in outputs) that holds personal data above ``max_rate``
stops the run with ``PiiInColumnError`` naming the column and entity type, never a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tokumei.infra.errors import SafeMessage

from .analyzer import ALL_ENTITIES, NON_PERSONAL_ENTITIES
from .prefilter import candidate_expr
from .scrub import analyze_distinct, default_entities


class PiiInColumnError(SafeMessage, RuntimeError):
    """PII found in a column the policy calls insensitive (message names no value)."""

    def __init__(self, column: str, entity_type: str, rate: float, max_rate: float) -> None:
        self.column = column
        self.entity_type = entity_type
        self.rate = rate
        super().__init__(
            f"column {column!r} (role 'insensitive') contains {entity_type} in "
            f"{rate:.2%} of sampled values (allowed {max_rate:.2%})"
        )


@dataclass
class ColumnFinding:
    """Entity types found in one column of the sample, as value counts and rates."""

    column: str
    role: str | None
    sampled: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rates(self) -> dict[str, float]:
        """Share of sampled non-null values containing each entity type."""
        return {k: (v / self.sampled if self.sampled else 0.0) for k, v in self.counts.items()}


@dataclass
class DiscoveryReport:
    """Per-column findings; no values."""

    columns: dict[str, ColumnFinding] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """Plain dict for JSON/reports."""
        return {
            name: {"role": c.role, "sampled": c.sampled, "rates": c.rates}
            for name, c in self.columns.items()
        }


def sample_rows(frame: pl.LazyFrame, n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` rows drawn uniformly without replacement (all rows when there are fewer).

    Why not ``frame.collect().sample(n)``: discovery looks at 10,000 rows, and collecting a
    10M-event source to draw them held 3.5 GiB; this reads the row count from the Parquet
    metadata and streams only the drawn rows out.

    >>> sample_rows(pl.LazyFrame({"a": range(100)}), 3, seed=1).height
    3
    """
    total = int(frame.select(pl.len()).collect().item())
    if total <= n:
        return frame.collect()
    picked = pl.Series("_i", np.sort(np.random.default_rng(seed).choice(total, n, replace=False)))
    return (
        frame.with_row_index("_i")
        .filter(pl.col("_i").is_in(picked.cast(pl.get_index_type()).implode()))
        .drop("_i")
        .collect(engine="streaming")
    )


def discover_columns(
    df: pl.DataFrame,
    roles: Mapping[str, str],
    sample: int = 10_000,
    max_rate: float = 0.0,
    lang: str = "auto",
    ner: bool = False,
    seed: int = 0,
) -> DiscoveryReport:
    """Sample every string column, report entity rates, raise for PII in insensitive columns."""
    if df.height > sample:
        df = df.sample(n=sample, seed=seed)
    entities = ALL_ENTITIES if ner else default_entities(False) + tuple(NON_PERSONAL_ENTITIES)
    report = DiscoveryReport()
    for name, dtype in df.schema.items():
        if dtype not in (pl.String, pl.Categorical, pl.Enum):
            continue
        s = df.get_column(name).cast(pl.String).drop_nulls()
        frame = s.to_frame("v")
        mask = pl.lit(True) if ner else candidate_expr(pl.col("v"))
        counts = frame.filter(mask).group_by("v").len()
        found: Counter[str] = Counter()
        if counts.height:
            results = analyze_distinct(counts["v"].to_list(), lang, ner, entities)
            for n, findings in zip(counts["len"].to_list(), results, strict=True):
                for etype in {f.entity_type for f in findings}:
                    found[etype] += n
        report.columns[name] = ColumnFinding(name, roles.get(name), s.len(), dict(found))
    check_insensitive(report, max_rate)
    return report


def check_insensitive(report: DiscoveryReport, max_rate: float) -> None:
    """Raise :class:`PiiInColumnError` for personal data above ``max_rate`` in a column whose
    role is ``insensitive`` (a report may merge the samples of several files)."""
    for name, col in report.columns.items():
        if col.role != "insensitive":
            continue
        for etype, rate in sorted(col.rates.items()):
            if etype not in NON_PERSONAL_ENTITIES and rate > max_rate:
                raise PiiInColumnError(name, etype, rate, max_rate)
