"""The local mirror of an ``s3://`` output must hold the releases the pointer names (fail closed).

Against moto's S3 server on 127.0.0.1, as in ``tests/test_object_storage.py``. Later runs compare
their tables with the local mirror (``<local out>/published/``, ``retained/``) as "what readers
have"; if the mirror lags behind ``published/CURRENT.json`` those checks use the wrong baseline.

* a run after a publish whose local mirror update failed is refused at ``start``, before it writes
  anything: the pointer, the releases and the local output are unchanged;
* ``tokumei mirror`` downloads the pointer's releases (verified) into the local mirror, and the
  retried run then succeeds;
* a normal sequence of runs is never refused, and a second machine (another local root) is
  refused until it has synced, after which its mirror equals the first machine's.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DAY, TEST_KEY, all_text_under, moto_s3, write_handmade_landing
from typer.testing import CliRunner

from tokumei.cli import app
from tokumei.infra import objectstore
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

BUCKET = "tokumei-mirror"
DAY2 = "2026-11-25"
ACCESS_KEY_ID = "AKIATOKUMEIMIRRORKEY"
SECRET = "tokumei-mirror-secret-4Tg8Wn2Rb6Yk0Qs1"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A moto S3 server with one bucket; credentials only in the standard AWS variables."""
    with moto_s3(ACCESS_KEY_ID, SECRET) as (endpoint, mp):
        mp.delenv(objectstore.LOCAL_OUT_ENV, raising=False)
        objectstore.filesystem().mkdir(BUCKET)
        yield endpoint


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-written landing for two dates (one ops.db: the first date's)."""
    root = tmp_path_factory.mktemp("mirror-landing")
    landing = write_handmade_landing(root / "landing")
    day2 = write_handmade_landing(root / "landing2", day=DAY2)
    for part in day2.glob(f"*/date={DAY2}"):
        shutil.copytree(part, landing / part.relative_to(day2))
    return landing


@pytest.fixture()
def url(s3_server: str) -> str:
    """A fresh output prefix for one test."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}"


def _settings(landing: Path, build: Path, url: str) -> Settings:
    return Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=build, out_url=url
    ).resolved()


def _raw_pointer(url: str) -> bytes:
    return objectstore.filesystem().cat_file(f"{objectstore._bare(url)}/{objectstore.POINTER}")


def _local_files(root: Path) -> dict[str, bytes]:
    """Files of the local mirror that later runs read (tables and reports), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for sub in ("published/stats", "published/anonymized", "reports")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file() and "/failed/" not in p.as_posix()
    }


def _mirror_cli(url: str, build: Path) -> dict[str, Any]:
    done = CliRunner().invoke(app, ["mirror", "--out", url, "--local-out", str(build)])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_a_run_after_a_failed_mirror_update_is_refused_until_the_mirror_is_synced(
    landing: Path, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = tmp_path / "build"
    settings = _settings(landing, build, url)

    # run 1: published on the bucket, but the local mirror update fails (as in
    # test_object_storage_rights: the disk fills right after the pointer write)
    def broken(paths: Any) -> list[str]:
        raise OSError("injected: the local disk is full")

    with monkeypatch.context() as m:
        m.setattr(steps, "publish_tree", broken)
        first = steps.run_all(settings, DAY)
    assert first["publish"]["local_mirror"] == "failed"
    r1 = first["run_id"]
    assert objectstore.read_pointer(url)[0]["dates"][DAY]["run_id"] == r1
    assert DAY not in objectstore.read_mirror(build).get("dates", {})

    # run 2 is refused at start: nothing written on the bucket or under the local root
    pointer_before = _raw_pointer(url)
    bucket_before = sorted(objectstore.filesystem().find(objectstore._bare(url)))
    local_before = sorted(p.relative_to(build).as_posix() for p in build.rglob("*"))
    with pytest.raises(TokumeiError) as refused:
        steps.run_all(settings, DAY)
    message = str(refused.value)
    assert "local mirror" in message and "stale" in message and "tokumei mirror" in message
    assert r1 in message and "\n" not in message
    assert TEST_KEY not in message and SECRET not in message
    assert _raw_pointer(url) == pointer_before
    assert sorted(objectstore.filesystem().find(objectstore._bare(url))) == bucket_before
    assert sorted(p.relative_to(build).as_posix() for p in build.rglob("*")) == local_before
    assert not (build / "published" / "stats").exists()

    # the fix the message names: sync the mirror from the pointer's release
    synced = _mirror_cli(url, build)
    assert synced["synced_dates"] == {DAY: r1}
    assert synced["retained_days_removed"] == []
    assert objectstore.read_mirror(build)["dates"] == {DAY: r1}
    objectstore.check_mirror(url, build)  # passes now
    manifest = json.loads((build / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert manifest["run_id"] == r1
    fs = objectstore.filesystem()
    for name, by_day in objectstore.read_pointer(url)[0]["tables"].items():
        for key in by_day[DAY]:
            local = build / "published" / name / f"date={DAY}" / key.rsplit("/", 1)[-1]
            assert local.read_bytes() == fs.cat_file(f"{objectstore._bare(url)}/{key}"), name
    assert (build / "published" / "catalog.duckdb").is_file()
    again = _mirror_cli(url, build)  # nothing left to do
    assert again["synced_dates"] == {}

    # the retried run goes through and leaves the mirror in line with the pointer
    third = steps.run_all(settings, DAY)
    assert third["publish"]["local_mirror"] == "updated"
    assert objectstore.read_pointer(url)[0]["dates"][DAY]["run_id"] == third["run_id"]
    assert objectstore.read_mirror(build)["dates"] == {DAY: third["run_id"]}
    for path, text in all_text_under(build):
        assert TEST_KEY not in text and SECRET not in text and ACCESS_KEY_ID not in text, path


def test_normal_runs_pass_and_a_second_machine_must_sync_first(
    landing: Path, url: str, tmp_path: Path
) -> None:
    build = tmp_path / "machine-a"
    settings = _settings(landing, build, url)
    r1 = steps.run_all(settings, DAY)["run_id"]
    r2 = steps.run_all(settings, DAY2)["run_id"]  # not refused: the mirror followed run 1
    assert objectstore.read_mirror(build)["dates"] == {DAY: r1, DAY2: r2}
    objectstore.check_mirror(url, build)

    # another machine (its own local root) has not seen these releases: refused, then synced
    other = tmp_path / "machine-b"
    with pytest.raises(TokumeiError, match="is stale: 2 date"):
        steps.start(_settings(landing, other, url), DAY)
    assert not other.exists() or not any((other / "_work").glob("*"))
    synced = objectstore.sync_mirror(url, other)
    assert synced["synced_dates"] == {DAY: r1, DAY2: r2}
    assert _local_files(other) == _local_files(build)
    objectstore.check_mirror(url, other)

    # machine b publishes a rerun of DAY: now machine a is the stale one
    r3 = steps.run_all(_settings(landing, other, url), DAY)["run_id"]
    with pytest.raises(TokumeiError, match=f"first: {DAY}, pointer {r3}, mirror {r1}"):
        steps.start(settings, DAY)
    # a's retained day of DAY belongs to run 1, not to the release readers have: removed
    assert (build / "retained" / "activity" / f"date={DAY}").is_dir()
    synced = objectstore.sync_mirror(url, build)
    assert synced["synced_dates"] == {DAY: r3}
    assert f"retained/activity/date={DAY}" in synced["retained_days_removed"]
    assert not (build / "retained" / "activity" / f"date={DAY}").exists()
    assert (build / "retained" / "activity" / f"date={DAY2}").is_dir()
    assert _local_files(build) == _local_files(other)
    objectstore.check_mirror(url, build)


def test_a_local_output_is_not_checked(landing: Path, tmp_path: Path) -> None:
    """Local mode is unchanged: no pointer, no record, nothing refused."""
    settings = Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=tmp_path / "out"
    ).resolved()
    run_id = steps.start(settings, DAY)
    steps.cleanup(settings, DAY, run_id)
    assert not (tmp_path / "out" / objectstore.MIRROR).exists()


def test_a_release_published_while_a_run_computes_stops_its_publish(
    landing: Path, url: str, tmp_path: Path
) -> None:
    """The run's checks used the mirror as it was at start: a release published meanwhile
    (another machine) was not in that baseline, so the run must not publish over it."""
    import polars as pl

    from tokumei.infra.storage import RunPaths

    settings = _settings(landing, tmp_path / "build", url)
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    try:
        for _name, fn in steps.STEPS[:-1]:
            fn(settings, DAY, run_id)
        # another machine publishes DAY2 meanwhile (a tiny release, no pipeline run)
        other = _settings(landing, tmp_path / "other", url)
        paths = RunPaths(other, DAY2, "run-elsewhere")
        table = paths.staged_table("stats", "t")
        table.parent.mkdir(parents=True)
        pl.DataFrame({"n": [1]}).write_parquet(table)
        objectstore.publish_release(other, paths)
        before = _raw_pointer(url)
        with pytest.raises(TokumeiError, match="moved while this run was computing"):
            steps.publish(settings, DAY, run_id)
        assert _raw_pointer(url) == before
        assert list(objectstore.iter_releases(url)) == ["run-elsewhere"]
        assert not (settings.out / "published" / "stats").exists()
    finally:
        steps.cleanup(settings, DAY, run_id)
