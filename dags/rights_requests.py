"""rights_requests — hourly application of deletion and ceasing requests to retained raw data.

A deletion or ceasing request (APPI Art. 35) in the operational DB's ``rights_requests`` table is
applied within the hour to every retained copy of the person's data: landing files of all sources
and dates (in a folder or under an ``s3://`` prefix), and quarantined lines. Each applied request
gets one entry in the append-only audit log ``<out>/audit/rights_requests.jsonl`` (request id,
datasets touched, rows removed, times; no personal data). Published outputs are anonymized and
never touched. Wiring only: the work is ``tokumei.jobs.rights_erasure.apply_rights_requests``; only
counts go through XCom (no request or user ids). Heavy imports happen inside the task so that
parsing this file stays fast.
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
    dag_id="rights_requests",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),
    default_args=DEFAULT_ARGS,
    params={
        "dry_run": Param(False, type="boolean", description="report only, change nothing"),
        "max_requests": Param(1000, type="integer", minimum=1, description="requests per run"),
    },
    tags=["tokumei", "privacy", "rights"],
    doc_md=__doc__,
)
def rights_requests() -> None:
    """One task: apply the new requests, return counts."""

    @task
    def apply_rights_requests() -> dict:
        """Idempotent (applied requests are in the audit log and never applied twice), so
        retries are safe; an interrupted run leaves no audit entry and is simply redone."""
        from datetime import UTC, datetime

        from tokumei.anonymize.policy import load_policy
        from tokumei.infra.secrets import pseudonym_key
        from tokumei.infra.settings import Settings
        from tokumei.jobs.rights_erasure import apply_rights_requests as apply

        params = get_current_context()["params"]
        settings = Settings.from_env()
        # The retained activity layer holds persons by pseudonym only: finding them needs the
        # key (from the secret store; it never goes into XCom or the log).
        has_retained = (settings.out / "retained").is_dir()
        key = pseudonym_key(in_airflow=True) if has_retained else None
        report = apply(
            settings.landing_url or settings.landing,  # s3:// objects are rewritten via copies
            settings.out,
            settings.db_url,
            load_policy(settings.policy_dir),
            now=datetime.now(UTC),
            dry_run=bool(params.get("dry_run")),
            max_requests=int(params.get("max_requests") or 1000),
            key=key,
            out_url=settings.out_url,
        )
        return report.to_dict()

    apply_rights_requests()


rights_requests()
