"""usage_analytics — the daily run: raw usage data → validated, published statistics.

Wiring only (Astronomer-style): every task calls one function of ``tokumei.pipeline.steps`` with the
settings from ``TOKUMEI_*`` environment variables, the JST date and the run id. Only the run id and
small count dicts travel through XCom; data moves through the shared output volume. Heavy
imports happen inside the tasks so that parsing this file stays fast.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

# Retries absorb transient storage/DB hiccups; every step is idempotent on its work layer.
DEFAULT_ARGS = {
    "retries": int(os.environ.get("TOKUMEI_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
}


def _day() -> str:
    """The JST calendar day this run processes.

    Scheduled runs cover the data interval [D 00:00 JST, D+1 00:00 JST) whose logical date is
    D 00:00 JST; ``airflow dags test usage_analytics D`` passes D itself. Both give D in JST.
    The ``date`` param overrides it for backfills of a single day.
    """
    ctx = get_current_context()
    override = ctx["params"].get("date")
    if override:
        return override
    return ctx["logical_date"].in_timezone("Asia/Tokyo").strftime("%Y-%m-%d")


def _settings():  # noqa: ANN202 - imported lazily on purpose
    from tokumei.infra.settings import Settings

    return Settings.from_env()


@dag(
    dag_id="usage_analytics",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Tokyo"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"date": Param(None, type=["null", "string"], description="override the date")},
    tags=["tokumei", "privacy"],
    doc_md=__doc__,
)
def usage_analytics() -> None:
    """Extract → discover → rights → pseudonymize → [generalize → scrub → stats_map] per
    partition (dynamic task mapping) → stats_reduce → anonymize_records → validate → publish
    → cleanup."""

    @task(retries=0)
    def start() -> str:
        from tokumei.pipeline import steps

        return steps.start(_settings(), _day(), in_airflow=True)

    @task
    def extract(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.extract(_settings(), _day(), tokumei_run)
        return tokumei_run

    @task
    def discover(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.discover(_settings(), _day(), tokumei_run)
        return tokumei_run

    @task
    def filter_rights(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.filter_rights(_settings(), _day(), tokumei_run)
        return tokumei_run

    @task
    def pseudonymize(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.pseudonymize_step(_settings(), _day(), tokumei_run, in_airflow=True)
        return tokumei_run

    @task
    def plan(tokumei_run: str) -> list[int]:
        """The partitions to fan out over (TOKUMEI_PARTITIONS); XCom carries only numbers."""
        from tokumei.pipeline import steps

        return steps.partitions_of(_settings())

    @task
    def generalize(tokumei_run: str, partition: int) -> int:
        from tokumei.pipeline import steps

        steps.generalize(_settings(), _day(), tokumei_run, partition)
        return partition

    @task
    def scrub(tokumei_run: str, partition: int) -> int:
        from tokumei.pipeline import steps

        steps.scrub(_settings(), _day(), tokumei_run, partition)
        return partition

    @task
    def stats_map(tokumei_run: str, partition: int) -> int:
        from tokumei.pipeline import steps

        steps.stats_map(_settings(), _day(), tokumei_run, partition)
        return partition

    @task
    def stats_reduce(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.stats_reduce(_settings(), _day(), tokumei_run)
        return tokumei_run

    @task
    def anonymize_records(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.anonymize_records(_settings(), _day(), tokumei_run)
        return tokumei_run

    @task(retries=0)
    def validate(tokumei_run: str) -> str:
        from tokumei.pipeline import steps

        steps.validate(_settings(), _day(), tokumei_run)
        return tokumei_run

    @task
    def publish(tokumei_run: str) -> list[str]:
        from tokumei.pipeline import steps

        return steps.publish(_settings(), _day(), tokumei_run)["published"]

    @task(trigger_rule="all_done", retries=0)
    def cleanup(tokumei_run: str | None) -> None:
        """Delete the work layer and staging, whatever happened upstream."""
        if not tokumei_run:  # start itself failed: nothing was created
            return
        from tokumei.pipeline import steps

        steps.cleanup(_settings(), _day(), tokumei_run)

    @task(trigger_rule="one_failed", retries=0)
    def fail_run() -> None:
        """Leaf that fails the DAG run when any step failed (cleanup alone would succeed)."""
        raise RuntimeError("a tokumei step failed; nothing was published for this date")

    tokumei_run = start()
    ready = pseudonymize(filter_rights(discover(extract(tokumei_run))))
    parts = plan(ready)
    generalized = generalize.partial(tokumei_run=tokumei_run).expand(partition=parts)
    scrubbed = scrub.partial(tokumei_run=tokumei_run).expand(partition=generalized)
    mapped = stats_map.partial(tokumei_run=tokumei_run).expand(partition=scrubbed)
    reduced = stats_reduce(tokumei_run)
    mapped >> reduced
    chain_end = publish(validate(anonymize_records(reduced)))
    done = cleanup(tokumei_run)
    chain_end >> done
    [chain_end, done] >> fail_run()


usage_analytics()
