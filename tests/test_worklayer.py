"""The run's work layer and lock under an s3:// output (issue 18), against a moto S3 server.

Two "workers" are two local output roots that share nothing but the bucket: what one pushes
the other pulls (only what a task needs, only changed files), the raw landing copy and the
sync's own files never reach the bucket, cleanup removes the run's prefixes, and the output's
run lock is an object taken with a conditional PUT.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import moto_s3

from tokumei.infra import objectstore, runlock, worklayer
from tokumei.infra.settings import Settings

BUCKET = "tokumei-worklayer"
OUT = f"s3://{BUCKET}/out"
RUN = "2026-11-24-20261206T140000-0123abcd"


@pytest.fixture(scope="module")
def bucket() -> Iterator[str]:
    with moto_s3("AKIATOKUMEIWORKLAYER", "worklayer-test-secret") as (endpoint, _mp):
        objectstore.filesystem().mkdir(BUCKET)
        yield endpoint


@pytest.fixture
def out_url(bucket: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh output prefix per test (the server is shared by the module)."""
    url = f"{OUT}-{request.node.name.replace('[', '-').strip(']')}"
    yield url
    fs = objectstore.filesystem()
    if fs.exists(objectstore._bare(url)):
        fs.rm(objectstore._bare(url), recursive=True)


def worker(root: Path, url: str) -> Settings:
    """One worker's settings: its own local root, the shared bucket output."""
    return Settings(landing=root / "landing", db_url="sqlite://", out=root / "local", out_url=url)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def a_run(s: Settings) -> tuple[Path, Path]:
    """A work layer and staging as the steps leave them, with a raw landing copy and a
    quarantine beside it."""
    work, staging = s.out / "_work" / RUN, s.out / "_staging" / RUN
    write(work / "steps" / "start.json", '{"day": "2026-11-24"}')
    write(work / "dims" / "allowed.parquet", "dims")
    for p in (0, 1):
        write(work / "generalized" / "events" / f"part-{p:04d}" / "f-00000.parquet", f"ev{p}")
        write(work / "scrubbed" / "events" / f"part-{p:04d}.parquet", f"sc{p}")
    write(work / "generalized" / "persons.parquet", "persons")
    write(work / "generalized" / "events" / "_writing-f-00001.parquet" / "part-0000.parquet", "x")
    write(work / "landing" / "events" / "date=2026-11-24" / "part-0.jsonl", "RAW-LINE")
    write(work / "dims" / "half.parquet.tmp", "in progress")
    write(s.out / "quarantine" / "events" / "date=2026-11-24" / "part-0.parquet", "RAW-BAD")
    write(staging / "published" / "stats" / "page_views" / "date=2026-11-24" / "x.parquet", "t")
    return work, staging


def remote_keys(url: str) -> set[str]:
    base = objectstore._bare(url)
    fs = objectstore.filesystem()
    return {k.removeprefix(base + "/") for k in fs.find(base)} if fs.exists(base) else set()


def test_round_trip_pulls_only_what_a_task_needs(tmp_path: Path, out_url: str) -> None:
    a, b = worker(tmp_path / "a", out_url), worker(tmp_path / "b", out_url)
    work, _ = a_run(a)
    up = worklayer.push(a, RUN)
    keys = remote_keys(out_url)
    assert keys == {
        f"_work/{RUN}/steps/start.json",
        f"_work/{RUN}/dims/allowed.parquet",
        f"_work/{RUN}/generalized/persons.parquet",
        *(f"_work/{RUN}/generalized/events/part-{p:04d}/f-00000.parquet" for p in (0, 1)),
        *(f"_work/{RUN}/scrubbed/events/part-{p:04d}.parquet" for p in (0, 1)),
        f"_staging/{RUN}/published/stats/page_views/date=2026-11-24/x.parquet",
    }, "the raw landing copy, quarantine, in-progress files and sync files stay local"
    assert up.files == len(keys)
    # nothing raw on the bucket, whatever its key
    fs = objectstore.filesystem()
    for key in keys:
        assert b"RAW" not in fs.cat_file(f"{objectstore._bare(out_url)}/{key}")

    # worker b, a mapped task of partition 1 that reads the generalized layer
    down = worklayer.pull(b, RUN, ("work/steps", "work/generalized"), partition=1)
    bwork = b.out / "_work" / RUN
    got = sorted(p.relative_to(bwork).as_posix() for p in bwork.rglob("*") if p.is_file())
    assert [g for g in got if not g.startswith(".sync")] == [
        "generalized/events/part-0001/f-00000.parquet",
        "generalized/persons.parquet",
        "steps/start.json",
    ]
    assert (bwork / "generalized" / "events" / "part-0001" / "f-00000.parquet").read_text() == "ev1"
    assert down.files == 3
    assert (b.out / "_staging" / RUN).is_dir()
    assert oct(bwork.stat().st_mode & 0o777) == oct(0o700)


def test_only_changed_files_move(tmp_path: Path, out_url: str) -> None:
    a, b = worker(tmp_path / "a", out_url), worker(tmp_path / "b", out_url)
    work, _ = a_run(a)
    worklayer.push(a, RUN)
    assert worklayer.push(a, RUN).files == 0  # nothing changed

    needs = ("work", "staging")
    first = worklayer.pull(b, RUN, needs)
    assert first.files == 8 and first.skipped == 0
    again = worklayer.pull(b, RUN, needs)
    assert (again.files, again.skipped) == (0, 8)

    # b's step rewrites one file and adds one; only those go up
    bwork = b.out / "_work" / RUN
    write(bwork / "steps" / "start.json", '{"day": "2026-11-24", "more": 1}')
    write(bwork / "stats_map" / "dau" / "part-0000.parquet", "dau")
    up = worklayer.push(b, RUN)
    assert sorted(up.names) == ["work/stats_map/dau/part-0000.parquet", "work/steps/start.json"]

    # a pulls them back and skips what it already holds in the bucket's version
    down = worklayer.pull(a, RUN, needs)
    assert sorted(down.names) == sorted(up.names)
    assert (work / "steps" / "start.json").read_text().endswith("1}")

    # a file a step removed goes from the bucket too
    (bwork / "stats_map" / "dau" / "part-0000.parquet").unlink()
    assert worklayer.push(b, RUN).deleted == 1
    assert f"_work/{RUN}/stats_map/dau/part-0000.parquet" not in remote_keys(out_url)


def test_a_failed_step_pushes_nothing(tmp_path: Path, out_url: str) -> None:
    a = worker(tmp_path / "a", out_url)
    a_run(a)
    with pytest.raises(RuntimeError), worklayer.synced(a, RUN, "scrub", ("work/steps",)):
        raise RuntimeError("the step failed")
    assert remote_keys(out_url) == set()


def test_cleanup_removes_the_run_prefixes(tmp_path: Path, out_url: str) -> None:
    a = worker(tmp_path / "a", out_url)
    a_run(a)
    worklayer.push(a, RUN)
    other = "2026-11-23-20261205T140000-0badc0de"
    fs = objectstore.filesystem()
    fs.pipe_file(f"{objectstore._bare(out_url)}/_work/{other}/steps/start.json", b"{}")
    assert worklayer.has_remote_work(out_url, RUN, fs)
    assert worklayer.remove_remote(a, RUN) == 8
    assert not worklayer.has_remote_work(out_url, RUN, fs)
    assert remote_keys(out_url) == {f"_work/{other}/steps/start.json"}
    # a start holding the lock removes what dead runs left
    assert worklayer.remove_dead_remote(a, RUN) == 1
    assert remote_keys(out_url) == set()


def test_sweep_of_other_runs_scratch(tmp_path: Path, out_url: str) -> None:
    a = worker(tmp_path / "a", out_url)
    old = a.out / "_work" / "2026-11-23-20261205T140000-0badc0de"
    write(old / "dims" / "allowed.parquet", "old")
    keep = write(a.out / "_work" / "not-a-run" / "x", "x")
    worklayer.pull(a, RUN, ("work",))
    assert not old.exists() and keep.exists()


def test_staged_landing_file_is_verified(tmp_path: Path, out_url: str) -> None:
    import hashlib

    fs = objectstore.filesystem()
    name = "events/date=2026-11-24/part-0.jsonl"
    fs.pipe_file(f"{BUCKET}/landing-wl/{name}", b'{"a": 1}\n')
    s = Settings(
        landing=tmp_path, db_url="sqlite://", out=tmp_path / "w", out_url=out_url,
        landing_url=f"s3://{BUCKET}/landing-wl",
    )  # fmt: skip
    good = hashlib.sha256(b'{"a": 1}\n').hexdigest()
    path = worklayer.stage_landing_file(s, RUN, name, good)
    assert path == s.out / "_work" / RUN / "landing" / name and path.read_bytes() == b'{"a": 1}\n'
    path.unlink()
    with pytest.raises(objectstore.ObjectStoreError, match="changed since extract"):
        worklayer.stage_landing_file(s, RUN, name, "0" * 64)
    assert not path.exists()


# --------------------------------------------------------------------------------------------
# the run lock on the bucket


def test_second_run_is_refused_naming_the_holder(tmp_path: Path, out_url: str) -> None:
    assert runlock.acquire_url(out_url, RUN, in_airflow=True) is None
    holder, _ = runlock.read_url(out_url)
    assert holder and holder["run_id"] == RUN and holder["mode"] == "airflow"
    with pytest.raises(runlock.RunLocked, match=RUN):
        runlock.acquire_url(out_url, "2026-11-24-20261206T150000-feedface", in_airflow=True)
    assert runlock.acquire_url(out_url, RUN, in_airflow=True) is None  # a retried start
    assert not runlock.release_url(out_url, "2026-11-24-20261206T150000-feedface")
    assert runlock.release_url(out_url, RUN)
    assert runlock.read_url(out_url) == (None, "")


def _plant_lock(url: str, **holder: object) -> None:
    started = datetime.now(UTC) - timedelta(minutes=30)
    body = {
        "run_id": "2026-11-23-20261205T140000-0badc0de",
        "host": "another-worker",
        "pid": 1,
        "mode": "airflow",
        "airflow_run": "scheduled__x",
        "started_at": started.isoformat(timespec="seconds"),
        **holder,
    }
    objectstore.filesystem().pipe_file(
        f"{objectstore._bare(url)}/{runlock.LOCK}", json.dumps(body).encode()
    )


def test_live_airflow_run_on_another_worker_keeps_the_lock(tmp_path: Path, out_url: str) -> None:
    _plant_lock(out_url)
    fs = objectstore.filesystem()
    dead = "2026-11-23-20261205T140000-0badc0de"
    fs.pipe_file(f"{objectstore._bare(out_url)}/_work/{dead}/steps/start.json", b"{}")
    with pytest.raises(runlock.RunLocked, match=f"run {dead} on host another-worker"):
        runlock.acquire_url(out_url, RUN, in_airflow=True)


def test_stale_lock_is_taken_over(tmp_path: Path, out_url: str) -> None:
    # an Airflow run whose work layer is gone (no cleanup released its lock)
    _plant_lock(out_url)
    note = runlock.acquire_url(out_url, RUN, in_airflow=True)
    assert note and "its work layer is gone" in note
    assert runlock.read_url(out_url)[0]["run_id"] == RUN  # type: ignore[index]
    # any holder over the time to live
    _plant_lock(out_url, mode="process", airflow_run=None, started_at="2026-01-01T00:00:00+00:00")
    note = runlock.acquire_url(out_url, RUN)
    assert note and "time to live" in note


def test_conditional_put_refuses_a_lock_written_meanwhile(
    tmp_path: Path, out_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two starts racing for a free lock: the one whose If-None-Match PUT loses sees the
    winner's lock on its next look and is refused."""
    real = runlock.read_url
    calls = {"n": 0}

    def racing(url: str, fs: object = None) -> tuple[object, str]:
        calls["n"] += 1
        if calls["n"] == 1:  # the other start writes between our read and our PUT
            _plant_lock(url, started_at=datetime.now(UTC).isoformat(timespec="seconds"))
            return None, ""
        return real(url, fs)

    monkeypatch.setattr(runlock, "read_url", racing)
    with pytest.raises(runlock.RunLocked, match="0badc0de"):
        runlock.acquire_url(out_url, RUN, in_airflow=True)
    assert calls["n"] >= 2


def test_jobs_and_cli_runs_wait_for_the_bucket_lock(tmp_path: Path, out_url: str) -> None:
    """Retention and rights erasure (``runlock.job_lock`` with ``out_url``) and ``tokumei run``
    take the bucket's lock too: a run on the cluster and they exclude each other."""
    from tokumei.pipeline import steps

    @runlock.job_lock("test-job")
    def job(out: Path, dry_run: bool = False, out_url: str | None = None) -> str | None:
        holder, _ = runlock.read_url(out_url or "")
        return holder and holder["run_id"]

    runlock.acquire_url(out_url, RUN, in_airflow=True)
    with pytest.raises(runlock.RunLocked, match=RUN):
        job(tmp_path / "local", out_url=out_url)
    assert job(tmp_path / "local", dry_run=True, out_url=out_url) == RUN  # a dry run takes none
    s = worker(tmp_path / "cli", out_url)
    with pytest.raises(runlock.RunLocked, match=RUN):
        steps.run_all(s, "2026-11-24")
    assert not (s.out / "_work").exists()
    assert runlock.release_url(out_url, RUN)
    holder = job(tmp_path / "local", out_url=out_url)
    assert holder and holder.startswith("test-job-")  # held while the job ran
    assert runlock.read_url(out_url) == (None, "")  # and released after
    assert runlock.read(tmp_path / "local") is None
