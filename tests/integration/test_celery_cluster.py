"""The production topology without containers (docs/deploy.md, "Without containers").

PostgreSQL as Airflow's metadata DB and as the operational DB, Redis as the Celery broker, and
api-server + scheduler + dag-processor + two Celery workers as separate processes started here
(``integration.cluster``). The DAG is triggered and awaited through the REST API only, like an
operator would, and its published statistics must equal what ``tokumei run`` publishes for the
same input: the DAG is just wiring over ``tokumei.pipeline.steps``, and this is the test that
proves the wiring survives serialization, Celery, XCom and separate worker processes.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, superuser ``postgres``) and Redis on
127.0.0.1:6379; ``scripts/ensure_services.sh`` starts them. Run with ``make test-integration``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import PLANTED, TEST_KEY, write_handmade_landing

import integration.cluster as it

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[it.Cluster]:
    """The cluster over a local landing and output that the workers share on disk."""
    root = tmp_path_factory.mktemp("celery_cluster")
    landing = write_handmade_landing(root / "landing")
    out = root / "out_airflow"
    storage = {"TOKUMEI_LANDING": str(landing), "TOKUMEI_OUT": str(out)}
    with it.running_cluster(root, landing, out, storage, drop_sqlite_ops=True) as c:
        yield c


def test_celery_cluster_run_matches_tokumei_run(
    cluster: it.Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    c = cluster
    run = it.trigger_and_wait(c, "it")
    it.assert_succeeded(c, run, [c.home])
    ran = it.assert_ran_on_both_workers(run)
    mapped = [ti for ti in ran if ti["task_id"] == "stats_map"]
    assert sorted(ti["map_index"] for ti in mapped) == [0, 1]  # TOKUMEI_PARTITIONS=2 fanned out

    # The same input through `tokumei run`, in-process, against the same PostgreSQL ops DB.
    cli_out = tmp_path_factory.mktemp("cli") / "out"
    it.tokumei_run(c, cli_out)
    it.assert_same_published(c.out, cli_out)

    # Nothing raw or secret reached the task logs or the component logs.
    logs = [*c.home.rglob("*.log"), *(x.log for x in c.components)]
    it.assert_not_in_logs(logs, [*PLANTED.values(), TEST_KEY])
