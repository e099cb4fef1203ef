"""Lineage (issue 18): the datasets tasks declare and how the OpenLineage provider names them.

The end-to-end check (a ``dag.test()`` run writing OpenLineage events through a file transport)
is part of the backfill test in tests/test_dags.py, so that no extra DAG run is needed; here
are the pieces it relies on: the ``x-tokumei`` converter Airflow finds through tokumei's
provider entry point, the naming of every kind of location without credentials, the lineage
declared per task, and OpenLineage being off unless a transport is configured.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tokumei.pipeline import airflow_tasks as at
from tokumei.pipeline import lineage


def test_airflow_finds_the_converter_of_x_tokumei_through_the_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The OpenLineage provider drops an Asset whose scheme has no converter; ours is found
    the way the provider looks it up, so a task's x-tokumei inlets become datasets."""
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    monkeypatch.setenv("TOKUMEI_OUT", "/data/out")
    table = translate_airflow_asset(at.table_asset("stats", "page_views"), None)
    assert (table.namespace, table.name) == ("file", "/data/out/published/stats/page_views")
    layer = translate_airflow_asset(at.dataset_asset("work/pseudo"), None)
    assert (layer.namespace, layer.name) == ("file", "/data/out/_work/pseudo")


@pytest.mark.parametrize(
    ("uri", "env", "expected"),
    [
        (
            "x-tokumei://landing/events",
            {"TOKUMEI_LANDING": "/srv/landing"},
            ("file", "/srv/landing/events"),
        ),
        (
            "x-tokumei://landing/events",
            {"TOKUMEI_LANDING": "s3://ingest/landing/"},
            ("s3://ingest", "landing/events"),
        ),
        (
            "x-tokumei://published/stats/dau",
            {"TOKUMEI_OUT": "s3://AKIAEXAMPLE:s3cr3t@bucket/tokumei?versionId=7"},
            ("s3://bucket", "tokumei/published/stats/dau"),
        ),
        ("x-tokumei://work", {"TOKUMEI_OUT": "/o"}, ("file", "/o/_work")),
        ("x-tokumei://staging/stats", {"TOKUMEI_OUT": "/o"}, ("file", "/o/_staging/stats")),
        ("x-tokumei://retained/activity", {"TOKUMEI_OUT": "/o"}, ("file", "/o/retained/activity")),
        (
            "x-tokumei://opsdb/users",
            {
                "TOKUMEI_DB_URL": "postgresql+psycopg://ops:pa55word@db.internal:5432/ops?sslmode=require"
            },
            ("postgresql://db.internal:5432", "ops.users"),
        ),
        (
            "x-tokumei://opsdb/consents",
            {"TOKUMEI_DB_URL": "sqlite:////srv/landing/ops.db"},
            ("file", "/srv/landing/ops.db/consents"),
        ),
        ("x-tokumei://policy", {"TOKUMEI_POLICY": "/opt/policies"}, ("file", "/opt/policies")),
        # a process without the setting: the logical name, never a guessed location
        ("x-tokumei://work/pseudo", {}, ("tokumei", "work/pseudo")),
        ("x-tokumei://opsdb/users", {}, ("tokumei", "opsdb/users")),
    ],
)
def test_datasets_are_named_by_location_without_credentials(
    uri: str, env: dict[str, str], expected: tuple[str, str]
) -> None:
    assert lineage.resolve(uri, env) == expected
    assert not any(
        s in "".join(expected) for s in ("pa55word", "s3cr3t", "AKIA", "sslmode", "version")
    )


def test_a_uri_of_another_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="x-tokumei"):
        lineage.resolve("file:///etc/passwd", {})


def test_every_usage_analytics_task_declares_datasets() -> None:
    """Inlets and outlets name layers and tables (no file, run id or value), and every layer a
    task reads is written by an earlier task, or comes from outside the run (landing, the
    operational DB, the policy, the retained layer of earlier days)."""
    from test_dags import USAGE_TASKS

    order = [
        "start", "landing_complete", "extract", "ingest", "check_inputs", "scrub",
        "stats_map", "stats_reduce", "anonymize_records", "validate", "publish", "cleanup",
    ]  # fmt: skip
    assert set(order) == USAGE_TASKS
    written: set[str] = set()
    for task_id in order:
        inlets, outlets = at.lineage(task_id)
        assert inlets or outlets, task_id
        for asset in inlets + outlets:
            # a layer or table name: no file, date, run id, credential or value
            assert re.fullmatch(r"x-tokumei://[a-z_]+(/[a-z_]+)*", asset.uri), asset.uri
        for asset in inlets:
            path = asset.uri.removeprefix("x-tokumei://")
            external = path.split("/")[0] in {"landing", "opsdb", "policy", "retained"}
            assert external or any(path == w or w.startswith(path + "/") for w in written), (
                task_id,
                path,
            )
        written |= {o.uri.removeprefix("x-tokumei://") for o in outlets}
    # publish keeps its alias (the day's tables, known at run time) next to the retained layer
    _, outlets = at.lineage("publish")
    publish_outlets = at.task_args("publish", outlets=[at.PUBLISHED_ALIAS])["outlets"]
    assert publish_outlets == [*outlets, at.PUBLISHED_ALIAS]


def test_landing_and_db_datasets_follow_the_policy() -> None:
    from tokumei.anonymize.policy import DB_TABLES, LANDING_SOURCES

    assert set(at.LANDING_DATASETS) == set(LANDING_SOURCES)
    assert set(at.DB_DATASETS) == set(DB_TABLES)


def test_openlineage_is_off_unless_a_transport_is_configured(tmp_path) -> None:
    """The default sends nothing anywhere: with no transport, URL or config the provider's
    plugin registers no listener. With a file transport it does (what the docs tell to set)."""
    code = (
        "import json\n"
        "from airflow.providers.openlineage import conf\n"
        "from airflow.providers.openlineage.plugins.openlineage import OpenLineageProviderPlugin\n"
        "print('RESULT', json.dumps([conf.is_disabled(), len(OpenLineageProviderPlugin.listeners)]))\n"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENLINEAGE", "AIRFLOW__OPENLINEAGE__"))
    }
    base["AIRFLOW_HOME"] = str(tmp_path / "af")

    def probe(**extra: str) -> list:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**base, **extra},
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
        return json.loads(line.removeprefix("RESULT "))

    assert probe() == [True, 0]
    transport = json.dumps({"type": "file", "log_file_path": str(tmp_path / "ol.jsonl")})
    assert probe(AIRFLOW__OPENLINEAGE__TRANSPORT=transport) == [False, 1]
    assert probe(
        AIRFLOW__OPENLINEAGE__TRANSPORT=transport, AIRFLOW__OPENLINEAGE__DISABLED="true"
    ) == [True, 0]


def test_failure_text_is_withheld_from_events_by_the_transform_transport(tmp_path) -> None:
    """The transport docs/deploy.md recommends: the client's ``transform`` transport around a
    file transport, with tokumei's transformer. A FAIL event keeps its datasets and the fact it
    failed; the exception text and traceback (which could quote a value) are gone."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run

    from tokumei.pipeline.lineage_transform import WITHHELD

    path = tmp_path / "events.jsonl"
    client = OpenLineageClient(
        config={
            "transport": {
                "type": "transform",
                "transformer_class": "tokumei.pipeline.lineage_transform.WithoutErrorText",
                "transport": {"type": "file", "log_file_path": str(path), "append": True},
            }
        }
    )
    secret = "hanako.yamada@example.co.jp"  # what a library's message could quote
    event = RunEvent(
        eventType=RunState.FAIL,
        eventTime="2026-11-24T00:00:00+00:00",
        run=Run(
            runId="01932f6e-0000-7000-8000-000000000000",
            facets={
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message=f"could not parse {secret!r}",
                    programmingLanguage="python",
                    stackTrace=f"Traceback ...\nValueError: {secret}",
                )
            },
        ),
        job=Job(namespace="tokumei", name="usage_analytics.extract"),
        producer="https://example.org/test",
        inputs=[InputDataset(namespace="file", name="/srv/landing/events")],
    )
    client.emit(event)
    (written,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert secret not in path.read_text()
    assert written["eventType"] == "FAIL"
    assert written["run"]["facets"]["errorMessage"]["message"] == WITHHELD
    assert "stackTrace" not in written["run"]["facets"]["errorMessage"]
    assert written["inputs"][0]["name"] == "/srv/landing/events"
