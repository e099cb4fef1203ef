"""retention — daily deletion of raw landing partitions and quarantined rows past their retention.

Raw data is personal data: it is kept only as long as reruns and investigations need it
(``TOKUMEI_RETENTION_LANDING_DAYS``, default 30; ``TOKUMEI_RETENTION_QUARANTINE_DAYS``, default 90).
The landing zone may be a folder or an ``s3://`` prefix. Published outputs and reports are never
touched. Wiring only: the task body is ``tokumei.pipeline.airflow_tasks.apply_retention`` (which
calls ``tokumei.jobs.retention``); only a small count summary goes through XCom.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from tokumei.pipeline import airflow_tasks as at


@dag(
    dag_id="retention",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    default_args=at.default_args(),
    on_failure_callback=at.FailureNotifier(),
    params={
        "today": Param(None, type=["null", "string"], description="override the reference date"),
        "dry_run": Param(False, type="boolean", description="report only, delete nothing"),
    },
    tags=["tokumei", "privacy", "retention"],
    doc_md=__doc__,
)
def retention() -> None:
    """One task: sweep landing and quarantine, return counts per source."""

    @task(**at.task_args("apply_retention"))
    def apply_retention() -> dict:
        return at.apply_retention(get_current_context())

    apply_retention()


retention()
