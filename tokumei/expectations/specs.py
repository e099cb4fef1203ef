"""Declarative description of what a published output must satisfy (no GX import here).

Why a separate spec layer: the pipeline (and the policy compiler) must be able to say *what* an
output promises without paying GX's ~9 s import, and tests of the anonymizer can construct specs
cheaply. :mod:`tokumei.expectations.runner` turns an :class:`OutputSpec` into a GX suite.

k-anonymity over persons (design)
---------------------------------
docs/architecture.md §5: k counts *distinct persons* per equivalence class, never rows. An anonymized output
no longer carries a person key, so GX cannot count persons from the published frame alone. The
caller therefore validates the published frame **plus one validation-only column** — by default
``_class_persons`` — that holds, on every row, the number of distinct persons in that row's
quasi-identifier class, computed *before* the key is dropped (use :func:`add_class_persons`).

The custom expectation ``ExpectQiClassesToHaveAtLeastKPersons`` then checks, per QI tuple
(nulls form their own class):

* the class-size column is non-null and constant within the class (a stale or mis-joined column
  is caught rather than trusted),
* it is not larger than the number of rows of the class (each row belongs to one person, so a
  class cannot hold more persons than rows — catches a column computed on another frame),
* its minimum over all classes is ``>= k``.

The validation-only column is exempt from the exact-column-set check (it is not in ``columns``)
and must be dropped before publishing; :func:`strip_validation_columns` does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

Dtype = Literal["string", "int", "float", "date", "bool"]
Kind = Literal["stats", "anonymized", "input"]
"""``input``: the metrics of a day's landing and DB (``tokumei.expectations.inputs``)."""

CLASS_PERSONS_COLUMN = "_class_persons"
"""Default name of the validation-only per-row 'persons in my QI class' column."""

_DTYPES: frozenset[str] = frozenset({"string", "int", "float", "date", "bool"})


class SpecError(ValueError):
    """An :class:`OutputSpec` is inconsistent; raised at construction so a bad spec never runs."""


@dataclass(frozen=True)
class ColumnSpec:
    """One published column: logical type, nullability and optional value constraints.

    ``allowed`` is a closed value set (string columns); ``min``/``max`` bound numeric columns
    (nulls pass both, nullability is checked separately).
    """

    name: str
    dtype: Dtype
    nullable: bool
    allowed: list[str] | None = None
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise SpecError(f"column {self.name!r}: unknown dtype {self.dtype!r}")
        if (self.min is not None or self.max is not None) and self.dtype not in ("int", "float"):
            raise SpecError(f"column {self.name!r}: min/max need an int or float column")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError(f"column {self.name!r}: min > max")


@dataclass(frozen=True)
class OutputSpec:
    """Everything one output table must satisfy before it may be published.

    See the module docstring for the k-anonymity design (``person_count_column``). For
    ``max_suppressed_share``: with ``suppressed_flag_column`` (a non-null bool column, True on
    suppressed rows) the share of True rows is checked by a custom expectation; without one
    (statistics tables, where a suppressed cell is a null count) every count column must be
    non-null on at least ``1 - max_suppressed_share`` of the rows.
    """

    name: str
    kind: Kind
    columns: list[ColumnSpec]
    forbidden_columns: list[str] = field(default_factory=list)
    pii_checked_columns: list[str] = field(default_factory=list)
    count_columns: list[str] = field(default_factory=list)
    min_cell: int = 10
    k: int | None = None
    qi_columns: list[str] = field(default_factory=list)
    person_count_column: str | None = None
    max_suppressed_share: float | None = None
    suppressed_flag_column: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        by_name = {c.name: c for c in self.columns}
        if not self.name:
            raise SpecError("output name is empty")
        if self.kind not in ("stats", "anonymized", "input"):
            raise SpecError(f"{self.name}: unknown kind {self.kind!r}")
        if len(set(names)) != len(names):
            raise SpecError(f"{self.name}: duplicate column names")
        if clash := sorted(set(self.forbidden_columns) & set(names)):
            raise SpecError(f"{self.name}: columns both published and forbidden: {clash}")
        for col in self.pii_checked_columns:
            if col not in by_name or by_name[col].dtype != "string":
                raise SpecError(f"{self.name}: pii_checked column {col!r} is not a string column")
        for col in self.count_columns:
            if col not in by_name or by_name[col].dtype != "int":
                raise SpecError(f"{self.name}: count column {col!r} is not an int column")
        if self.min_cell < 1:
            raise SpecError(f"{self.name}: min_cell must be >= 1")
        if self.k is not None:
            if self.k < 1:
                raise SpecError(f"{self.name}: k must be >= 1")
            if not self.qi_columns:
                raise SpecError(f"{self.name}: k needs qi_columns")
            if self.person_count_column is None:
                raise SpecError(
                    f"{self.name}: k needs person_count_column (persons per QI class; rows are"
                    " not persons)"
                )
        for col in self.qi_columns:
            if col not in by_name:
                raise SpecError(f"{self.name}: qi column {col!r} is not a published column")
        pcc = self.person_count_column
        if pcc is not None and pcc in by_name and by_name[pcc].dtype != "int":
            raise SpecError(f"{self.name}: person_count_column must be an int column")
        if self.max_suppressed_share is not None:
            if not 0.0 <= self.max_suppressed_share <= 1.0:
                raise SpecError(f"{self.name}: max_suppressed_share must be within [0, 1]")
            if self.suppressed_flag_column is None and not self.count_columns:
                raise SpecError(
                    f"{self.name}: max_suppressed_share needs suppressed_flag_column or"
                    " count_columns"
                )
        if self.suppressed_flag_column is not None:
            flag = by_name.get(self.suppressed_flag_column)
            if flag is None or flag.dtype != "bool":
                raise SpecError(f"{self.name}: suppressed_flag_column must be a bool column")

    @property
    def validation_only_columns(self) -> list[str]:
        """Columns the validated frame carries that are not published (exempt from the set
        check)."""
        published = {c.name for c in self.columns}
        pcc = self.person_count_column
        return [pcc] if pcc is not None and pcc not in published else []


def add_class_persons(
    df: pl.DataFrame,
    qi_columns: Sequence[str],
    person_key: str,
    out: str = CLASS_PERSONS_COLUMN,
) -> pl.DataFrame:
    """Add ``out`` = distinct persons of each row's QI class, computed while the key still exists.

    Call this on the internal (pseudonymized) frame right before the person key is dropped, then
    drop the key and validate. Nulls in QI columns form their own class, as in GX's check.
    """
    return df.with_columns(pl.col(person_key).n_unique().over(list(qi_columns)).alias(out))


def strip_validation_columns(df: pl.DataFrame, spec: OutputSpec) -> pl.DataFrame:
    """Drop the validation-only columns of ``spec`` so the frame can be published."""
    return df.drop([c for c in spec.validation_only_columns if c in df.columns])
