"""The landing sensor on an ``s3://`` landing (docs/landing.md, "The check"; docs/deploy.md).

A moto S3 server on 127.0.0.1 holds the hand-written landing; tokumei reaches it through the
standard AWS variables and ``TOKUMEI_S3_ENDPOINT_URL`` like a deployment would. The sensor runs
Airflow's own poke loop (``BaseSensorOperator.execute``, reschedule mode): before the producer's
markers exist it asks to be rescheduled, once they do it is done, and when its wait is over it
fails naming the source-day and the missing marker.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import DAY, moto_s3, write_handmade_landing

from tokumei.anonymize.policy import LANDING_SOURCES
from tokumei.infra import objectstore
from tokumei.ingest.landing import MARKER, Problem, check_day, check_day_url

ACCESS_KEY_ID = "AKIASENSORTEST000001"
SECRET = "sensor-secret-do-not-print-0000000000"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The landing's data files on the bucket, no marker yet; tokumei's settings in the env."""
    with moto_s3(ACCESS_KEY_ID, SECRET) as (_, mp):
        landing = write_handmade_landing(tmp_path / "landing")
        fs = objectstore.filesystem()
        bucket = f"tokumei-sensor-{uuid.uuid4().hex[:8]}"  # moto keeps buckets across servers
        fs.mkdir(bucket)
        for f in sorted(p for p in landing.glob("*/date=*/*") if p.is_file()):
            if f.name != MARKER:
                fs.put_file(str(f), f"{bucket}/landing/{f.relative_to(landing).as_posix()}")
        mp.setenv("TOKUMEI_LANDING", f"s3://{bucket}/landing")
        mp.setenv("TOKUMEI_OUT", str(tmp_path / "out"))
        mp.setenv("TOKUMEI_DB_URL", f"sqlite:///{landing / 'ops.db'}")
        mp.delenv("TOKUMEI_ALLOW_INCOMPLETE", raising=False)
        yield SimpleNamespace(
            fs=fs, landing=landing, url=f"s3://{bucket}/landing", root=f"{bucket}/landing"
        )


def _put_marker(s3: SimpleNamespace, source: str) -> None:
    rel = f"{source}/date={DAY}/{MARKER}"
    s3.fs.put_file(str(s3.landing / rel), f"{s3.root}/{rel}")


def _put(s3: SimpleNamespace, rel: str, data: bytes) -> None:
    s3.fs.pipe_file(f"{s3.root}/{rel}", data)


def test_the_s3_check_gives_the_local_check_s_verdicts(s3: SimpleNamespace) -> None:
    status = check_day_url(s3.url, "events", DAY)
    assert (status.complete, status.problem) == (False, Problem.NO_MARKER)
    assert (
        status.reason
        == f"events/date={DAY}: no {MARKER} marker (the producer has not finished the day)"
    )
    other = check_day_url(s3.url, "events", "2026-11-25")
    assert (
        other.problem == Problem.NO_FOLDER
        and other.reason == check_day(s3.landing, "events", "2026-11-25").reason
    )
    for source in LANDING_SOURCES:
        _put_marker(s3, source)
    for source in LANDING_SOURCES:
        remote, local = check_day_url(s3.url, source, DAY), check_day(s3.landing, source, DAY)
        assert remote.complete and remote.files == local.files, source
    # a delivery that does not match its marker: each reason as the local check words it
    events = sorted(
        p.name for p in (s3.landing / "events" / f"date={DAY}").iterdir() if p.name != MARKER
    )
    first = f"events/date={DAY}/{events[0]}"
    _put(s3, f"events/date={DAY}/part-9.jsonl", b"{}\n")
    assert check_day_url(s3.url, "events", DAY).problem == Problem.UNLISTED_FILE
    s3.fs.rm_file(f"{s3.root}/events/date={DAY}/part-9.jsonl")
    _put(s3, first, (s3.landing / first).read_bytes() + b"\n")
    status = check_day_url(s3.url, "events", DAY)
    assert status.problem == Problem.SIZE and status.reason.startswith(f"{first}: ")
    s3.fs.rm_file(f"{s3.root}/{first}")
    assert check_day_url(s3.url, "events", DAY).reason == f"{first}: listed in {MARKER}, missing"
    _put(s3, f"cookies/date={DAY}/{MARKER}", b"not json")
    assert check_day_url(s3.url, "cookies", DAY).problem == Problem.BAD_MARKER
    _put(s3, f"cookies/date={DAY}/{MARKER}", json.dumps({"format": 1, "files": []}).encode())
    assert check_day_url(s3.url, "cookies", DAY).problem == Problem.UNLISTED_FILE


def _context(first_poke: datetime) -> dict[str, Any]:
    """What a reschedule-mode sensor reads from its context: the day and when it first ran."""
    ti = SimpleNamespace(get_first_reschedule_date=lambda context: first_poke)
    return {"params": {"date": DAY}, "ti": ti}


def _execute(sensor: Any, context: dict[str, Any]) -> Any:
    from airflow.sdk.execution_time.context import set_current_context

    with set_current_context(context):
        return sensor.execute(context)


def test_the_sensor_waits_for_the_markers_on_s3_then_is_done(s3: SimpleNamespace) -> None:
    from airflow.exceptions import AirflowRescheduleException

    from tokumei.pipeline.airflow_tasks import LandingCompleteSensor

    sensor = LandingCompleteSensor(task_id="landing_complete", timeout=timedelta(hours=6))
    now = datetime.now(UTC)
    with pytest.raises(AirflowRescheduleException):  # not done: give the slot back, poke later
        _execute(sensor, _context(now))
    assert sorted(sensor._pending) == sorted(LANDING_SOURCES)
    for source in LANDING_SOURCES[:-1]:
        _put_marker(s3, source)
    with pytest.raises(AirflowRescheduleException):
        _execute(sensor, _context(now))
    assert list(sensor._pending) == [LANDING_SOURCES[-1]]
    _put_marker(s3, LANDING_SOURCES[-1])
    _execute(sensor, _context(now))  # done: returns, extract may start
    assert sensor._pending == {}


def test_the_sensor_times_out_on_s3_naming_the_missing_marker(s3: SimpleNamespace) -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from tokumei.pipeline.airflow_tasks import LandingCompleteSensor

    for source in LANDING_SOURCES:
        if source != "cookies":
            _put_marker(s3, source)
    sensor = LandingCompleteSensor(task_id="landing_complete", timeout=timedelta(hours=6))
    started = datetime.now(UTC) - timedelta(hours=6, minutes=1)  # the first poke, 6 h ago
    with pytest.raises(AirflowSensorTimeout) as info:
        _execute(sensor, _context(started))
    msg = str(info.value)
    assert msg.startswith(f"landing for {DAY} still incomplete after waiting 6:00:00 ")
    assert f"cookies: cookies/date={DAY}: no {MARKER} marker" in msg
    assert "\n" not in msg and SECRET not in msg and ACCESS_KEY_ID not in msg


def test_the_sensor_fails_at_once_when_an_s3_delivery_does_not_match(s3: SimpleNamespace) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from tokumei.pipeline.airflow_tasks import LandingCompleteSensor

    for source in LANDING_SOURCES:
        _put_marker(s3, source)
    rel = f"measurements/date={DAY}/part-0.csv"
    _put(s3, rel, (s3.landing / rel).read_bytes() + b"scale-9,user-0009,x,1,1\n")
    sensor = LandingCompleteSensor(task_id="landing_complete", timeout=timedelta(hours=6))
    with pytest.raises(
        AirflowFailException, match=f"does not match its marker: measurements: {rel}: "
    ):
        _execute(sensor, _context(datetime.now(UTC)))
