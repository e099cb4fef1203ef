"""retention — daily deletion of raw landing partitions and quarantined rows past their retention.

Raw data is personal data: it is kept only as long as reruns and investigations need it
(``TOKUMEI_RETENTION_LANDING_DAYS``, default 30; ``TOKUMEI_RETENTION_QUARANTINE_DAYS``, default 90).
The landing zone may be a folder or an ``s3://`` prefix. Published outputs and reports are never
touched. Wiring only: the work is ``tokumei.jobs.retention.apply_retention``; only a small count
summary goes through XCom.
Heavy imports happen inside the task so that parsing this file stays fast.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "retries": int(os.environ.get("TOKUMEI_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
}


@dag(
    dag_id="retention",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "today": Param(None, type=["null", "string"], description="override the reference date"),
        "dry_run": Param(False, type="boolean", description="report only, delete nothing"),
    },
    tags=["tokumei", "privacy", "retention"],
    doc_md=__doc__,
)
def retention() -> None:
    """One task: sweep landing and quarantine, return counts per source."""

    @task
    def apply_retention() -> dict:
        """Idempotent (a rerun finds nothing left to delete), so retries are safe."""
        from datetime import date

        from tokumei.infra.settings import Settings, check_day
        from tokumei.jobs.retention import activity_days_from_env, days_from_env
        from tokumei.jobs.retention import apply_retention as sweep

        ctx = get_current_context()
        settings = Settings.from_env()
        landing_days, quarantine_days = days_from_env()
        day = check_day(ctx["params"].get("today") or ctx["ds"])
        report = sweep(
            settings.landing_url or settings.landing,  # an s3:// landing is swept by key
            settings.out,
            today=date.fromisoformat(day),
            landing_days=landing_days,
            quarantine_days=quarantine_days,
            activity_days=activity_days_from_env(),
            dry_run=bool(ctx["params"].get("dry_run")),
            out_url=settings.out_url,
        )
        return report.to_dict()

    apply_retention()


retention()
