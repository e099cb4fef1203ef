"""tokumei's custom GX 1.x expectations and the pandas metrics behind them.

Why custom expectations at all, and why these:

* ``UnexpectedRowsExpectation`` (GX's "custom SQL" expectation) is not an option: in GX 1.24 it
  supports only SQL/Spark data sources (we validate pandas frames, converted from Polars), and it
  would report *unexpected rows* — raw values — which must never reach Data Docs.
* GX has no "column must not exist" expectation, and no built-in that counts persons per
  quasi-identifier class; both are privacy guarantees the data-quality team must see by name.

Every metric here returns **only numbers or column names**, never a cell value, so whatever
result format GX uses, nothing raw can be rendered. Importing this module registers the
expectations and metrics with GX (the metaclass registry), which :mod:`tokumei.expectations.runner` does
before it builds suites.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.compatibility import pydantic
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import ExecutionEngine, PandasExecutionEngine
from great_expectations.expectations.expectation import (
    BatchExpectation,
    ColumnAggregateExpectation,
)
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider
from great_expectations.render import RenderedStringTemplateContent
from great_expectations.render.components import LegacyRendererType
from great_expectations.render.renderer.renderer import renderer

_LIBRARY_METADATA: dict[str, Any] = {
    "maturity": "experimental",
    "tags": ["tokumei", "privacy"],
    "contributors": ["tokumei"],
    "requirements": [],
}


def _render(
    template: str,
    params: dict[str, Any],
    runtime_configuration: dict | None,
) -> list[RenderedStringTemplateContent]:
    """One-line prescriptive text for Data Docs (parameters are spec values, never data)."""
    styling = (runtime_configuration or {}).get("styling", {})
    return [
        RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={"template": template, "params": params, "styling": styling},
        )
    ]


def _kwargs(configuration: Any) -> dict[str, Any]:
    return dict(getattr(configuration, "kwargs", None) or {})


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


class QiClassPersonStats(TableMetricProvider):
    """Summary of persons per quasi-identifier class, from a per-row class-size column.

    Returns ``{"classes", "min_persons", "classes_under_k", "inconsistent_classes"}`` — counts
    only. A class is *inconsistent* when its class-size column is null, differs between rows of
    the class, or exceeds the class's row count (impossible when each row is one person's).
    """

    metric_name = "tokumei.qi_class_person_stats"
    value_keys = ("qi_columns", "person_count_column", "k")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls,
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> dict[str, int | None]:
        df, _, _ = execution_engine.get_compute_domain(
            domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        qi = list(metric_value_kwargs["qi_columns"])
        pcol = metric_value_kwargs["person_count_column"]
        k = int(metric_value_kwargs["k"])
        if df.shape[0] == 0:
            return {
                "classes": 0,
                "min_persons": None,
                "classes_under_k": 0,
                "inconsistent_classes": 0,
            }
        persons = pd.to_numeric(df[pcol], errors="coerce")
        work = df[qi].copy()
        work["__persons"] = persons
        work["__null"] = persons.isna()
        by_class = work.groupby(qi, dropna=False, sort=False)
        grouped = by_class["__persons"]
        agg = pd.DataFrame(
            {
                "rows": grouped.size(),
                "nulls": by_class["__null"].sum(),
                "distinct": grouped.nunique(dropna=True),
                "min": grouped.min(),
            }
        )
        inconsistent = (agg["nulls"] > 0) | (agg["distinct"] != 1) | (agg["min"] > agg["rows"])
        valid_min = agg["min"].dropna()
        return {
            "classes": int(agg.shape[0]),
            "min_persons": int(valid_min.min()) if len(valid_min) else None,
            "classes_under_k": int((agg["min"].fillna(0) < k).sum()),
            "inconsistent_classes": int(inconsistent.sum()),
        }


class ColumnTrueShare(ColumnAggregateMetricProvider):
    """Share of rows whose boolean column is True (nulls count as not True)."""

    metric_name = "tokumei.column.true_share"

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> float:  # noqa: ANN001
        if len(column) == 0:
            return 0.0
        flags = column.astype("boolean").fillna(False).astype(bool)
        return float(flags.sum()) / float(len(column))


# --------------------------------------------------------------------------------------------
# expectations
# --------------------------------------------------------------------------------------------


class ExpectTableColumnsToExclude(BatchExpectation):
    """Expect none of ``forbidden_columns`` to be a column of the table.

    Identifiers and linking keys of the policy (email, user_id, cookie_id, …) must never be
    published under any name the policy knows; the exact-set check would also catch them, but
    this expectation names the breach for the data-quality team. Observed value: the forbidden
    column *names* present (never data).
    """

    forbidden_columns: list[str] = pydantic.Field(description="column names that must be absent")

    library_metadata: ClassVar[dict[str, Any]] = _LIBRARY_METADATA
    metric_dependencies = ("table.columns",)
    success_keys = ("forbidden_columns",)
    args_keys = ("forbidden_columns",)

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: ExecutionEngine | None = None,
    ) -> dict[str, Any]:
        forbidden = set(self._get_success_kwargs()["forbidden_columns"] or [])
        present = sorted(str(c) for c in metrics["table.columns"] if str(c) in forbidden)
        return {"success": not present, "result": {"observed_value": present}}

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict | None = None,
    ) -> list[RenderedStringTemplateContent]:
        cols = list(_kwargs(configuration).get("forbidden_columns") or [])
        return _render(
            "Must not contain any identifier or linking-key column: $cols.",
            {"cols": ", ".join(cols)},
            runtime_configuration,
        )


class ExpectQiClassesToHaveAtLeastKPersons(BatchExpectation):
    """Expect every quasi-identifier class to hold at least ``k`` distinct persons.

    The class size in persons comes from ``person_count_column`` (see
    :mod:`tokumei.expectations.specs`: the published frame has no person key any more). Fails when any
    class is under k *or* the class-size column is inconsistent (null, not constant within the
    class, or larger than the class's row count). Observed value: the minimum class size.
    """

    qi_columns: list[str] = pydantic.Field(description="quasi-identifier columns")
    person_count_column: str = pydantic.Field(description="per-row persons in the row's class")
    k: int = pydantic.Field(ge=1, description="minimum distinct persons per class")

    library_metadata: ClassVar[dict[str, Any]] = _LIBRARY_METADATA
    metric_dependencies = ("tokumei.qi_class_person_stats",)
    success_keys = ("qi_columns", "person_count_column", "k")
    args_keys = ("qi_columns", "person_count_column", "k")

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: ExecutionEngine | None = None,
    ) -> dict[str, Any]:
        stats = metrics["tokumei.qi_class_person_stats"]
        success = stats["classes_under_k"] == 0 and stats["inconsistent_classes"] == 0
        return {
            "success": success,
            "result": {
                "observed_value": stats["min_persons"],
                "details": {
                    "classes": stats["classes"],
                    "classes_under_k": stats["classes_under_k"],
                    "inconsistent_classes": stats["inconsistent_classes"],
                },
            },
        }

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict | None = None,
    ) -> list[RenderedStringTemplateContent]:
        kw = _kwargs(configuration)
        return _render(
            "Every class of quasi-identifiers $qi must hold at least $k distinct persons"
            " (persons per class from $pcol).",
            {
                "qi": ", ".join(kw.get("qi_columns") or []),
                "k": kw.get("k"),
                "pcol": kw.get("person_count_column"),
            },
            runtime_configuration,
        )


class ExpectSuppressedShareToBeAtMost(ColumnAggregateExpectation):
    """Expect the share of suppressed rows (``column`` is True) to be at most ``max_share``.

    Disclosure control may suppress cells or records; past a budget the output is no longer
    useful and usually signals a broken upstream step, so publication is blocked. Observed
    value: the share (a number).
    """

    max_share: float = pydantic.Field(ge=0.0, le=1.0, description="largest allowed share")

    library_metadata: ClassVar[dict[str, Any]] = _LIBRARY_METADATA
    metric_dependencies = ("tokumei.column.true_share",)
    success_keys = ("max_share",)
    args_keys = ("column", "max_share")

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: ExecutionEngine | None = None,
    ) -> dict[str, Any]:
        share = float(metrics["tokumei.column.true_share"])
        max_share = float(self._get_success_kwargs()["max_share"])
        return {"success": share <= max_share, "result": {"observed_value": round(share, 6)}}

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict | None = None,
    ) -> list[RenderedStringTemplateContent]:
        kw = _kwargs(configuration)
        return _render(
            "At most $share of rows may be suppressed ($column is true).",
            {"share": kw.get("max_share"), "column": kw.get("column")},
            runtime_configuration,
        )


CUSTOM_EXPECTATION_TYPES: tuple[str, ...] = (
    "expect_table_columns_to_exclude",
    "expect_qi_classes_to_have_at_least_k_persons",
    "expect_suppressed_share_to_be_at_most",
)
"""Snake-case expectation types GX derives from the class names above."""
