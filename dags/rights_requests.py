"""rights_requests — hourly application of deletion and ceasing requests to retained raw data.

A deletion or ceasing request (APPI Art. 35) in the operational DB's ``rights_requests`` table is
applied within the hour to every retained copy of the person's data: landing files of all sources
and dates (in a folder or under an ``s3://`` prefix), and quarantined lines. Each applied request
gets one entry in the append-only audit log ``<out>/audit/rights_requests.jsonl`` (request id,
datasets touched, rows removed, times; no personal data). Published outputs are anonymized and
never touched. Wiring only: the task body is
``tokumei.pipeline.airflow_tasks.apply_rights_requests`` (which calls
``tokumei.jobs.rights_erasure``); only counts go through XCom (no request or user ids).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from tokumei.pipeline import airflow_tasks as at


@dag(
    dag_id="rights_requests",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),
    default_args=at.default_args(),
    on_failure_callback=at.FailureNotifier(),
    params={
        "dry_run": Param(False, type="boolean", description="report only, change nothing"),
        "max_requests": Param(1000, type="integer", minimum=1, description="requests per run"),
    },
    tags=["tokumei", "privacy", "rights"],
    doc_md=__doc__,
)
def rights_requests() -> None:
    """One task: apply the new requests, return counts."""

    @task(**at.task_args("apply_rights_requests"))
    def apply_rights_requests() -> dict:
        return at.apply_rights_requests(get_current_context())

    apply_rights_requests()


rights_requests()
