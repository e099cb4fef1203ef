"""The DAGs as Airflow runs them: DagBag integrity, operating settings (timeouts, pools, the
failure notifier, Assets), and real ``dag.test()`` runs on Airflow's embedded SQLite DB: a
backfill of two dates that publishes and emits Asset events, and a failed run that alerts once
and still cleans up."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import DAY, PLANTED, TEST_KEY, airflow_env, all_text_under, write_handmade_landing
from published import published_tables

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
DAY2 = (date.fromisoformat(DAY) + timedelta(days=1)).isoformat()
JST = timezone(timedelta(hours=9))

USAGE_TASKS = {
    "start",
    "landing_complete",
    "extract",
    "ingest",
    "check_inputs",
    "scrub",
    "stats_map",
    "stats_reduce",
    "anonymize_records",
    "validate",
    "publish",
    "cleanup",
}


def _run_python(code: str, env: dict[str, str], timeout: int = 300) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; return the JSON it printed after ``RESULT ``."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    line = next(ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("RESULT "))
    return {**json.loads(line[len("RESULT ") :]), "_logs": proc.stdout + proc.stderr}


# --------------------------------------------------------------------------------------------
# Parsing: structure and operating settings


def test_dagbag_imports_with_timeouts_pools_teardown_and_assets(tmp_path: Path) -> None:
    info = _run_python(
        f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        dags = {{}}
        for dag_id, dag in bag.dags.items():
            dags[dag_id] = {{
                "retries": dag.default_args.get("retries"),
                "catchup": dag.catchup,
                "on_failure": type(dag.on_failure_callback).__name__,
                "tasks": {{t.task_id: {{
                    "timeout_min": t.execution_timeout.total_seconds() / 60
                    if t.execution_timeout else None,
                    "pool": t.pool, "setup": t.is_setup, "teardown": t.is_teardown,
                    "upstream": sorted(t.upstream_task_ids),
                    "outlets": [type(o).__name__ + ":" + o.name for o in t.outlets],
                    "mode": getattr(t, "mode", None),
                }} for t in dag.tasks}},
            }}
        ua = bag.dags["usage_analytics"]
        print("RESULT", json.dumps({{
            "errors": {{k: str(v)[:300] for k, v in bag.import_errors.items()}},
            "dags": dags, "schedule": repr(ua.timetable),
            "teardown_fails_run": ua.get_task("cleanup").on_failure_fail_dagrun,
            "cleanup_alerts": [type(c).__name__ for c in ua.get_task("cleanup").on_failure_callback],
        }}))
        """,
        airflow_env(tmp_path / "af", TOKUMEI_TIMEOUT_SCRUB="7"),
    )
    assert info["errors"] == {}
    assert set(info["dags"]) == {"usage_analytics", "retention", "rights_requests"}
    ua = info["dags"]["usage_analytics"]
    tasks = ua["tasks"]
    assert set(tasks) == USAGE_TASKS
    assert "0 0 * * *" in info["schedule"] and "Asia/Tokyo" in info["schedule"]
    assert ua["retries"] >= 1 and ua["catchup"] is False
    # 1. every task of every DAG has an execution_timeout; configuration overrides the default
    for dag in info["dags"].values():
        assert dag["on_failure"] == "FailureNotifier"
        for task_id, task in dag["tasks"].items():
            assert task["timeout_min"] and task["timeout_min"] > 0, task_id
    assert tasks["scrub"]["timeout_min"] == 7  # TOKUMEI_TIMEOUT_SCRUB
    assert tasks["extract"]["timeout_min"] == 120  # the default
    # 3. memory-heavy tasks run in their pools, the others in the default pool
    assert tasks["extract"]["pool"] == tasks["ingest"]["pool"] == "tokumei_extract"
    assert tasks["scrub"]["pool"] == "tokumei_ner"
    assert {t["pool"] for n, t in tasks.items() if n not in {"extract", "ingest", "scrub"}} == {
        "default_pool"
    }
    # 6. cleanup is the teardown of start, downstream of publish; it does not decide the run's
    # state (publish does: see the failed-run test) but alerts when it fails itself
    assert tasks["start"]["setup"] and tasks["cleanup"]["teardown"]
    assert set(tasks["cleanup"]["upstream"]) == {"start", "publish"}
    assert info["teardown_fails_run"] is False
    assert info["cleanup_alerts"] == ["FailureNotifier"]
    # 4. publish emits through the alias of published tables (and writes the retained layer)
    assert tasks["publish"]["outlets"] == [
        "Asset:tokumei.retained.activity",
        "Asset:tokumei.retained.purchases",
        "AssetAlias:tokumei_published",
    ]
    # lineage: the tasks name the datasets they write (tests/test_lineage.py has the rest)
    assert tasks["ingest"]["outlets"] == [
        "Asset:tokumei.work.generalized",
        "Asset:tokumei.quarantine.events",
        "Asset:tokumei.quarantine.measurements",
    ]
    assert tasks["cleanup"]["outlets"] == []
    # 7. the landing sensor gives its slot back between pokes and gates extract
    assert tasks["landing_complete"]["mode"] == "reschedule"
    assert set(tasks["extract"]["upstream"]) == {"start", "landing_complete"}


def test_dag_files_import_only_the_sdk_and_the_light_helper() -> None:
    for dag_file in DAGS.glob("*.py"):
        top = [
            ln for ln in dag_file.read_text().splitlines() if ln.startswith(("import ", "from "))
        ]
        for line in top:
            assert any(
                ok in line
                for ok in (
                    "airflow.sdk",
                    "__future__",
                    "datetime",
                    "pendulum",
                    "from tokumei.pipeline import airflow_tasks",
                )
            ), f"{dag_file.name}: {line}"


def test_the_task_helper_imports_no_data_library() -> None:
    """The DAG processor imports the helper on every parse: the data stack loads in tasks only."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tokumei.pipeline.airflow_tasks; "
            "print(sorted(m for m in ('polars', 'duckdb', 'pyarrow', 'great_expectations', "
            "'spacy', 'presidio_analyzer', 'pandas', 'tokumei.pipeline.steps') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_pools_file_declares_every_pool_the_dags_use() -> None:
    from tokumei.pipeline import airflow_tasks as at

    pools = json.loads((DAGS / "pools.json").read_text())
    assert set(pools) == set(at.POOLS.values())
    for name, spec in pools.items():
        assert spec["slots"] >= 1 and spec["description"], name


def test_a_bad_timeout_setting_is_an_import_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tokumei.pipeline import airflow_tasks as at

    monkeypatch.setenv("TOKUMEI_TIMEOUT_EXTRACT", "90")
    assert at.execution_timeout("extract") == timedelta(minutes=90)
    for bad in ("0", "-5", "ninety", "1.5"):
        monkeypatch.setenv("TOKUMEI_TIMEOUT_EXTRACT", bad)
        with pytest.raises(ValueError, match="TOKUMEI_TIMEOUT_EXTRACT"):
            at.execution_timeout("extract")


def test_published_paths_become_one_asset_event_per_table_and_date() -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from tokumei.pipeline import airflow_tasks as at

    published = [
        "stats/page_views",
        "stats/daily_active_users",
        "anonymized/page_views",
        "stats/weekly_active_users",
        "stats/page_views",  # named twice: one event
        "catalog.duckdb",  # not a table
    ]
    events = OutletEventAccessors()  # what Airflow hands a task as outlet_events
    assert at.emit_published_assets(events, published, DAY, 7) == 4
    emitted = events[at.PUBLISHED_ALIAS].asset_alias_events
    assert [(e.dest_asset_key.name, e.extra["date"]) for e in emitted] == [
        ("tokumei.stats.page_views", DAY),
        ("tokumei.stats.daily_active_users", DAY),
        ("tokumei.anonymized.page_views", DAY),
        ("tokumei.stats.weekly_active_users", DAY),
    ]
    assert emitted[0].dest_asset_key.uri == "x-tokumei://published/stats/page_views"
    assert emitted[0].extra == {
        "date": DAY,
        "path": "published/delta/stats/page_views",
        "release": 7,
        "run_day": DAY,
    }  # no run id: the OpenLineage provider copies extras into its events


# --------------------------------------------------------------------------------------------
# The failure notifier against a local SMTP sink and a local webhook


@pytest.fixture
def smtp_sink() -> Any:
    """An SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            self.messages.append(
                SimpleNamespace(
                    rcpt=list(envelope.rcpt_tos), msg=message_from_bytes(envelope.content)
                )
            )
            return "250 OK"

    handler = Keep()
    with socket.socket() as probe:  # aiosmtpd's Controller needs a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SimpleNamespace(port=port, handler=handler)
    finally:
        controller.stop()


def _smtp_conn(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@localhost"},
        }
    )


def _body(msg: Any) -> str:
    parts = msg.walk() if msg.is_multipart() else [msg]
    return "".join(
        p.get_payload(decode=True).decode() for p in parts if p.get_content_maintype() == "text"
    )


def test_notifier_mails_the_failed_task_without_values(
    smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG

    from tokumei.pipeline import airflow_tasks as at

    monkeypatch.setenv("AIRFLOW_CONN_TOKUMEI_ALERT_SMTP", _smtp_conn(smtp_sink.port))
    monkeypatch.setenv("TOKUMEI_ALERT_SMTP_CONN_ID", "tokumei_alert_smtp")
    monkeypatch.setenv("TOKUMEI_ALERT_EMAIL_TO", "ops@example.org, oncall@example.org")
    # the shape Airflow gives a DAG failure callback (dag processor / dag.test): dag, run id,
    # the failed task instance, the reason
    context = {
        "dag": DAG("usage_analytics", schedule=None),
        "run_id": "scheduled__2026-11-23T15:00:00+00:00",
        "ti": SimpleNamespace(task_id="scrub", map_index=1, try_number=3, log_url=None),
        "reason": "task_failure",
        "params": {"date": PLANTED["email"]},  # never read by the notifier
    }
    at.FailureNotifier()(context)
    assert len(smtp_sink.handler.messages) == 1
    sent = smtp_sink.handler.messages[0]
    assert sorted(sent.rcpt) == ["oncall@example.org", "ops@example.org"]
    subject, body = sent.msg["Subject"], _body(sent.msg)
    assert "usage_analytics" in subject and "scrub[1]" in subject
    for fact in ("scheduled__2026-11-23T15:00:00+00:00", "scrub[1] (try 3)", "task_failure"):
        assert fact in body, fact
    assert PLANTED["email"] not in subject + body


def test_notifier_posts_to_a_webhook_from_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import DAG

    from tokumei.pipeline import airflow_tasks as at

    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hooks/T000/secret-token"
        monkeypatch.setenv(
            "AIRFLOW_CONN_TOKUMEI_ALERT_WEBHOOK",
            json.dumps({"conn_type": "http", "extra": {"url": url}}),
        )
        monkeypatch.setenv("TOKUMEI_ALERT_WEBHOOK_CONN_ID", "tokumei_alert_webhook")
        monkeypatch.delenv("TOKUMEI_ALERT_EMAIL_TO", raising=False)
        at.FailureNotifier()(
            {
                "dag": DAG("retention", schedule=None),
                "run_id": "manual__1",
                "ti": SimpleNamespace(task_id="apply_retention", map_index=-1, try_number=1),
                "reason": "task_failure",
            }
        )
    finally:
        server.shutdown()
    assert len(received) == 1
    assert received[0]["dag_id"] == "retention"
    assert received[0]["task_id"] == "apply_retention"
    assert "map_index" not in received[0]
    assert "apply_retention" in received[0]["text"]


# --------------------------------------------------------------------------------------------
# Real runs (dag.test on SQLite)


def _landing(root: Path, days: tuple[str, ...]) -> Path:
    """The hand-written landing for ``days`` (one DB), each source-day sealed by its marker."""
    from tokumei.anonymize.policy import LANDING_SOURCES
    from tokumei.ingest.landing import seal_day

    landing = write_handmade_landing(root / "landing", days[0])
    for day in days[1:]:
        other = write_handmade_landing(root / f"landing-{day}", day)
        for folder in other.glob(f"*/date={day}"):
            shutil.copytree(folder, landing / folder.relative_to(other))
    for day in days:
        seal_day(landing, day, LANDING_SOURCES, producer="test")
    return landing


def _env(tmp_path: Path, landing: Path, out: Path, **extra: str) -> dict[str, str]:
    env = {  # nothing from the caller's environment may turn on or redirect lineage events
        k: v
        for k, v in airflow_env(tmp_path / "af").items()
        if not k.startswith(("OPENLINEAGE", "AIRFLOW__OPENLINEAGE__"))
    }
    env.update(
        TOKUMEI_LANDING=str(landing),
        TOKUMEI_OUT=str(out),
        TOKUMEI_DB_URL=f"sqlite:///{landing / 'ops.db'}",
        TOKUMEI_PSEUDONYM_KEY=TEST_KEY,
        TOKUMEI_TASK_RETRIES="0",
        **extra,
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return env


_DAG_TEST = """
    import datetime, json
    from sqlalchemy import select
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    dag = DagBag(dag_folder={dags!r}).dags["usage_analytics"]
    runs = []
    for day in {days!r}:
        dr = dag.test(logical_date=datetime.datetime.fromisoformat(day + "T00:00:00+09:00"))
        runs.append({{"run_id": dr.run_id, "state": str(dr.state),
                     "tasks": {{f"{{ti.task_id}}[{{ti.map_index}}]": str(ti.state)
                               for ti in dr.get_task_instances()}}}})
    with create_session() as s:
        events = [{{"asset": e.asset.name, "uri": e.asset.uri, "extra": e.extra,
                   "task": e.source_task_id, "run": e.source_run_id}}
                  for e in s.scalars(select(AssetEvent).order_by(AssetEvent.id))]
    print("RESULT", json.dumps({{"runs": runs, "events": events}}))
"""


def _lineage_env(events: Path) -> dict[str, str]:
    """OpenLineage on, as docs/deploy.md recommends, into a file: the client's ``transform``
    transport with tokumei's transformer around a file transport."""
    transport = {
        "type": "transform",
        "transformer_class": "tokumei.pipeline.lineage_transform.WithoutErrorText",
        "transport": {"type": "file", "log_file_path": str(events), "append": True},
    }
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "tokumei-test",
        # the provider emits from a forked process and kills it after this many seconds
        "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": "120",
    }


def _check_lineage(
    ol_events: Path, runs: list[dict[str, Any]], landing: Path, out: Path, published: dict
) -> None:
    """The OpenLineage events of the runs (file transport): a START and a COMPLETE per task
    instance, inputs and outputs naming the datasets each task declares (resolved to this
    test's folders, written out here by hand) plus, for publish, the tables it published that
    day; and no raw value, key or tokumei run id anywhere in them."""
    from tokumei.pipeline import airflow_tasks as at

    text = ol_events.read_text()
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    roots = {
        "landing": landing,
        "work": out / "_work",
        "staging": out / "_staging",
        "published": out / "published",
        "retained": out / "retained",
        "quarantine": out / "quarantine",
        "opsdb": landing / "ops.db",  # TOKUMEI_DB_URL=sqlite:///<landing>/ops.db
    }

    def named(path: str) -> tuple[str, str]:
        root, _, rest = path.partition("/")
        if root == "policy":
            return "file", str(ROOT / "policies")
        return "file", str(roots[root] / rest) if rest else str(roots[root])

    for run, day in zip(runs, (DAY, DAY2), strict=True):
        mine = [
            e
            for e in events
            if e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id")
            == run["run_id"]
            and e["job"]["name"].startswith("usage_analytics.")
        ]
        for key in run["tasks"]:  # "task[map_index]"
            task_id = key.split("[")[0]
            instances = sum(1 for k in run["tasks"] if k.split("[")[0] == task_id)
            job = [e for e in mine if e["job"]["name"] == f"usage_analytics.{task_id}"]
            kinds = sorted(e["eventType"] for e in job)
            assert kinds == ["COMPLETE"] * instances + ["START"] * instances, (day, key, kinds)
            inputs, outputs = at.LINEAGE.get(task_id, ((), ()))
            want_out = {named(p) for p in outputs}
            if task_id == "publish":
                want_out |= {named(f"published/{t}") for t in published[day]}
            for e in job:
                got_in = {(d["namespace"], d["name"]) for d in e.get("inputs", [])}
                got_out = {(d["namespace"], d["name"]) for d in e.get("outputs", [])}
                assert got_in == {named(p) for p in inputs}, (task_id, e["eventType"], got_in)
                if e["eventType"] == "COMPLETE" or task_id != "publish":
                    assert got_out == want_out, (task_id, e["eventType"], got_out)
                else:  # at START publish has not published yet: only its static outlets
                    assert got_out == {named(p) for p in outputs}, got_out
    manifests = [
        json.loads((out / "reports" / f"date={day}" / "manifest.json").read_text())
        for day in (DAY, DAY2)
    ]
    needles = [*PLANTED.values(), TEST_KEY, *(m["run_id"] for m in manifests)]
    leaks = [
        (e["eventType"], e["job"]["name"], where)
        for e in events
        for where, value in _strings(e)
        if any(n in value for n in needles)
    ]
    assert leaks == []
    assert not any(n in text for n in needles)  # keys too, and anything _strings missed


def _strings(obj: Any, where: str = "") -> list[tuple[str, str]]:
    """Every (path, string) of a JSON document, keys included: where a leak sits."""
    if isinstance(obj, dict):
        return [(f"{where}.{k}", k) for k in obj] + [
            item for k, v in obj.items() for item in _strings(v, f"{where}.{k}")
        ]
    if isinstance(obj, list):
        return [item for i, v in enumerate(obj) for item in _strings(v, f"{where}[{i}]")]
    return [(where, str(obj))]


@pytest.mark.slow
def test_backfill_of_two_dates_publishes_both_and_emits_asset_events(tmp_path: Path) -> None:
    """What `airflow backfill create` does for two days, as dag.test(): one run per logical
    date (00:00 JST), each publishing its JST day and emitting one Asset event per table; the
    OpenLineage provider writes the runs' lineage to a file (see _check_lineage)."""
    landing = _landing(tmp_path, (DAY, DAY2))
    out = tmp_path / "out"
    ol_events = tmp_path / "openlineage.jsonl"
    env = _env(
        tmp_path,
        landing,
        out,
        TOKUMEI_PARTITIONS="2",  # exercises dynamic task mapping
        **_lineage_env(ol_events),
    )
    result = _run_python(_DAG_TEST.format(dags=str(DAGS), days=(DAY, DAY2)), env, timeout=1200)
    runs, events = result["runs"], result["events"]
    # Airflow's Asset events of the published tables (the lineage outlets of the other tasks
    # are Assets too and have their own events, without extra)
    events = [e for e in events if e["uri"].startswith("x-tokumei://published/")]
    assert [r["state"].rsplit(".", 1)[-1] for r in runs] == ["success", "success"], runs
    assert runs[0]["tasks"]["scrub[1]"].endswith("success")  # two mapped partitions ran
    assert runs[0]["tasks"]["cleanup[-1]"].endswith("success")
    for day, run in zip((DAY, DAY2), runs, strict=True):
        manifest = json.loads((out / "reports" / f"date={day}" / "manifest.json").read_text())
        assert manifest["status"] == "published"
        assert manifest["steps"]["partitions"] == 2
        published = published_tables(out, day)
        assert published
        # one Asset event per published table of that day, from that run's publish task
        mine = [e for e in events if e["run"] == run["run_id"]]
        assert sorted(e["asset"].removeprefix("tokumei.").replace(".", "/") for e in mine) == (
            published
        )
        assert {e["extra"]["date"] for e in mine} == {day}
        assert {e["task"] for e in mine} == {"publish"}
        assert all(e["uri"].startswith("x-tokumei://published/") for e in mine)
    # the teardown removed both work layers
    assert not (out / "_work").exists() or not any((out / "_work").iterdir())
    published_by_day = {day: published_tables(out, day) for day in (DAY, DAY2)}
    _check_lineage(ol_events, runs, landing, out, published_by_day)
    # the documented backfill command picks exactly these JST days (dry run on the same metadata
    # DB; `completed` because dag.test() already made runs for both dates, which `none` skips)
    dry = subprocess.run(
        [
            *(sys.executable, "-m", "airflow", "backfill", "create"),
            *("--dag-id", "usage_analytics", "--max-active-runs", "1"),
            *("--from-date", f"{DAY}T00:00:00+09:00", "--to-date", f"{DAY2}T00:00:00+09:00"),
            *("--reprocess-behavior", "completed", "--dry-run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    planned = [
        datetime.fromisoformat(m[1]).astimezone(JST).date().isoformat()
        for m in re.finditer(
            r"^\| (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d) +\|", dry.stdout, re.M
        )
    ]
    assert planned == [DAY, DAY2], dry.stdout[-2000:]
    # the captured Airflow task logs and XComs carry no raw PII and never the key
    for needle in [*PLANTED.values(), TEST_KEY]:
        assert needle not in result["_logs"]
        for path, text in all_text_under(tmp_path / "af"):
            if path.suffix in {".log", ".json", ".txt"}:
                assert needle not in text, path


@pytest.mark.slow
def test_failed_runs_alert_once_each_clean_up_and_publish_nothing(
    tmp_path: Path, smtp_sink: Any
) -> None:
    """Two failing days. DAY: a source-day without its marker; the sensor waits (here 0
    minutes) and times out naming it. DAY2: a file changed after its producer sealed the day;
    the sensor fails at once (waiting cannot fix a finished delivery). Either way nothing
    downstream runs, the teardown still removes the work directory, nothing is published, and
    the notifier sends exactly one e-mail per failed run naming DAG, run, task and reason."""
    from tokumei.ingest.landing import MARKER

    landing = _landing(tmp_path, (DAY, DAY2))
    (landing / "cookies" / f"date={DAY}" / MARKER).unlink()
    changed = next(p for p in (landing / "cookies" / f"date={DAY2}").iterdir() if p.name != MARKER)
    with changed.open("ab") as fh:  # a byte more than the marker lists
        fh.write(b"\n")
    out = tmp_path / "out"
    env = _env(
        tmp_path,
        landing,
        out,
        TOKUMEI_LANDING_WAIT_MINUTES="0",
        AIRFLOW_CONN_TOKUMEI_ALERT_SMTP=_smtp_conn(smtp_sink.port),
        TOKUMEI_ALERT_SMTP_CONN_ID="tokumei_alert_smtp",
        TOKUMEI_ALERT_EMAIL_TO="ops@example.org",
        **_lineage_env(tmp_path / "openlineage.jsonl"),
    )
    result = _run_python(_DAG_TEST.format(dags=str(DAGS), days=(DAY, DAY2)), env, timeout=900)
    runs = result["runs"]
    for run in runs:
        assert run["state"].endswith("failed"), run
        tasks = run["tasks"]
        assert tasks["landing_complete[-1]"].endswith("failed")
        assert tasks["extract[-1]"].endswith("upstream_failed")
        assert tasks["cleanup[-1]"].endswith("success")  # the teardown ran on failure
    assert result["events"] == []  # nothing published, no Asset event
    assert not (out / "published").exists() or not any((out / "published").rglob("*.parquet"))
    assert not (out / "_work").exists() or not any((out / "_work").iterdir())
    # each failure names the source-day and why, in the task log (dag.test prints it)
    logs = result["_logs"]
    assert f"landing for {DAY} still incomplete after waiting 0:00:00" in logs
    assert f"cookies/date={DAY}: no {MARKER} marker" in logs
    assert f"landing for {DAY2} was delivered but does not match its marker" in logs
    assert f"cookies/date={DAY2}/{changed.name}: " in logs
    # lineage: the failed sensor has a FAIL event naming the landing datasets it read, without
    # the failure's text (file names here; a library's message could quote a value)
    from tokumei.pipeline.lineage_transform import WITHHELD

    ol_text = (tmp_path / "openlineage.jsonl").read_text()
    ol = [json.loads(line) for line in ol_text.splitlines() if line.strip()]
    for run in runs:
        sensor = [
            e
            for e in ol
            if e["job"]["name"] == "usage_analytics.landing_complete"
            and e["run"]["facets"]["airflow"]["dagRun"]["run_id"] == run["run_id"]
        ]
        assert sorted(e["eventType"] for e in sensor) == ["FAIL", "START"]
        (fail,) = [e for e in sensor if e["eventType"] == "FAIL"]
        assert fail["run"]["facets"]["errorMessage"]["message"] == WITHHELD
        assert {d["name"] for d in fail["inputs"]} == {
            str(landing / s) for s in ("events", "devices", "measurements", "cookies")
        }
    for needle in [*PLANTED.values(), TEST_KEY, "incomplete", "marker", changed.name]:
        assert needle not in ol_text, needle
    # one alert per failed run, for that run and the failed task, with Airflow's reason
    assert len(smtp_sink.handler.messages) == 2
    for run, sent in zip(runs, smtp_sink.handler.messages, strict=True):
        text = sent.msg["Subject"] + _body(sent.msg)
        for fact in ("usage_analytics", run["run_id"], "landing_complete", "task_failure"):
            assert fact in text, fact
        for needle in [*PLANTED.values(), TEST_KEY]:
            assert needle not in text
