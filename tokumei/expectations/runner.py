"""Run the GX suites of a run's outputs and build Data Docs that never show a raw value.

Why it is built this way (GX 1.24.1):

* **No Polars datasource.** Each Polars frame is converted by :func:`to_validation_frame` into a
  pandas frame with *canonical nullable dtypes* (``Int64``/``Float64``/``boolean``/``string``,
  dates as ``datetime64[s]``) and validated through a pandas ``add_dataframe_asset`` with a
  whole-dataframe batch definition. The canonical mapping keeps the Polars type family visible to
  GX's type expectation (plain ``to_pandas`` turns a nullable int into float64 and a nullable
  bool into object). Polars ``Datetime`` never has second resolution, so ``datetime64[s]`` is
  unambiguously "was a Date".
* **One checkpoint per output, one run.** A GX 1.x ``Checkpoint.run`` passes a single
  ``batch_parameters`` dict — hence a single ``dataframe`` — to all its validation definitions,
  so a checkpoint holding several dataframe-asset definitions cannot validate several frames.
  Each output gets its own checkpoint, which runs the output's generated suite and the
  data-quality team's hand-written suites for it (``gx/``, :mod:`tokumei.expectations.suites`);
  all share one ``RunIdentifier(run_name=...)``. Data Docs are built once at the end with
  ``context.build_data_docs()`` rather than by an ``UpdateDataDocsAction`` per checkpoint:
  each build recompiles GX's Jinja templates, 13 outputs cost 7.4 s of builds instead of 1.8 s
  (bench/results/gx_docs.md; docs/adr/0006-gx-project-and-data-docs.md).
* **Offline, with history.** The built site is rewritten to need no CDN and no JavaScript
  (:mod:`tokumei.expectations.offline`), and the run's pages are added to one site with every
  run's validations when a ``history_dir`` is given.
* **No raw values anywhere.** The checkpoint result format is ``SUMMARY`` with
  ``partial_unexpected_count: 0`` and no unexpected rows / index lists, and every expectation
  carries the same format (GX defaults an expectation to ``BASIC``, which would list up to 20
  unexpected values). Only map/column-type/table expectations and custom expectations whose
  metrics return numbers or column names are used: no min/max/mean aggregate expectations,
  whose observed value would itself be a cell value.
* **Exception text and fingerprints are scrubbed.** GX renders exception messages and tracebacks
  of expectations that could not be evaluated (they may quote a value) and an MD5 "pandas data
  fingerprint" of each batch (confirms a guessed value on a tiny table), so stored results are
  rewritten (:func:`_scrub_stored_results`) before the single Data Docs build.
* **Nothing written outside ``docs_dir`` (and ``history_dir``), nothing phoned home.** An
  ephemeral context with in-memory stores, suites loaded from ``gx/`` JSON; the only filesystem
  store is the Data Docs site in ``docs_dir``.
  ``GX_ANALYTICS_ENABLED=False`` is set before GX is imported and ``analytics_enabled=False`` in
  the context config (GX 1.24 ships no analytics client, so this is belt and braces).
* GX is imported lazily (~9 s): importing this module for :class:`ValidationReport` is cheap.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from tokumei.expectations.offline import IndexEntry, make_site_offline, merge_into_history
from tokumei.expectations.patterns import PII_ANY, PII_PATTERNS
from tokumei.expectations.specs import ColumnSpec, OutputSpec
from tokumei.expectations.suites import OUTPUT_META, HandSuite, SuiteFileError, load_hand_suites

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations.expectation import Expectation

logger = logging.getLogger(__name__)

SITE_NAME: Final[str] = "tokumei"
DATASOURCE_NAME: Final[str] = "tokumei_outputs"
BATCH_DEFINITION_NAME: Final[str] = "whole_output"

RESULT_FORMAT: Final[dict[str, Any]] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
    "unexpected_index_column_names": [],
}
"""Counts and percentages only: enough for the data-quality team, no value can appear."""

PANDAS_TYPE_NAMES: Final[dict[str, str]] = {
    "string": "StringDtype",
    "int": "Int64Dtype",
    "float": "Float64Dtype",
    "bool": "BooleanDtype",
    "date": "datetime64[s]",
}
"""Spec dtype → the type name GX's ``ExpectColumnValuesToBeInTypeList`` matches on pandas."""


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation, by type and column(s) — never by value."""

    expectation_type: str
    column: str | None = None
    columns: tuple[str, ...] = ()
    raised: bool = False
    """True when GX could not evaluate it (e.g. the column is missing): failed closed."""
    suite: str | None = None


@dataclass
class OutputResult:
    """Outcome of one output's suite."""

    name: str
    passed: bool
    evaluated: int
    failed_expectations: list[FailedExpectation] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    """The suites run on it: the generated one first, then the hand-written ones."""


@dataclass
class ValidationReport:
    """Outcome of a run: ``passed`` only when every output's suite passed."""

    run_name: str
    outputs: dict[str, OutputResult]
    docs_index: Path
    history_index: Path | None = None
    """The Data Docs site with every run's validations, when one was given."""

    @property
    def passed(self) -> bool:
        """Fail closed: a report with no outputs proves nothing, so it does not pass."""
        return bool(self.outputs) and all(o.passed for o in self.outputs.values())


# --------------------------------------------------------------------------------------------
# Polars → pandas
# --------------------------------------------------------------------------------------------


def to_validation_frame(df: pl.DataFrame) -> pd.DataFrame:
    """Convert a Polars frame to pandas with one canonical nullable dtype per type family.

    Columns of other types (datetime, list, struct, …) keep Arrow-backed dtypes, which match no
    spec type name, so a wrongly typed column fails the type expectation instead of being
    silently coerced.
    """
    import pandas as pd

    out: dict[str, pd.Series] = {}
    for name, dtype in df.schema.items():
        s = df.get_column(name)
        if dtype in (pl.Categorical, pl.Enum) or isinstance(dtype, pl.Categorical | pl.Enum):
            s = s.cast(pl.String)
            dtype = pl.String
        ps = s.to_pandas(use_pyarrow_extension_array=True)
        if dtype == pl.String:
            ps = ps.astype(pd.StringDtype())
        elif dtype.is_integer():
            ps = ps.astype(pd.Int64Dtype())
        elif dtype.is_float():
            ps = ps.astype(pd.Float64Dtype())
        elif dtype == pl.Boolean:
            ps = ps.astype(pd.BooleanDtype())
        elif dtype == pl.Date:
            ps = ps.astype("datetime64[s]")
        out[name] = ps
    return pd.DataFrame(out, index=pd.RangeIndex(df.height))


# --------------------------------------------------------------------------------------------
# suite construction
# --------------------------------------------------------------------------------------------


def _import_gx() -> Any:
    """Import GX with analytics disabled (the env var is read when a context is created)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations as gx

    import tokumei.expectations.custom  # noqa: F401  (registers the custom expectations and metrics)

    return gx


def _column_expectations(col: ColumnSpec, spec: OutputSpec, rf: dict[str, Any]) -> list[Any]:
    gxe = _import_gx().expectations
    exps: list[Any] = [
        gxe.ExpectColumnToExist(column=col.name, result_format=rf),
        gxe.ExpectColumnValuesToBeInTypeList(
            column=col.name, type_list=[PANDAS_TYPE_NAMES[col.dtype]], result_format=rf
        ),
    ]
    if not col.nullable:
        exps.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name, result_format=rf))
    if col.allowed is not None:
        exps.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=col.name, value_set=list(col.allowed), result_format=rf
            )
        )
    if col.min is not None or col.max is not None:
        exps.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=col.name, min_value=col.min, max_value=col.max, result_format=rf
            )
        )
    if col.name in spec.count_columns:
        # Null = suppressed cell; map expectations skip nulls, so this is "null or >= min_cell".
        exps.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=col.name,
                min_value=spec.min_cell,
                result_format=rf,
                meta={"tokumei_check": "min_cell"},
            )
        )
        if spec.max_suppressed_share is not None and spec.suppressed_flag_column is None:
            exps.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=col.name,
                    mostly=1.0 - spec.max_suppressed_share,
                    result_format=rf,
                    meta={"tokumei_check": "suppressed_share"},
                )
            )
    if col.name in spec.pii_checked_columns:
        exps.append(
            gxe.ExpectColumnValuesToNotMatchRegexList(
                column=col.name,
                regex_list=[PII_ANY],
                result_format=rf,
                meta={"tokumei_check": "pii", "patterns": list(PII_PATTERNS)},
            )
        )
    return exps


def build_expectations(spec: OutputSpec) -> list[Expectation]:
    """The expectations of ``spec``'s suite, in a stable order (schema first)."""
    gx = _import_gx()
    from tokumei.expectations import custom

    gxe = gx.expectations
    rf = dict(RESULT_FORMAT)
    exps: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[c.name for c in spec.columns] + spec.validation_only_columns,
            exact_match=True,
            result_format=rf,
        )
    ]
    if spec.forbidden_columns:
        exps.append(
            custom.ExpectTableColumnsToExclude(
                forbidden_columns=list(spec.forbidden_columns), result_format=rf
            )
        )
    for col in spec.columns:
        exps.extend(_column_expectations(col, spec, rf))
    if spec.k is not None and spec.person_count_column is not None:
        exps.append(
            custom.ExpectQiClassesToHaveAtLeastKPersons(
                qi_columns=list(spec.qi_columns),
                person_count_column=spec.person_count_column,
                k=spec.k,
                result_format=rf,
            )
        )
    if spec.max_suppressed_share is not None and spec.suppressed_flag_column is not None:
        exps.append(
            custom.ExpectSuppressedShareToBeAtMost(
                column=spec.suppressed_flag_column,
                max_share=spec.max_suppressed_share,
                result_format=rf,
            )
        )
    return exps


def hand_expectations(suite: HandSuite) -> list[Expectation]:
    """A hand-written suite's expectations, each with the value-free result format forced."""
    _import_gx()
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    exps: list[Any] = []
    for i, e in enumerate(suite.expectations):
        kwargs = {**dict(e.get("kwargs") or {}), "result_format": dict(RESULT_FORMAT)}
        try:
            config = ExpectationConfiguration(
                type=e["type"], kwargs=kwargs, meta=dict(e.get("meta") or {})
            )
            exps.append(config.to_domain_obj())
        except Exception as exc:  # GX/pydantic messages quote the JSON, not data, but stay terse
            raise SuiteFileError(
                f"{suite.path.name}: expectation {i + 1} ({e['type']}) has invalid arguments"
                f" ({type(exc).__name__})"
            ) from None
    return exps


# --------------------------------------------------------------------------------------------
# context, checkpoint, docs
# --------------------------------------------------------------------------------------------


def _make_context(docs_dir: Path) -> AbstractDataContext:
    """Ephemeral context: in-memory stores, one Data Docs site written to ``docs_dir``."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


_SAFE_EXCEPTION_MESSAGE: Final[re.Pattern[str]] = re.compile(
    r'Error: The column "[^"\n]*" in BatchData does not exist\.'
)
WITHHELD: Final[str] = "exception raised (message withheld from Data Docs: it may quote data)"


def _raised(info: Any) -> bool:
    """GX 1.x nests exception info per metric id; True if any level says it raised."""
    if isinstance(info, Mapping):
        if info.get("raised_exception"):
            return True
        return any(_raised(v) for v in info.values() if isinstance(v, Mapping))
    return False


def _scrub_exception_info(info: Any) -> Any:
    """Replace exception messages/tracebacks that could quote cell values.

    GX renders ``exception_message`` and the full traceback into Data Docs. pandas and GX error
    messages sometimes quote the offending value (e.g. a failed conversion), so only the known,
    value-free "column does not exist" message is kept; everything else is withheld.
    """
    if not isinstance(info, Mapping):
        return info
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key == "exception_message" and isinstance(value, str):
            out[key] = value if _SAFE_EXCEPTION_MESSAGE.fullmatch(value.strip()) else WITHHELD
        elif key == "exception_traceback" and value:
            out[key] = WITHHELD
        elif isinstance(value, Mapping):
            out[key] = _scrub_exception_info(value)
        else:
            out[key] = value
    return out


def _scrub_stored_results(context: AbstractDataContext) -> None:
    """Rewrite stored validation results before the docs build: scrubbed exception info, no
    data fingerprint."""
    store = context.validation_results_store
    for key in store.list_keys():
        suite_result = store.get(key)
        markers = suite_result.meta.get("batch_markers")
        if isinstance(markers, dict):
            # An unsalted MD5 of the whole frame: on a tiny table it confirms a guessed value.
            markers.pop("pandas_data_fingerprint", None)
        for r in suite_result.results:
            if r.exception_info:
                r.exception_info = _scrub_exception_info(r.exception_info)
        store.set(key, suite_result)


_NAME_RESULT_TYPES: Final[frozenset[str]] = frozenset(
    {"expect_table_columns_to_exclude", "expect_table_columns_to_match_set"}
)


def _failures(result: ExpectationSuiteValidationResult) -> list[FailedExpectation]:
    failed: list[FailedExpectation] = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        kwargs = cfg.kwargs if cfg is not None else {}
        cols: Any = kwargs.get("qi_columns") or kwargs.get("column_list") or ()
        if cfg is not None and cfg.type in _NAME_RESULT_TYPES:
            # These observed values / details are column *names*, never data.
            res = r.result or {}
            if cfg.type == "expect_table_columns_to_exclude":
                cols = res.get("observed_value") or ()
            else:
                mismatched = (res.get("details") or {}).get("mismatched") or {}
                cols = sorted(mismatched.get("unexpected", []) + mismatched.get("missing", []))
        raised = _raised(r.exception_info)
        failed.append(
            FailedExpectation(
                expectation_type=cfg.type if cfg is not None else "unknown",
                column=kwargs.get("column"),
                columns=tuple(str(c) for c in cols),
                raised=raised,
                suite=str(result.suite_name),
            )
        )
    return failed


def _index_entries(context: AbstractDataContext) -> list[IndexEntry]:
    """One static-index row per stored validation result (names, times and counts only)."""
    store = context.validation_results_store
    entries: list[IndexEntry] = []
    for key in store.list_keys():
        result = store.get(key)
        meta = result.meta or {}
        batch = meta.get("active_batch_definition") or {}
        run = meta.get("run_id") or {}
        run_time = str(run.get("run_time") or meta.get("validation_time") or "")
        stats = result.statistics or {}
        entries.append(
            IndexEntry(
                suite=str(result.suite_name),
                data_asset=str(batch.get("data_asset_name") or ""),
                run_name=str(run.get("run_name") or ""),
                run_time=run_time.replace("T", " ")[:19],
                success=bool(result.success),
                evaluated=int(stats.get("evaluated_expectations", 0)),
                successful=int(stats.get("successful_expectations", 0)),
                page="validations/" + "/".join(key.to_tuple()) + ".html",
            )
        )
    return entries


def _finish_site(
    context: AbstractDataContext, docs_dir: Path, history_dir: Path | None
) -> Path | None:
    """Offline pages and a static index of every validation (:mod:`.offline`); then the run's
    pages join the history site, if one is given."""
    suites = [s.name for s in context.suites.all()]
    entries = _index_entries(context)
    make_site_offline(docs_dir, entries, suites, title=SITE_NAME)
    if history_dir is None:
        return None
    return merge_into_history(docs_dir, Path(history_dir), entries, title=SITE_NAME)


def validate_outputs(
    outputs: Mapping[str, pl.DataFrame],
    specs: Mapping[str, OutputSpec],
    docs_dir: Path,
    run_name: str,
    history_dir: Path | None = None,
    gx_dir: Path | None = None,
) -> ValidationReport:
    """Validate every output against its spec's suite and build Data Docs into ``docs_dir``.

    ``docs_dir`` gets this run's validations only (it travels with the release); with
    ``history_dir`` the same pages are added to one Data Docs site whose index lists every
    run's validations, passed or failed (:func:`tokumei.expectations.offline.merge_into_history`).
    With ``gx_dir`` (the GX project, :func:`tokumei.expectations.suites.default_gx_dir`), each
    output's hand-written suites run in the same Checkpoint as its generated suite.

    An output without a spec fails closed (``failed_expectations`` names ``missing_spec``);
    specs without an output are not evaluated (the caller publishes only what it validated).
    Frames that carry a validation-only column (``person_count_column``) are validated with it;
    drop it before publishing (:func:`tokumei.expectations.specs.strip_validation_columns`).
    """
    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    context = _make_context(docs_dir)
    datasource = context.data_sources.add_pandas(name=DATASOURCE_NAME)
    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    results: dict[str, OutputResult] = {}
    hand = load_hand_suites(gx_dir, outputs=list(outputs)) if gx_dir is not None else {}

    for name, frame in outputs.items():
        spec = specs.get(name)
        if spec is None:
            results[name] = OutputResult(
                name, False, 0, [FailedExpectation(expectation_type="missing_spec")]
            )
            continue
        # Expectations go in at construction: suite.add_expectation() on a stored suite re-saves
        # the whole suite each time (quadratic; ~40 ms per expectation).
        suites = [
            context.suites.add(
                gx.ExpectationSuite(name=name, expectations=build_expectations(spec))
            )
        ]
        suites += [
            context.suites.add(
                gx.ExpectationSuite(
                    name=h.name,
                    expectations=hand_expectations(h),
                    notes=h.notes,
                    meta={OUTPUT_META: name},
                )
            )
            for h in hand.get(name, [])
        ]
        asset = datasource.add_dataframe_asset(name=name)
        batch_def = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
        # One Checkpoint per output runs the generated suite and the hand-written ones on the
        # same frame (a GX checkpoint passes one dataframe to all its definitions).
        vds = [
            context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch_def, suite=suite)
            )
            for suite in suites
        ]
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{run_name}__{name}",
                validation_definitions=vds,
                actions=[],
                result_format=dict(RESULT_FORMAT),
            )
        )
        cp_result = checkpoint.run(
            batch_parameters={"dataframe": to_validation_frame(frame)}, run_id=run_id
        )
        suite_results = list(cp_result.run_results.values())
        failed = [f for r in suite_results for f in _failures(r)]
        results[name] = OutputResult(
            name=name,
            passed=all(bool(r.success) for r in suite_results) and not failed,
            evaluated=sum(
                int(r.statistics.get("evaluated_expectations", 0)) for r in suite_results
            ),
            failed_expectations=failed,
            suites=[r.suite_name for r in suite_results],
        )
        logger.info(
            "validated %s: %s (%d failed)",
            name,
            "passed" if results[name].passed else "FAILED",
            len(failed),
        )

    _scrub_stored_results(context)
    context.build_data_docs(site_names=[SITE_NAME])
    history_index = _finish_site(context, docs_dir, history_dir)
    return ValidationReport(
        run_name=run_name,
        outputs=results,
        docs_index=docs_dir / "index.html",
        history_index=history_index,
    )


def warm_up() -> ValidationReport:
    """Validate two tiny outputs into a temporary folder; the report, for tests only.

    Why: the first validation in a process pays GX's lazy set-up (metric providers, the
    execution engine, the Data Docs renderers): a 500-person day's outputs took 6.3-7.3 s cold
    and 2.8-3.3 s after this (bench/results/small_day.md). The process a small day reserves
    for its validate step (``tokumei.pipeline.steps.RESERVED_STEPS``) pays it while the steps
    before run. The outputs cover every kind of generated expectation, custom ones too.
    """
    import tempfile

    stats = OutputSpec(
        name="warm_up_stats",
        kind="stats",
        columns=[
            ColumnSpec("device_class", "string", nullable=False, allowed=["a", "b"]),
            ColumnSpec("persons", "int", nullable=True, min=0),
            ColumnSpec("note", "string", nullable=True),
        ],
        forbidden_columns=["user_id"],
        pii_checked_columns=["note"],
        count_columns=["persons"],
        max_suppressed_share=0.5,
    )
    records = OutputSpec(
        name="warm_up_records",
        kind="anonymized",
        columns=[
            ColumnSpec("device_class", "string", nullable=False),
            ColumnSpec("suppressed", "bool", nullable=False),
        ],
        k=2,
        qi_columns=["device_class"],
        person_count_column="_class_persons",
        max_suppressed_share=0.5,
        suppressed_flag_column="suppressed",
    )
    outputs = {
        stats.name: pl.DataFrame(
            {"device_class": ["a", "b", "a"], "persons": [10, None, 12], "note": ["x", None, "y"]}
        ),
        records.name: pl.DataFrame(
            {
                "device_class": ["a", "a", "b", "b"],
                "suppressed": [False, False, False, True],
                "_class_persons": [2, 2, 2, 2],
            }
        ),
    }
    with tempfile.TemporaryDirectory(prefix="tokumei-gx-warm-up-") as folder:
        return validate_outputs(
            outputs, {stats.name: stats, records.name: records}, Path(folder), "warm_up"
        )
