"""usage_analytics — the daily run: raw usage data → validated, published statistics.

Wiring only: every task body is a function of ``tokumei.pipeline.airflow_tasks`` (which calls
one step of ``tokumei.pipeline.steps``), and so are the timeouts, pools, the failure notifier,
the landing sensor and the published Assets (docs/deploy.md, "Operating under Airflow"). Only
the run id and small count dicts travel through XCom; data moves through the shared output
volume.

``start`` is the setup and ``cleanup`` its teardown: cleanup deletes the run's work layer (raw
data) whether the run succeeded or failed. The run fails when any step fails; the notifier then
sends one alert. A failed cleanup alerts on its own (raw data was left behind) but does not
fail a run whose release is published. ``publish`` emits one Asset event per
published table with the date in ``extra``, so downstream DAGs can be scheduled on the data.
Every task declares the datasets it reads and writes (``airflow_tasks.LINEAGE``) for the
OpenLineage provider, which is off unless a transport is configured (docs/deploy.md, "Lineage").
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

from tokumei.pipeline import airflow_tasks as at


@dag(
    dag_id="usage_analytics",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Tokyo"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    # No automatic catch-up: unpausing after a gap runs only the latest day; missed days are
    # run on purpose with `airflow backfill create` (docs/deploy.md, "Backfill and catchup").
    catchup=False,
    max_active_runs=1,
    default_args=at.default_args(),
    on_failure_callback=at.FailureNotifier(),
    params={"date": Param(None, type=["null", "string"], description="override the date")},
    tags=["tokumei", "privacy"],
    doc_md=__doc__,
)
def usage_analytics() -> None:
    """start → landing_complete → extract → ingest per landing file → check_inputs → [scrub →
    stats_map] per partition (dynamic task mapping) → stats_reduce → anonymize_records →
    validate → publish; cleanup is the teardown of start."""

    @task(**at.task_args("start", retries=0))
    def start() -> str:
        return at.start()

    @task(**at.task_args("extract"))
    def extract(tokumei_run: str) -> list[int]:
        return at.extract(tokumei_run)

    @task(**at.task_args("ingest"))
    def ingest(tokumei_run: str, file: int) -> int:
        return at.ingest(tokumei_run, file)

    @task(**at.task_args("check_inputs"))
    def check_inputs(tokumei_run: str) -> list[int]:
        return at.check_inputs(tokumei_run)

    @task(**at.task_args("scrub"))
    def scrub(tokumei_run: str, partition: int) -> int:
        return at.scrub(tokumei_run, partition)

    @task(**at.task_args("stats_map"))
    def stats_map(tokumei_run: str, partition: int) -> int:
        return at.stats_map(tokumei_run, partition)

    @task(**at.task_args("stats_reduce"))
    def stats_reduce(tokumei_run: str) -> str:
        return at.stats_reduce(tokumei_run)

    @task(**at.task_args("anonymize_records"))
    def anonymize_records(tokumei_run: str) -> str:
        return at.anonymize_records(tokumei_run)

    @task(**at.task_args("validate", retries=0))
    def validate(tokumei_run: str) -> str:
        return at.validate(tokumei_run)

    @task(**at.task_args("publish", outlets=[at.PUBLISHED_ALIAS]))
    def publish(tokumei_run: str) -> list[str]:
        return at.publish(tokumei_run)

    # a failed cleanup leaves raw data in the work layer: alert, even if the release is out
    @task(**at.task_args("cleanup", on_failure_callback=at.FailureNotifier()))
    def cleanup(tokumei_run: str) -> None:
        at.cleanup(tokumei_run)

    tokumei_run = start()
    landing = at.LandingCompleteSensor(**at.task_args("landing_complete"))
    files = extract(tokumei_run)
    tokumei_run >> landing >> files
    ingested = ingest.partial(tokumei_run=tokumei_run).expand(file=files)
    parts = check_inputs(tokumei_run)
    ingested >> parts
    scrubbed = scrub.partial(tokumei_run=tokumei_run).expand(partition=parts)
    mapped = stats_map.partial(tokumei_run=tokumei_run).expand(partition=scrubbed)
    reduced = stats_reduce(tokumei_run)
    mapped >> reduced
    published = publish(validate(anonymize_records(reduced)))
    # teardown: runs when start succeeded, whatever happened in between; the run's state is
    # that of publish (a teardown does not count), so a failed step fails the run
    published >> cleanup(tokumei_run).as_teardown(setups=tokumei_run)


usage_analytics()
