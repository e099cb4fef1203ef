"""usage_analytics — the daily run: raw usage data → validated, published statistics.

Wiring only (Astronomer-style): every task calls one function of ``pipeline.steps`` with the
settings from ``TOKUMEI_*`` environment variables, the JST date and the run id. Only the run id and
small count dicts travel through XCom; data moves through the shared output volume. Heavy
imports happen inside the tasks so that parsing this file stays fast.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=5)}


def _day() -> str:
    ctx = get_current_context()
    return ctx["params"].get("date") or ctx["ds"]


def _settings():  # noqa: ANN202 - imported lazily on purpose
    from pipeline.settings import Settings

    return Settings.from_env()


@dag(
    dag_id="usage_analytics",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"date": Param(None, type=["null", "string"], description="override the date")},
    tags=["tokumei", "privacy"],
    doc_md=__doc__,
)
def usage_analytics() -> None:
    """Extract → rights → pseudonymize → generalize → scrub → stats → validate → publish."""

    @task(retries=0)
    def start() -> str:
        from pipeline import steps

        return steps.start(_settings(), _day(), in_airflow=True)

    @task
    def extract(run_id: str) -> str:
        from pipeline import steps

        steps.extract(_settings(), _day(), run_id)
        return run_id

    @task
    def filter_rights(run_id: str) -> str:
        from pipeline import steps

        steps.filter_rights(_settings(), _day(), run_id)
        return run_id

    @task
    def pseudonymize(run_id: str) -> str:
        from pipeline import steps

        steps.pseudonymize_step(_settings(), _day(), run_id, in_airflow=True)
        return run_id

    @task
    def generalize(run_id: str) -> str:
        from pipeline import steps

        steps.generalize(_settings(), _day(), run_id)
        return run_id

    @task
    def scrub(run_id: str) -> str:
        from pipeline import steps

        steps.scrub(_settings(), _day(), run_id)
        return run_id

    @task
    def build_stats(run_id: str) -> str:
        from pipeline import steps

        steps.build_stats(_settings(), _day(), run_id)
        return run_id

    @task(retries=0)
    def validate(run_id: str) -> str:
        from pipeline import steps

        steps.validate(_settings(), _day(), run_id)
        return run_id

    @task
    def publish(run_id: str) -> list[str]:
        from pipeline import steps

        return steps.publish(_settings(), _day(), run_id)["published"]

    @task(trigger_rule="all_done", retries=0)
    def cleanup(run_id: str | None) -> None:
        """Delete the work layer and staging, whatever happened upstream."""
        if not run_id:  # start itself failed: nothing was created
            return
        from pipeline import steps

        steps.cleanup(_settings(), _day(), run_id)

    @task(trigger_rule="one_failed", retries=0)
    def fail_run() -> None:
        """Leaf that fails the DAG run when any step failed (cleanup alone would succeed)."""
        raise RuntimeError("a tokumei step failed; nothing was published for this date")

    run_id = start()
    chain_end = publish(validate(build_stats(scrub(generalize(pseudonymize(
        filter_rights(extract(run_id))))))))
    done = cleanup(run_id)
    chain_end >> done
    [chain_end, done] >> fail_run()


usage_analytics()
