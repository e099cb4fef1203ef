"""Two Celery workers that share no disk: only S3 (a moto server), PostgreSQL and Redis (issue 18).

The topology of ``test_celery_cluster`` with ``TOKUMEI_LANDING`` and ``TOKUMEI_OUT`` on a moto
S3 server on 127.0.0.1, and each worker with its own ``TOKUMEI_LOCAL_OUT`` and ``AIRFLOW_HOME``
(different temp dirs): the run's work layer, staging and lock live under the storage URL
(``tokumei.infra.worklayer``, ``runlock.acquire_url``), every task syncs its own scratch copy.
The published Delta tables under ``s3://…/published/delta``, read with Polars, must equal a
local ``tokumei run`` of the same landing and key; after the run the bucket holds no work
layer, staging or lock of it, and no raw landing copy is left on either worker.

Needs PostgreSQL and Redis as ``test_celery_cluster`` does (``scripts/ensure_services.sh``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PLANTED, TEST_KEY, all_text_under, moto_s3, write_handmade_landing

import integration.cluster as it
from tokumei.infra import objectstore

pytestmark = pytest.mark.integration

BUCKET = "tokumei-it"
ACCESS_KEY_ID = "AKIATOKUMEICELERYS3"
SECRET = "tokumei-it-secret-7Hq2LmX9pV4sR1nW"


def _worker_home(root: Path, name: str) -> Path:
    return root / name


@pytest.fixture(scope="module")
def s3_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[it.Cluster, Path, str]]:
    """moto S3 with the landing, the databases, and api-server + scheduler + dag-processor +
    two workers whose only common ground is S3, PostgreSQL and Redis."""
    root = tmp_path_factory.mktemp("celery_s3")
    with moto_s3(ACCESS_KEY_ID, SECRET) as (endpoint, _mp):
        landing = write_handmade_landing(root / "landing")
        fs = objectstore.filesystem()
        fs.mkdir(BUCKET)
        for f in sorted(p for p in landing.glob("*/date=*/*") if p.is_file()):
            fs.put_file(str(f), f"{BUCKET}/landing/{f.relative_to(landing).as_posix()}")
        out_url = f"s3://{BUCKET}/out"
        storage = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            objectstore.ENDPOINT_ENV: endpoint,
            "TOKUMEI_LANDING": f"s3://{BUCKET}/landing",
            "TOKUMEI_OUT": out_url,
            "TOKUMEI_LANDING_WAIT_MINUTES": "0",
        }

        def own_disk(name: str) -> dict[str, str]:
            """Nothing on disk in common with the other worker."""
            own = _worker_home(root, name)
            (own / "airflow").mkdir(parents=True)
            return {
                "AIRFLOW_HOME": str(own / "airflow"),
                "TOKUMEI_LOCAL_OUT": str(own / "local_out"),
                "TMPDIR": str(own),
            }

        with it.running_cluster(
            root, landing, root / "unused", storage, db_tag="3", worker_env=own_disk
        ) as c:
            yield c, root, out_url


def test_workers_sharing_only_s3_publish_what_tokumei_run_publishes(
    s3_cluster: tuple[it.Cluster, Path, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    c, root, out_url = s3_cluster
    run = it.trigger_and_wait(c, "it-s3")
    homes = [_worker_home(root, name) / "airflow" for name in it.WORKERS]
    it.assert_succeeded(c, run, homes, " (s3, no shared disk)")
    it.assert_ran_on_both_workers(run)

    # The same landing and key through `tokumei run`, locally, against the same ops DB:
    # Polars over s3://…/published/delta against the local output.
    cli_out = tmp_path_factory.mktemp("cli_s3") / "out"
    it.tokumei_run(c, cli_out)  # c.landing: the hand-written files that were uploaded
    it.assert_same_published(out_url, cli_out, "airflow on s3")

    # The run's work layer, staging and lock are gone from the bucket.
    fs = objectstore.filesystem()
    left = [
        k
        for k in fs.find(f"{BUCKET}/out")
        if "/_work/" in k or "/_staging/" in k or k.endswith("/_run.lock")
    ]
    assert left == [], left
    # No raw landing copy and no planted value on either worker's disk (quarantine aside:
    # it stays on the worker by design), nor in any log.
    for name in it.WORKERS:
        local_out = _worker_home(root, name) / "local_out"
        assert not list(local_out.glob("_work/*/landing/**/*.*")), name
        for path, text in all_text_under(local_out / "_work", local_out / "_staging"):
            for needle in PLANTED.values():
                assert needle not in text, f"{needle!r} in {path}"
    it.assert_not_in_logs(root.rglob("*.log"), [*PLANTED.values(), TEST_KEY, SECRET])
