"""Retention, rights erasure and the publish outcome on S3-compatible storage (issue 6).

Against moto's S3 server on 127.0.0.1, as in ``tests/test_object_storage.py``: tokumei talks to
it over HTTP through s3fs exactly as it would to MinIO or AWS. Every test works under its own
prefix of one bucket, so the tests are independent of each other and of their order.

* retention deletes exactly the expired ``date=`` partitions of an ``s3://`` landing, reports
  them like local folders (partition, files, bytes; never an object's name) and keeps the rest;
* a rights request erases the person's rows from the landing objects with the same result,
  byte for byte, as the local code on a folder, and an object that cannot be rewritten (upload
  fails, or a producer replaced it meanwhile) leaves the request open and the object as it was;
* a publish that fails locally after the pointer moved reports the release as published, which
  is what readers see, and a retried publish changes nothing on the bucket.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import DAY, airflow_env, moto_s3, write_handmade_landing
from test_rights_erasure import EXTRA_EVENTS, NOW, THEIRS, _is_theirs, _landing

from tokumei.anonymize.policy import default_policy_dir, load_policy
from tokumei.infra import objectstore
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.jobs.retention import apply_retention
from tokumei.jobs.rights_erasure import AUDIT_LOG, apply_rights_requests
from tokumei.pipeline import steps

BUCKET = "tokumei-rights"
ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
TODAY = date(2026, 11, 24)
SECRET_VALUE = "hanako.yamada@example.co.jp"  # inside objects: never in a report or a log
ODD_NAME = "export-user-0032.jsonl"  # a producer-chosen object name: never in a report or a log
ACCESS_KEY_ID = "AKIATOKUMEIRIGHTSKEY"
SECRET = "tokumei-rights-secret-8Hq2Lm5Vn0Xc7Pz3"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A moto S3 server with one bucket; credentials only in the standard AWS variables."""
    with moto_s3(ACCESS_KEY_ID, SECRET) as (endpoint, mp):
        objectstore.filesystem().mkdir(BUCKET)
        yield endpoint


@pytest.fixture()
def prefix(s3_server: str) -> str:
    """A fresh ``bucket/prefix`` for one test."""
    return f"{BUCKET}/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def policy():  # noqa: ANN201
    return load_policy(default_policy_dir())


def _upload_tree(local: Path, bare: str) -> None:
    """Every file under ``local`` (but the ops.db) to ``bare/<relative path>``."""
    fs = objectstore.filesystem()
    for f in sorted(p for p in local.rglob("*") if p.is_file() and p.name != "ops.db"):
        fs.put_file(str(f), f"{bare}/{f.relative_to(local).as_posix()}")


def _objects(bare: str) -> dict[str, bytes]:
    """``{key relative to bare: content}`` of every object under ``bare``."""
    fs = objectstore.filesystem()
    return {name.removeprefix(bare + "/"): fs.cat_file(name) for name in sorted(fs.find(bare))}


def _ago(days: int) -> date:
    return TODAY - timedelta(days=days)


# --------------------------------------------------------------------------------------------
# retention


def _ours(caplog: pytest.LogCaptureFixture) -> str:
    """What tokumei logged (the moto server's own access log names every key it serves)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tokumei"))


def _put(fs: Any, bare: str, rel: str, size: int = 10) -> None:
    fs.pipe_file(f"{bare}/{rel}", SECRET_VALUE.ljust(size, "x")[:size].encode())


def test_retention_deletes_exactly_the_expired_objects(
    prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fs = objectstore.filesystem()
    landing = f"{prefix}/landing"
    kept = [
        f"events/date={_ago(0)}/part-0.jsonl",
        f"events/date={_ago(30)}/part-0.jsonl",  # exactly at the limit: kept
        f"devices/date={_ago(1)}/part-0.jsonl",
        "events/date=2026-13-45/part-0.jsonl",  # not a calendar date: skipped
        "events/date=latest/part-0.jsonl",  # skipped
        "events/backup-2020/part-0.jsonl",  # skipped
        "events/README.txt",  # an object directly under a source: skipped
        "ops.db",  # at the landing root: not a source
    ]
    expired = {
        f"events/date={_ago(31)}/part-0.jsonl": 7,
        f"events/date={_ago(31)}/part-1.jsonl": 7,
        f"events/date={_ago(31)}/{ODD_NAME}": 7,
        f"events/date={_ago(400)}/part-0.jsonl.gz": 5,
        f"events/date={_ago(400)}/nested/extra.csv": 5,  # the whole partition goes
        f"devices/date={_ago(45)}/part-[0].jsonl": 11,  # a glob character in a name
        f"devices/date={_ago(45)}/part-1.jsonl": 11,
    }
    for rel in kept:
        _put(fs, landing, rel)
    for rel, size in expired.items():
        _put(fs, landing, rel, size)
    fs.pipe_file(f"{prefix}/elsewhere/date={_ago(500)}/x.jsonl", b"not the landing")
    out = tmp_path / "out"  # the local root: quarantine stays local, swept as before
    for day, files in ((_ago(91), 4), (_ago(90), 1)):
        q = out / "quarantine" / "events" / f"date={day}"
        q.mkdir(parents=True)
        for i in range(files):
            (q / f"part-{i}.parquet").write_bytes(b"abc")
    url = f"s3://{landing}"

    dry = apply_retention(url, out, TODAY, 30, 90, dry_run=True).to_dict()
    assert sorted(_objects(landing)) == sorted([*kept, *expired])  # a dry run deletes nothing
    with caplog.at_level(logging.INFO, logger="tokumei"):
        report = apply_retention(url, out, TODAY, 30, 90, out_url=f"s3://{prefix}/out")
    summary = report.to_dict()

    assert sorted(_objects(landing)) == sorted(kept)
    assert fs.exists(f"{prefix}/elsewhere/date={_ago(500)}/x.jsonl")
    assert [p.name for p in (out / "quarantine" / "events").iterdir()] == [f"date={_ago(90)}"]
    assert summary["deleted"] == {
        "landing/devices": {"partitions": 1, "files": 2, "bytes": 22},
        "landing/events": {"partitions": 2, "files": 5, "bytes": 31},
        "quarantine/events": {"partitions": 1, "files": 4, "bytes": 12},
    }
    assert summary["kept_partitions"] == 4  # 3 landing + 1 quarantine
    assert summary["skipped"] == [
        "landing/events/README.txt",
        "landing/events/backup-2020",
        "landing/events/date=2026-13-45",
        "landing/events/date=latest",
    ]
    assert dry["deleted"] == summary["deleted"] and dry["skipped"] == summary["skipped"]
    logged = _ours(caplog)
    assert f"deleted landing/events/date={_ago(31)} (3 files, 21 bytes)" in logged
    for needle in (SECRET_VALUE, ODD_NAME, "part-[0]", SECRET, ACCESS_KEY_ID):
        assert needle not in logged and needle not in json.dumps(summary), needle

    again = apply_retention(url, out, TODAY, 30, 90).to_dict()
    assert again["deleted"] == {} and sorted(_objects(landing)) == sorted(kept)


def test_retention_refuses_a_landing_that_overlaps_the_releases(
    prefix: str, tmp_path: Path
) -> None:
    fs = objectstore.filesystem()
    _put(fs, f"{prefix}/out", f"stats/date={_ago(500)}/part-0.parquet")
    report = apply_retention(
        f"s3://{prefix}/out", tmp_path / "out", TODAY, 30, 90, out_url=f"s3://{prefix}"
    ).to_dict()
    assert report["deleted"] == {} and any("overlaps" in s for s in report["skipped"])
    assert fs.exists(f"{prefix}/out/stats/date={_ago(500)}/part-0.parquet")


# --------------------------------------------------------------------------------------------
# rights erasure


@pytest.fixture()
def landings(tmp_path: Path, prefix: str) -> dict[str, Any]:
    """The hand-written landing of ``test_rights_erasure`` twice: uploaded to the bucket, and a
    local copy on which the local code runs as the reference."""
    landing, out = _landing(tmp_path / "s3side")
    _upload_tree(landing, f"{prefix}/landing")
    ref_landing, ref_out = tmp_path / "ref" / "landing", tmp_path / "ref" / "out"
    shutil.copytree(landing, ref_landing)
    shutil.copytree(out, ref_out)
    return {
        "url": f"s3://{prefix}/landing",
        "bare": f"{prefix}/landing",
        "db": f"sqlite:///{landing / 'ops.db'}",
        "out": out,
        "ref_landing": ref_landing,
        "ref_out": ref_out,
        "before": _objects(f"{prefix}/landing"),
    }


def _local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "ops.db"
    }


def _unzipped(files: dict[str, bytes]) -> dict[str, bytes]:
    import gzip

    return {k: gzip.decompress(v) if k.endswith(".gz") else v for k, v in files.items()}


def _rows(rel: str, data: bytes) -> list[Any]:
    """The records of one landing object (text lines, or Parquet rows)."""
    import gzip
    import io

    if rel.endswith(".parquet"):
        return pl.read_parquet(io.BytesIO(data)).rows(named=True)
    if rel.endswith(".gz"):
        data = gzip.decompress(data)
    return data.split(b"\n")


def test_rights_erasure_on_s3_equals_the_local_erasure(
    landings: dict[str, Any], policy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ref = apply_rights_requests(
        landings["ref_landing"], landings["ref_out"], landings["db"], policy, NOW
    )
    dry = apply_rights_requests(
        landings["url"], landings["out"], landings["db"], policy, NOW, dry_run=True
    )
    assert _objects(landings["bare"]) == landings["before"]  # a dry run writes nothing
    assert not (landings["out"] / AUDIT_LOG).exists()
    with caplog.at_level(logging.INFO, logger="tokumei"):
        report = apply_rights_requests(
            landings["url"], landings["out"], landings["db"], policy, NOW
        )
    assert dry.applied[0]["rows_removed"] == report.applied[0]["rows_removed"]

    after = _objects(landings["bare"])
    # the same objects, with exactly the bytes the local code leaves in the same files (gzip
    # members compared decompressed: their header holds the time they were written)
    assert _unzipped(after) == _unzipped(_local_files(landings["ref_landing"]))
    # the erased days still pass their completeness check (the markers followed the rewrites)
    from tokumei.ingest.landing import MARKER, check_day

    sealed = sorted(landings["ref_landing"].glob(f"*/date=*/{MARKER}"))
    assert sealed
    for marker in sealed:
        day = marker.parent.name.removeprefix("date=")
        assert check_day(landings["ref_landing"], marker.parent.parent.name, day).complete
    assert report.to_dict() | {"seconds": 0} == ref.to_dict() | {"seconds": 0}
    assert report.applied[0]["rows_removed"] == ref.applied[0]["rows_removed"]
    assert report.to_dict()["rows_removed"] == 16 and report.to_dict()["files_rewritten"] == 9
    # read back: the person's rows are gone, everyone else's rows are intact
    before = landings["before"]
    for rel, data in after.items():
        if rel.endswith("/_SUCCESS.json"):
            continue  # the completeness markers: equal to the local erasure's (above)
        old, new = _rows(rel, before[rel]), _rows(rel, data)
        if rel.endswith(".parquet"):
            assert new == [r for r in old if r["user_id"] != "user-0032"], rel
            assert len(new) == 39
        elif ".csv" in rel:
            assert new == [ln for ln in old if not ln.startswith(b"scale-32,")], rel
        else:
            assert new == [ln for ln in old if not _is_theirs(ln)], rel
        text = str(new)
        for ident in THEIRS:
            assert f"{ident}," not in text and f'{ident}"' not in text, (rel, ident)
            assert f"'{ident}'" not in text, (rel, ident)
    extra_key = "events/date=2026-11-23/part-0.jsonl"
    extra = _rows(extra_key, after[extra_key])
    assert len(extra) == len(EXTRA_EVENTS) - 4 and EXTRA_EVENTS[-1] in extra
    # quarantine stays local and is erased as before
    assert _local_files(landings["out"] / "quarantine") == _local_files(
        landings["ref_out"] / "quarantine"
    )
    # audited once, without personal data; no copy of raw data is left behind
    audit = (landings["out"] / AUDIT_LOG).read_text()
    assert len(audit.splitlines()) == 1 and json.loads(audit)["request_id"] == 1
    for needle in (*THEIRS, "user-0033", "0032", "cookie-", "scale-"):
        assert needle not in audit, needle
    logged = _ours(caplog)
    assert "rights erasure: 1 requests, 16 rows removed" in logged
    for needle in ("user-0032", "cookie-0032", "part-0.jsonl", SECRET, ACCESS_KEY_ID):
        assert needle not in logged, needle
    assert not list((landings["out"] / "_work").iterdir())

    # a second call applies nothing and rewrites nothing
    fs = objectstore.filesystem()
    etags = {n: objectstore._etag(i) for n, i in fs.find(landings["bare"], detail=True).items()}
    again = apply_rights_requests(landings["url"], landings["out"], landings["db"], policy, NOW)
    assert again.applied == [] and again.to_dict()["already_applied"] == 1
    assert {n: objectstore._etag(i) for n, i in fs.find(landings["bare"], detail=True).items()} == (
        etags
    )


def test_a_failing_upload_leaves_the_request_open_and_the_object_intact(
    landings: dict[str, Any], policy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = f"cookies/date={DAY}/part-0.jsonl"
    real, calls = objectstore._upload_file, []

    def flaky(fs: Any, local: Path, key: str, if_match: str | None = None) -> dict[str, Any]:
        calls.append(key)
        if key.endswith(victim):
            raise ConnectionResetError("injected: connection lost during upload of user-0032")
        return real(fs, local, key, if_match)

    monkeypatch.setattr(objectstore, "_upload_file", flaky)
    with pytest.raises(TokumeiError, match="could not be rewritten") as exc:
        apply_rights_requests(landings["url"], landings["out"], landings["db"], policy, NOW)
    assert f"landing/cookies/date={DAY}" in str(exc.value)
    assert not any(i in str(exc.value) for i in THEIRS) and "injected" not in str(exc.value)
    assert any(k.endswith(victim) for k in calls)
    after = _objects(landings["bare"])
    assert after[victim] == landings["before"][victim]  # the original, byte for byte
    assert any(_is_theirs(ln) for ln in _rows(victim, after[victim]))
    assert not (landings["out"] / AUDIT_LOG).exists()  # the request is not recorded as applied
    assert not list((landings["out"] / "_work").iterdir())

    monkeypatch.setattr(objectstore, "_upload_file", real)  # the next run applies it
    report = apply_rights_requests(landings["url"], landings["out"], landings["db"], policy, NOW)
    assert [e["request_id"] for e in report.applied] == [1]
    assert not any(_is_theirs(ln) for ln in _rows(victim, _objects(landings["bare"])[victim]))
    assert len((landings["out"] / AUDIT_LOG).read_text().splitlines()) == 1


def test_an_object_replaced_by_its_producer_meanwhile_is_not_overwritten(
    landings: dict[str, Any],
    policy: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    victim = f"measurements/date={DAY}/part-0.csv"  # read once: not an ownership source
    redelivered = landings["before"][victim] + b"scale-9,user-0009,2026-11-24T08:00:00+09:00,1,2\n"
    real = objectstore.download_object

    def racing(fs: Any, info: dict[str, Any], dest: Path, what: str) -> int:
        size = real(fs, info, dest, what)
        if info["name"].endswith(victim):  # copied, not yet replaced: the producer re-delivers
            fs.pipe_file(info["name"], redelivered)
        return size

    monkeypatch.setattr(objectstore, "download_object", racing)
    with pytest.raises(TokumeiError, match="could not be rewritten"):
        apply_rights_requests(landings["url"], landings["out"], landings["db"], policy, NOW)
    assert _objects(landings["bare"])[victim] == redelivered  # the producer's object survives
    assert "changed since it was read" in _ours(caplog)  # refused by If-Match, not by chance
    assert not (landings["out"] / AUDIT_LOG).exists()


def test_rights_and_retention_dags_run_on_an_s3_landing(
    landings: dict[str, Any], s3_server: str, tmp_path: Path
) -> None:
    """Both DAG callables in an Airflow subprocess with ``TOKUMEI_LANDING=s3://…``."""
    env = airflow_env(
        tmp_path / "af",
        TOKUMEI_LANDING=landings["url"],
        TOKUMEI_OUT=str(landings["out"]),
        TOKUMEI_DB_URL=landings["db"],
        TOKUMEI_TASK_RETRIES="0",
    )
    code = textwrap.dedent(f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        for name, params in (("rights_requests", {{}}), ("retention", {{"today": "2027-01-10"}})):
            bag = DagBag(dag_folder={str(DAGS)!r} + "/" + name + ".py")
            assert not bag.import_errors, bag.import_errors
            dag = bag.dags[name]
            fn = dag.tasks[0].python_callable
            ctx = {{"params": {{**dict(dag.params), **params}}, "ds": "2027-01-10"}}
            fn.__globals__["get_current_context"] = lambda: ctx
            print("RESULT", name, json.dumps(fn()))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {
        ln.split(" ", 2)[1]: json.loads(ln.split(" ", 2)[2])
        for ln in proc.stdout.splitlines()
        if ln.startswith("RESULT ")
    }
    assert results["rights_requests"]["applied"] == 1
    assert results["rights_requests"]["rows_removed"] == 16
    # 2027-01-10 minus 30 days: both landing dates (2026-11-23 and -24) have expired
    assert results["retention"]["deleted"]["landing/events"]["partitions"] == 2
    assert _objects(landings["bare"]) == {}
    assert not any(i in proc.stdout for i in THEIRS)


# --------------------------------------------------------------------------------------------
# publish: a failure after the release marker committed


def test_a_failure_after_the_marker_commit_is_retried_to_the_same_rows(
    s3_server: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tokumei.infra import tableformat

    landing = write_handmade_landing(tmp_path / "landing")
    url = f"s3://{prefix}/out"
    settings = Settings(
        landing=landing,
        db_url=f"sqlite:///{landing / 'ops.db'}",
        out=tmp_path / "build",
        out_url=url,
    ).resolved()
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    for _name, fn in steps.STEPS[:-1]:
        fn(settings, DAY, run_id)
    real_upload, seen = objectstore.upload_reports, []

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(tableformat.current_release(f"{url}/published"))  # what readers see now
        raise objectstore.ObjectStoreError("uploading the reports failed (injected)")

    monkeypatch.setattr(objectstore, "upload_reports", broken)
    try:
        with pytest.raises(objectstore.ObjectStoreError, match="reports"):
            steps.publish(settings, DAY, run_id)
        # the marker had committed: readers already see this run's release
        assert seen and seen[0] is not None and seen[0].run_id == run_id
        first = {n: tableformat.read_day(f"{url}/published", n, DAY) for n in seen[0].versions}
        # a retry writes the release again (a new number, the same rows) and the reports
        monkeypatch.setattr(objectstore, "upload_reports", real_upload)
        retry = steps.publish(settings, DAY, run_id)
        assert retry["delta_release"] == seen[0].release + 1
        again = {n: tableformat.read_day(f"{url}/published", n, DAY) for n in seen[0].versions}
        assert again.keys() == first.keys() and len(first) >= 7
        for name, frame in first.items():
            assert frame is not None and again[name] is not None
            assert again[name].equals(frame), name
        manifest = objectstore.read_report(url, DAY, "manifest.json")
        assert manifest is not None and json.loads(manifest)["run_id"] == run_id
    finally:
        steps.cleanup(settings, DAY, run_id)


# --------------------------------------------------------------------------------------------
# the retained pseudonymous layer under an s3:// output


def test_erasure_and_retention_reach_the_retained_layer_on_s3(
    prefix: str, tmp_path: Path, policy
) -> None:
    """The retained layer lives under the s3:// output (workers share no disk): a rights request
    removes the person's pseudonymous rows from its objects, retention deletes expired days."""
    from conftest import TEST_KEY
    from test_rights_erasure import EARLIER, retained_persons

    landing, out = _landing(tmp_path)
    db = f"sqlite:///{landing / 'ops.db'}"
    out_url = f"s3://{prefix}/out"
    persons = retained_persons()
    fs = objectstore.filesystem()
    key = f"{prefix}/out/retained/activity/date={EARLIER}/part-0000.parquet"
    old_key = f"{prefix}/out/retained/activity/date=2025-01-01/part-0000.parquet"
    local = tmp_path / "part.parquet"
    pl.DataFrame({"person": persons, "active": [True] * 3}).write_parquet(local)
    fs.put_file(str(local), key)
    fs.put_file(str(local), old_key)

    with pytest.raises(TokumeiError, match="needs the pseudonym key"):
        apply_rights_requests(landing, out, db, policy, NOW, out_url=out_url)
    assert not (out / AUDIT_LOG).exists()

    report = apply_rights_requests(
        landing, out, db, policy, NOW, key=TEST_KEY, out_url=out_url
    ).to_dict()
    left = pl.read_parquet(fs.cat_file(key))
    assert left["person"].to_list() == [persons[2]]  # only user-0001 left
    assert report["rows_removed"] >= 2
    log = (out / AUDIT_LOG).read_text()
    assert f"retained/activity/date={EARLIER}" in log
    assert not any(p in log for p in persons) and TEST_KEY not in log
    assert not list((out / "_work").glob("rights-erasure-*"))  # copies removed

    kept = apply_retention(
        landing, out, TODAY, 30, 90, activity_days=400, out_url=out_url
    ).to_dict()
    assert not fs.exists(old_key) and fs.exists(key)
    assert kept["deleted"]["retained/activity"]["partitions"] == 1
