"""Landing and output on S3-compatible storage (issue 6), against a real local S3 server.

moto's ``ThreadedMotoServer`` listens on a free port of 127.0.0.1; tokumei talks to it over
HTTP through s3fs exactly as it would to MinIO or AWS (only ``TOKUMEI_S3_ENDPOINT_URL`` differs),
and the tables are read back with Polars' own object_store client. The same hand-written landing
is run locally and through the bucket: the published Delta tables must be equal, the reports
must follow the release, and no credential may appear anywhere.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import DAY, TEST_KEY, all_text_under, moto_s3, write_handmade_landing

from tokumei.infra import objectstore
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

BUCKET = "tokumei-test"
DAY2 = "2026-11-25"
ACCESS_KEY_ID = "AKIATOKUMEITESTKEYID"
SECRET = "tokumei-test-secret-Zq9v7R3mK1xP0wLs4Ue8"
SECRETS = (ACCESS_KEY_ID, SECRET, TEST_KEY)


@dataclass
class S3Env:
    endpoint: str
    landing_url: str
    out_url: str
    local_out: Path
    db_url: str
    local_landing: Path
    log: io.StringIO
    timings: dict[str, float]

    def settings(self) -> Settings:
        return Settings.from_env()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Env]:
    """A moto S3 server, credentials in the standard AWS variables, a bucket with the landing."""
    with moto_s3(ACCESS_KEY_ID, SECRET) as (endpoint, mp):
        yield from _s3_env(tmp_path_factory.mktemp("s3"), endpoint, mp)


def _s3_env(root: Path, endpoint: str, mp: pytest.MonkeyPatch) -> Iterator[S3Env]:
    """The landing uploaded, tokumei's S3 settings in the environment, and a log capture."""
    landing = write_handmade_landing(root / "landing")
    # a second date for the same service (its own ops.db is not used: the DB is the first one's)
    day2 = write_handmade_landing(root / "landing2", day=DAY2)
    fs = objectstore.filesystem()
    fs.mkdir(BUCKET)
    t0 = time.perf_counter()
    for src in (landing, day2):  # the source folders, file by file (not the ops.db)
        for f in sorted(p for p in src.glob("*/date=*/*") if p.is_file()):
            fs.put_file(str(f), f"{BUCKET}/landing/{f.relative_to(src).as_posix()}")
    landing_upload = time.perf_counter() - t0
    local_out = root / "build"
    mp.setenv("TOKUMEI_LANDING", f"s3://{BUCKET}/landing")
    mp.setenv("TOKUMEI_OUT", f"s3://{BUCKET}/tokumei/")
    mp.setenv("TOKUMEI_LOCAL_OUT", str(local_out))
    mp.setenv("TOKUMEI_DB_URL", f"sqlite:///{landing / 'ops.db'}")
    # everything tokumei and its libraries log at INFO and above, for the no-secret check
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.INFO)
    root_logger, tk = logging.getLogger(), logging.getLogger("tokumei")
    old_levels = (root_logger.level, tk.level)
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    tk.setLevel(logging.INFO)
    try:
        yield S3Env(
            endpoint=endpoint,
            landing_url=f"s3://{BUCKET}/landing",
            out_url=f"s3://{BUCKET}/tokumei",
            local_out=local_out,
            db_url=f"sqlite:///{landing / 'ops.db'}",
            local_landing=landing,
            log=log,
            timings={"landing_upload_s": landing_upload},
        )
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_levels[0])
        tk.setLevel(old_levels[1])


@pytest.fixture(scope="module")
def local_run(s3: S3Env, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the same landing run on local disk."""
    out = tmp_path_factory.mktemp("local") / "out"
    settings = Settings(landing=s3.local_landing, db_url=s3.db_url, out=out).resolved()
    steps.run_all(settings, DAY)
    return out


@pytest.fixture(scope="module")
def s3_run(s3: S3Env, local_run: Path) -> dict[str, Any]:
    """One run with landing and out on S3."""
    settings = s3.settings()
    t0 = time.perf_counter()
    result = steps.run_all(settings, DAY)
    s3.timings["s3_run_s"] = time.perf_counter() - t0
    s3.timings["report_objects"] = result["publish"]["reports"]["objects"]
    s3.timings["report_bytes"] = result["publish"]["reports"]["bytes"]
    return result


# --------------------------------------------------------------------------------------------


def test_settings_from_env_splits_urls_and_local_build_root(s3: S3Env) -> None:
    settings = s3.settings()
    assert settings.landing_url == s3.landing_url
    assert settings.out_url == s3.out_url  # trailing slash normalised away
    assert settings.out == s3.local_out.resolve()
    assert not settings.landing.exists()  # the placeholder can never exist


def test_urls_with_credentials_or_without_db_url_are_refused(
    s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKUMEI_OUT", f"s3://{ACCESS_KEY_ID}:{SECRET}@{BUCKET}/x")
    with pytest.raises(TokumeiError, match="credentials") as exc:
        Settings.from_env()
    assert SECRET not in str(exc.value)
    monkeypatch.setenv("TOKUMEI_OUT", s3.out_url)
    monkeypatch.delenv("TOKUMEI_DB_URL")
    with pytest.raises(TokumeiError, match="TOKUMEI_DB_URL"):
        Settings.from_env()


def test_s3_manifest_equals_the_local_runs(s3: S3Env, s3_run: dict, local_run: Path) -> None:
    raw = objectstore.read_report(s3.out_url, DAY, "manifest.json")
    assert raw is not None
    manifest = json.loads(raw)
    assert manifest["status"] == "published" and manifest["run_id"] == s3_run["run_id"]
    local_manifest = json.loads((local_run / f"reports/date={DAY}/manifest.json").read_text())
    assert manifest["sources"] == local_manifest["sources"]
    assert manifest["outputs"].keys() == local_manifest["outputs"].keys()
    assert sorted(s3_run["publish"]["tables"]) == sorted(local_manifest["outputs"])


def _delta_release(published: str, options: dict[str, str] | None = None) -> dict:
    """Every table of the newest Delta release, read through the marker with Polars alone."""
    rel = pl.read_delta(f"{published}/delta/releases", storage_options=options)
    cur = rel.filter(pl.col("release") == pl.col("release").max())
    out = {}
    for table, version in cur.select("table", "version").iter_rows():
        frame = pl.read_delta(
            f"{published}/delta/{table}", version=version, storage_options=options
        )
        out[table] = frame.sort(frame.columns, nulls_last=True)
    return out


def test_delta_tables_on_s3_equal_the_local_runs(s3: S3Env, s3_run: dict, local_run: Path) -> None:
    """The s3:// output holds the Delta tables and marker too (docs/adr/0008), read by Polars
    with the endpoint only (credentials from the AWS variables)."""
    remote = _delta_release(f"{s3.out_url}/published", objectstore.polars_storage_options())
    local = _delta_release(str(local_run / "published"))
    assert remote.keys() == local.keys() and len(remote) >= 7
    for table, frame in local.items():
        assert remote[table].equals(frame), table
    assert s3_run["publish"]["delta_release"] >= 1


def test_reports_are_in_the_release(s3: S3Env, s3_run: dict) -> None:
    fs = objectstore.filesystem()
    reports = f"{BUCKET}/tokumei/reports/date={DAY}"
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(reports)}
    assert {"manifest.json", "privacy_report.html", "items_notice.md", "data_docs"} <= names
    assert len(fs.find(reports)) == s3_run["publish"]["reports"]["objects"]
    # nothing of the old release protocol is written any more
    assert not fs.exists(f"{BUCKET}/tokumei/releases")
    assert not fs.exists(f"{BUCKET}/tokumei/published/CURRENT.json")


def test_raw_data_stays_off_the_bucket_and_the_work_dir_is_gone(
    s3: S3Env, s3_run: dict, local_run: Path
) -> None:
    fs = objectstore.filesystem()
    out_keys = fs.find(f"{BUCKET}/tokumei")
    assert not [k for k in out_keys if any(d in k for d in ("/quarantine/", "/_work/"))]
    # the retained pseudonymous layer lives under the output (workers share no disk), equal to
    # the local run's, and nothing of it stays on the worker
    for dataset in ("activity", "purchases"):
        remote = f"{BUCKET}/tokumei/retained/{dataset}/date={DAY}"
        assert fs.find(remote), dataset
        local_rows = pl.read_parquet(local_run / "retained" / dataset / f"date={DAY}")
        remote_rows = pl.read_parquet(
            f"s3://{remote}/*.parquet", storage_options=objectstore.polars_storage_options()
        )
        assert remote_rows.sort(remote_rows.columns).equals(local_rows.sort(local_rows.columns))
    assert fs.exists(f"{BUCKET}/tokumei/retained/KEY_CHECK")
    assert not (s3.local_out / "retained").exists()
    # quarantined rows stay on the local, access-restricted build root
    assert list((s3.local_out / "quarantine" / "events" / f"date={DAY}").glob("part-*.parquet"))
    assert not (s3.local_out / "_work" / s3_run["run_id"]).exists()
    assert not (s3.local_out / "_staging" / s3_run["run_id"]).exists()


def test_no_credential_in_logs_bucket_or_local_files(
    s3: S3Env, s3_run: dict, tmp_path: Path
) -> None:
    logs = s3.log.getvalue()
    assert "uploaded" in logs and "staged" in logs  # the capture works
    assert s3.endpoint in logs or s3.out_url in logs
    fs = objectstore.filesystem()
    mirror = tmp_path / "bucket"
    fs.get(f"{BUCKET}/tokumei/", str(mirror), recursive=True)
    texts = list(all_text_under(mirror, s3.local_out))
    assert len(texts) > 20
    for secret in SECRETS:
        assert secret not in logs
        assert secret not in json.dumps(s3_run, default=str)
        for path, text in texts:
            assert secret not in text, path


def test_failed_delta_commit_leaves_readers_on_the_previous_release(
    s3: S3Env, s3_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that fails before the release marker's commit changes nothing readers see;
    the next publish undoes the stray table commits (tableformat.recover)."""
    from tokumei.infra import tableformat

    published = f"{s3.out_url}/published"
    before = tableformat.current_release(published)
    assert before is not None

    def lost(*args: Any, **kwargs: Any) -> None:
        raise ConnectionResetError("injected: connection lost before the marker commit")

    monkeypatch.setattr(tableformat, "_append_marker", lost)
    with pytest.raises(Exception):  # noqa: B017 - the injected failure, whatever wraps it
        steps.run_all(s3.settings(), DAY)
    after = tableformat.current_release(published)
    assert after is not None and after.release == before.release
    assert after.versions == before.versions
    # the failure is recorded locally, with a reason free of credentials
    failed = list((s3.local_out / "reports" / f"date={DAY}" / "failed").glob("*.json"))
    assert failed and all(SECRET not in f.read_text() for f in failed)


def test_failed_report_upload_fails_the_run_without_a_value(
    s3: S3Env, s3_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = objectstore._upload_file, []

    def flaky(fs: Any, local: Path, key: str) -> dict[str, Any]:
        if f"/reports/date={DAY}/" not in key:  # the work layer, the Data Docs history site
            return real(fs, local, key)
        calls.append(key)
        if len(calls) > 3:
            raise ConnectionResetError(f"injected: connection lost during upload {SECRET}")
        return real(fs, local, key)

    monkeypatch.setattr(objectstore, "_upload_file", flaky)
    with pytest.raises(TokumeiError, match="uploading the reports") as exc:
        steps.run_all(s3.settings(), DAY)
    assert SECRET not in str(exc.value) and len(calls) == 4
    # the manifest goes last, so the one on the bucket is still a whole earlier run's
    raw = objectstore.read_report(s3.out_url, DAY, "manifest.json")
    assert raw is not None and json.loads(raw)["status"] == "published"


def test_conditional_put_detects_a_concurrent_writer(s3: S3Env) -> None:
    fs = objectstore.filesystem()
    key = f"{BUCKET}/scratch/pointer.json"
    fs.pipe_file(key, b"{}", IfNoneMatch="*")
    with pytest.raises(Exception) as exc:
        fs.pipe_file(key, b"{}", IfNoneMatch="*")
    assert objectstore._precondition_failed(exc.value)
    with pytest.raises(Exception) as exc:
        fs.pipe_file(key, b"{}", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert objectstore._precondition_failed(exc.value)
    etag = objectstore._etag(fs.info(key))
    fs.pipe_file(key, b'{"a": 1}', IfMatch=f'"{etag}"')  # the current ETag wins
    assert json.loads(fs.cat_file(key)) == {"a": 1}


def test_a_second_date_joins_the_release(s3: S3Env, s3_run: dict, local_run: Path) -> None:
    """Run through the CLI (in-process) with s3:// URLs for --landing and --out."""
    from typer.testing import CliRunner

    from tokumei.cli import app
    from tokumei.infra import tableformat

    args = ["run", "--landing", s3.landing_url, "--out", s3.out_url, "--date", DAY2]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "--db-url is required" in refused.output
    done = CliRunner().invoke(app, [*args, "--db-url", s3.db_url])
    assert done.exit_code == 0, done.output[-2000:]
    printed = done.output.replace("\n", "")
    assert f"{s3.out_url}/published/delta/stats/" in printed
    assert f"{s3.out_url}/reports/date={DAY2}" in printed
    raw = objectstore.read_report(s3.out_url, DAY2, "manifest.json")
    assert raw is not None
    manifest = json.loads(raw)
    assert manifest["steps"]["extract"]["events"]["files"] == 2
    assert manifest["sources"]["events"]["input"] >= 100  # printed: rounded to 100s
    published = f"{s3.out_url}/published"
    assert tableformat.released_days(published, "stats/daily_active_users") >= {DAY, DAY2}
    # one Data Docs site on the bucket lists the validations of both runs (no local history)
    fs = objectstore.filesystem()
    site = f"{BUCKET}/tokumei/reports/data_docs"
    rows = json.loads(fs.cat_file(f"{site}/validations.json"))
    assert {s3_run["run_id"], manifest["run_id"]} <= {r["run_name"] for r in rows}
    assert fs.exists(f"{site}/index.html")
    assert manifest["run_id"] in fs.cat_file(f"{site}/index.html").decode()
    # the first date is still what the first run published, read through the marker
    local = tableformat.read_day(local_run / "published", "stats/page_views", DAY)
    remote = tableformat.read_day(published, "stats/page_views", DAY)
    assert local is not None and remote is not None and remote.equals(local)


def test_a_dated_layer_lists_and_scans_its_days_on_s3(s3: S3Env, tmp_path: Path) -> None:
    """The retained layer's reader (period tables) on the bucket: days listed once, a day's
    files scanned with the endpoint options only."""
    from datetime import date

    from tokumei.infra.dated import DatedLayer

    fs = objectstore.filesystem()
    for day, n in (("2026-11-23", 2), ("2026-11-24", 3)):
        for i in range(n):
            local = tmp_path / f"{day}-{i}.parquet"
            pl.DataFrame({"person": [f"p{i}"], "active": [True]}).write_parquet(local)
            fs.put_file(str(local), f"{BUCKET}/layer/activity/date={day}/part-{i:04d}.parquet")
    fs.pipe_file(f"{BUCKET}/layer/activity/not-a-day/x.parquet", b"x")
    layer = DatedLayer(f"s3://{BUCKET}/layer/activity")
    assert layer.days() == {date(2026, 11, 23), date(2026, 11, 24)}
    assert not layer.has(date(2026, 11, 25))
    schema = {"person": pl.String, "active": pl.Boolean}
    assert layer.scan(date(2026, 11, 24), schema).collect().height == 3
    assert DatedLayer(f"s3://{BUCKET}/layer/none").days() == set()
