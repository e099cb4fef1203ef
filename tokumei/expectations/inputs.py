"""The input expectations as a GX suite, with results in the run's Data Docs (issue 17).

What is validated is a small *metrics frame* of the day's input, one row per landing source and
per operational-DB table: files, lines, the share of lines quarantined and of lines not UTF-8,
the day's volume against the trailing median of earlier runs, and the count of policy columns
a DB table lacks or has unclassified. The landing lines themselves are never handed to GX: the
suite is about the delivery, and a frame of shares and counts cannot put a data value on a
Data Docs page. The suite ``landing_input`` is generated from the policy's ``input:`` bounds
(:func:`input_spec`, committed as ``gx/expectations/landing_input.json`` like every generated
suite); the data-quality team tightens a bound or adds one in the hand-written
``gx/expectations/landing_input__dq.json`` (gx/README.md).

Why the stop itself stays in plain Python (``tokumei.ingest.expectations``): importing GX
costs ~7 s, more than extracting a small day, and the run must stop *before anything is
computed*. So the policy's bounds are decided there, with the one-line messages an operator
acts on, and GX validates the same figures for the record:

* a run that goes on: :func:`observed_extract` stores the metrics in the run's work layer and
  ``validate`` runs ``landing_input`` in the same GX run and Data Docs as the outputs (a bound
  tightened in the hand-written suite fails there: nothing is published, but the steps in
  between have run);
* a run the input expectations stop: the metrics observed until the stop are validated at
  once, in extract's process, into ``reports/date=…/failed/<run_id>/data_docs`` and the one
  history site ``reports/data_docs/`` (where the run is listed as failed), and the refusal
  names the page.

The key's strength is checked by ``start`` and is not in the frame (a key is not input data,
and nothing about it belongs on a report page).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from tokumei.expectations.specs import ColumnSpec, OutputSpec
from tokumei.infra.errors import ValidationFailed
from tokumei.infra.storage import load_record, save_record
from tokumei.ingest.expectations import InputExpectationFailed, InputObservations, observing

if TYPE_CHECKING:
    from tokumei.anonymize.policy import InputPolicy, Policy
    from tokumei.infra.settings import Settings
    from tokumei.infra.storage import RunPaths

log = logging.getLogger("tokumei")

INPUT_NAME: Final[str] = "landing_input"
"""The suite and data asset of the input metrics (not a published table)."""
RECORD: Final[str] = "input_expectations"
"""The work-layer record ``extract`` leaves for ``validate``."""

SCHEMA: Final[dict[str, Any]] = {
    "input": pl.String,
    "kind": pl.String,
    "files": pl.Int64,
    "lines": pl.Int64,
    "quarantine_share": pl.Float64,
    "not_utf8_share": pl.Float64,
    "volume_ratio": pl.Float64,
    "columns_missing": pl.Int64,
    "columns_unclassified": pl.Int64,
}


def input_spec(bounds: InputPolicy) -> OutputSpec:
    """The generated input suite: the policy's ``input:`` bounds on the metrics frame.

    Nulls pass a bound (GX map expectations skip them): a landing row has no column counts, a
    DB row no shares, and a volume that was not compared (too few earlier runs, a source known
    incomplete) has no ratio.
    """
    return OutputSpec(
        name=INPUT_NAME,
        kind="input",
        columns=[
            ColumnSpec("input", "string", nullable=False),
            ColumnSpec("kind", "string", nullable=False, allowed=["landing", "db"]),
            ColumnSpec("files", "int", nullable=True, min=0),
            ColumnSpec("lines", "int", nullable=True, min=0),
            ColumnSpec(
                "quarantine_share", "float", nullable=True, min=0.0, max=bounds.max_quarantine_share
            ),
            ColumnSpec("not_utf8_share", "float", nullable=True, min=0.0, max=1.0),
            ColumnSpec(
                "volume_ratio",
                "float",
                nullable=True,
                min=bounds.volume_min_ratio,
                max=bounds.volume_max_ratio,
            ),
            ColumnSpec("columns_missing", "int", nullable=True, min=0, max=0),
            ColumnSpec("columns_unclassified", "int", nullable=True, min=0, max=0),
        ],
    )


def db_columns(db_url: str, policy: Policy) -> dict[str, dict[str, int]]:
    """Per DB table of the policy: policy columns it lacks, columns the policy does not know.

    The same comparison ``tokumei.ingest.opdb.read_table`` refuses on, made again here because
    that one stops at the first table. Special-care columns may be absent (they are never
    read). An unreachable DB gives no rows (the run's own error says why).
    """
    import sqlalchemy as sa

    found: dict[str, dict[str, int]] = {}
    try:
        engine = sa.create_engine(db_url)
    except Exception:  # noqa: BLE001 - a bad URL is extract's error to report
        return found
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table, tp in policy.tables.items():
                readable = list(tp.readable().columns)
                if not inspector.has_table(table):
                    found[table] = {"columns_missing": len(readable), "columns_unclassified": 0}
                    continue
                cols = [c["name"] for c in inspector.get_columns(table)]
                found[table] = {
                    "columns_missing": sum(c not in cols for c in readable),
                    "columns_unclassified": sum(c not in tp.columns for c in cols),
                }
    except sa.exc.SQLAlchemyError:
        return {}
    finally:
        engine.dispose()
    return found


def input_frame(
    landing: Mapping[str, Mapping[str, Any]], db: Mapping[str, Mapping[str, int]]
) -> pl.DataFrame:
    """The metrics frame: landing sources in the order they were checked, then DB tables."""
    rows: list[dict[str, Any]] = [
        {"input": source, "kind": "landing", **{k: m.get(k) for k in SCHEMA if k in m}}
        for source, m in landing.items()
    ]
    rows += [{"input": f"db.{table}", "kind": "db", **m} for table, m in db.items()]
    return pl.DataFrame(
        [{k: row.get(k) for k in SCHEMA} for row in rows], schema=SCHEMA, orient="row"
    )


def input_output(paths: RunPaths, policy: Policy) -> tuple[OutputSpec, pl.DataFrame]:
    """The spec and frame ``validate`` adds to the outputs; fails closed when extract did not
    record them (it ran outside ``steps.extract_step``)."""
    record = load_record(paths, RECORD)
    if not record:
        raise ValidationFailed(
            f"the input expectations were not recorded by extract ({RECORD}.json missing from "
            "the run's work layer); nothing was published"
        )
    return input_spec(policy.input), input_frame(record["landing"], record["db"])


def _stopped_run_docs(
    settings: Settings, paths: RunPaths, seen: InputObservations, exc: BaseException
) -> str | None:
    """Validate what was observed until the stop; where its Data Docs are (``None`` if the
    stop was not an input expectation, or the docs could not be written)."""
    try:
        from tokumei.anonymize.policy import load_policy

        policy = load_policy(settings.policy_dir)
        db = db_columns(settings.db_url, policy)
        db_off = any(m["columns_missing"] or m["columns_unclassified"] for m in db.values())
        if not isinstance(exc, InputExpectationFailed) and not db_off:
            return None  # another refusal (an unknown column in a file, a broken DB)
        from tokumei.expectations.history import history_site
        from tokumei.expectations.runner import validate_outputs
        from tokumei.expectations.suites import default_gx_dir

        with history_site(settings) as history:
            report = validate_outputs(
                {INPUT_NAME: input_frame(seen.sources, db)},
                {INPUT_NAME: input_spec(policy.input)},
                docs_dir=paths.reports / "failed" / paths.run_id / "data_docs",
                run_name=paths.run_id,
                history_dir=history.folder,
                gx_dir=default_gx_dir(),
            )
        if report.passed:
            # the Python check and the suite disagree: worth a look, never a reason to go on
            log.warning("the input suite passed on figures extract refused")
        where = f"Data Docs: {report.docs_index}"
        if report.history_index:
            where += f"; all runs: {history.index}"
        return where
    except Exception as also:  # noqa: BLE001 - the refusal's own reason must come through
        log.warning("the input expectations' Data Docs were not written (%s)", type(also).__name__)
        return None


@contextlib.contextmanager
def observed_extract(settings: Settings, paths: RunPaths) -> Iterator[None]:
    """Around ``steps.extract``: record the input metrics for ``validate``, or, when the input
    expectations stop the run, validate them into Data Docs at once and name the page in the
    refusal (the same one line, with the page appended)."""
    from tokumei.anonymize.policy import UnclassifiedColumnError, load_policy
    from tokumei.ingest.opdb import DatabaseError

    with observing() as seen:
        try:
            yield
        except (InputExpectationFailed, DatabaseError, UnclassifiedColumnError) as exc:
            where = _stopped_run_docs(settings, paths, seen, exc)
            if where is None:
                raise
            if isinstance(exc, InputExpectationFailed):
                raise InputExpectationFailed(f"{exc} ({where})") from None
            log.error("extract stopped on the DB's columns (%s)", where)
            raise
    policy = load_policy(settings.policy_dir)
    save_record(paths, RECORD, {"landing": seen.sources, "db": db_columns(settings.db_url, policy)})
