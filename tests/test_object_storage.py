"""Landing and output on S3-compatible storage (issue 6), against a real local S3 server.

moto's ``ThreadedMotoServer`` listens on a free port of 127.0.0.1; tokumei talks to it over
HTTP through s3fs exactly as it would to MinIO or AWS (only ``TOKUMEI_S3_ENDPOINT_URL`` differs),
and the tables are read back with Polars' own object_store client. The same hand-written landing
is run locally and through the bucket: the published tables must be equal, a failed upload must
leave the pointer on the previous release, and no credential may appear anywhere.
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
    s3.timings["upload_s"] = result["publish"]["upload_seconds"]
    s3.timings["release_objects"] = result["publish"]["objects"]
    s3.timings["release_bytes"] = result["publish"]["bytes"]
    return result


def _pointer(s3: S3Env) -> tuple[dict[str, Any], bytes]:
    fs = objectstore.filesystem()
    raw = fs.cat_file(f"{BUCKET}/tokumei/{objectstore.POINTER}")
    return json.loads(raw), raw


def _read_s3(s3: S3Env, urls: list[str]) -> pl.DataFrame:
    opts = objectstore.polars_storage_options()
    return pl.scan_parquet(urls, storage_options=opts, hive_partitioning=False).collect()


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


def test_s3_release_equals_the_local_run(s3: S3Env, s3_run: dict, local_run: Path) -> None:
    pointer, _ = _pointer(s3)
    run_id = s3_run["run_id"]
    assert pointer["release"] == f"releases/{run_id}"
    assert pointer["dates"][DAY]["run_id"] == run_id
    local_tables = sorted(
        f"{p.parent.parent.name}/{p.parent.name}"
        for p in (local_run / "published").glob("*/*/date=*")
    )
    assert sorted(pointer["tables"]) == local_tables
    assert len(local_tables) >= 7
    for name in local_tables:
        local = pl.read_parquet(local_run / "published" / name / f"date={DAY}" / "part-0.parquet")
        remote = _read_s3(s3, objectstore.table_urls(s3.out_url, name))
        assert remote.equals(local), name
    # the run manifest, through the pointer
    fs = objectstore.filesystem()
    manifest = json.loads(fs.cat_file(f"{BUCKET}/tokumei/{pointer['dates'][DAY]['manifest']}"))
    assert manifest["status"] == "published" and manifest["run_id"] == run_id
    local_manifest = json.loads((local_run / f"reports/date={DAY}/manifest.json").read_text())
    assert manifest["sources"] == local_manifest["sources"]
    # the catalog script names every view of the local catalog, over s3:// URLs
    sql = fs.cat_file(f"{BUCKET}/tokumei/{pointer['catalog']}").decode()
    assert sql.count("CREATE OR REPLACE VIEW") == len(local_tables)
    assert f"s3://{BUCKET}/tokumei/releases/{run_id}/published/stats/" in sql
    assert sorted(s3_run["publish"]["catalog_views"]) == sorted(
        n.split("/", 1)[1] if n.startswith("stats/") else n.replace("/", "_") for n in local_tables
    )


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


def test_catalog_script_runs_in_duckdb(
    s3: S3Env, s3_run: dict, local_run: Path, tmp_path: Path
) -> None:
    """DuckDB needs httpfs (a download) for s3://, so the script is run over a local mirror of
    the bucket with the URL prefix rewritten: this checks its SQL and that every view reads."""
    import duckdb

    pointer, _ = _pointer(s3)
    fs = objectstore.filesystem()
    fs.get(f"{BUCKET}/tokumei/", str(tmp_path / "m"), recursive=True)
    sql = fs.cat_file(f"{BUCKET}/tokumei/{pointer['catalog']}").decode()
    con = duckdb.connect()
    con.execute(sql.replace(f"{s3.out_url}/", f"{tmp_path / 'm'}/"))
    from tokumei.release.catalog import connect

    local = connect(local_run / "published")
    for view in s3_run["publish"]["catalog_views"]:
        query = f'select count(*) from "{view}"'
        assert con.execute(query).fetchone() == local.execute(query).fetchone(), view
    assert con.execute('select count(*) from "daily_active_users"').fetchone()[0] > 0


def test_reports_are_in_the_release(s3: S3Env, s3_run: dict) -> None:
    fs = objectstore.filesystem()
    reports = f"{BUCKET}/tokumei/releases/{s3_run['run_id']}/reports/date={DAY}"
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(reports)}
    assert {"manifest.json", "privacy_report.html", "items_notice.md", "data_docs"} <= names
    index = json.loads(fs.cat_file(f"{BUCKET}/tokumei/releases/{s3_run['run_id']}/_RELEASE.json"))
    assert index["objects"] and all(o["size"] > 0 for o in index["objects"].values())


def test_raw_data_stays_off_the_bucket_and_the_work_dir_is_gone(s3: S3Env, s3_run: dict) -> None:
    fs = objectstore.filesystem()
    out_keys = fs.find(f"{BUCKET}/tokumei")
    assert not [
        k for k in out_keys if any(d in k for d in ("/quarantine/", "/_work/", "/retained/"))
    ]
    # the local build root keeps the mirror of published/ that later runs read (period tables)
    assert (s3.local_out / "published" / "stats" / "page_views" / f"date={DAY}").is_dir()
    # quarantined rows stay on the local, access-restricted build root
    assert list((s3.local_out / "quarantine" / "events" / f"date={DAY}").glob("part-*.parquet"))
    assert not (s3.local_out / "_work" / s3_run["run_id"]).exists()
    assert not (s3.local_out / "_staging" / s3_run["run_id"]).exists()


def test_no_credential_in_logs_bucket_or_local_files(
    s3: S3Env, s3_run: dict, tmp_path: Path
) -> None:
    logs = s3.log.getvalue()
    assert "published release" in logs and "staged" in logs  # the capture works
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


def test_failed_upload_leaves_the_pointer_on_the_previous_release(
    s3: S3Env, s3_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, raw_before = _pointer(s3)
    real, calls = objectstore._upload_file, []

    def flaky(fs: Any, local: Path, key: str) -> dict[str, Any]:
        calls.append(key)
        if len(calls) > 3:
            raise ConnectionResetError("injected: connection lost during upload")
        return real(fs, local, key)

    monkeypatch.setattr(objectstore, "_upload_file", flaky)
    fs = objectstore.filesystem()
    releases_before = set(objectstore.iter_releases(s3.out_url, fs))
    with pytest.raises(TokumeiError, match="still names the previous release"):
        steps.run_all(s3.settings(), DAY)
    assert len(calls) == 4
    _, raw_after = _pointer(s3)
    assert raw_after == raw_before  # nothing visible changed
    # the partial release was removed; the readers still get the previous tables
    assert set(objectstore.iter_releases(s3.out_url, fs)) == releases_before
    name = "stats/daily_active_users"
    urls = objectstore.table_urls(s3.out_url, name)
    assert all(f"releases/{s3_run['run_id']}/" in u for u in urls)
    assert _read_s3(s3, urls).height > 0
    # the failure is recorded locally, with a reason free of credentials
    failed = list((s3.local_out / "reports" / f"date={DAY}" / "failed").glob("*.json"))
    assert failed and all(SECRET not in f.read_text() for f in failed)


def test_conditional_pointer_write_detects_a_concurrent_writer(s3: S3Env) -> None:
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


def test_a_second_date_joins_the_pointer(s3: S3Env, s3_run: dict, local_run: Path) -> None:
    """Run through the CLI (in-process) with s3:// URLs for --landing and --out."""
    from typer.testing import CliRunner

    from tokumei.cli import app

    args = ["run", "--landing", s3.landing_url, "--out", s3.out_url, "--date", DAY2]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "--db-url is required" in refused.output
    done = CliRunner().invoke(app, [*args, "--db-url", s3.db_url])
    assert done.exit_code == 0, done.output[-2000:]
    pointer, _ = _pointer(s3)
    r2 = {"run_id": pointer["dates"][DAY2]["run_id"]}
    assert f"{s3.out_url}/releases/{r2['run_id']}/published/stats/" in done.output.replace("\n", "")
    fs = objectstore.filesystem()
    manifest = json.loads(fs.cat_file(f"{BUCKET}/tokumei/{pointer['dates'][DAY2]['manifest']}"))
    assert manifest["steps"]["extract"]["events"]["files"] == 2
    assert manifest["sources"]["events"]["input"] >= 100  # printed: rounded to 100s
    assert set(pointer["dates"]) == {DAY, DAY2}
    assert pointer["dates"][DAY]["run_id"] == s3_run["run_id"]
    assert pointer["previous_release"] == f"releases/{s3_run['run_id']}"
    dau = objectstore.table_urls(s3.out_url, "stats/daily_active_users")
    assert len(dau) == 2
    assert {u.split("/releases/")[1].split("/")[0] for u in dau} == {
        s3_run["run_id"],
        r2["run_id"],
    }
    assert objectstore.unreferenced_releases(s3.out_url) == []
    local = pl.read_parquet(local_run / "published/stats/page_views" / f"date={DAY}")
    urls = [u for u in objectstore.table_urls(s3.out_url, "stats/page_views") if DAY in u]
    assert _read_s3(s3, urls).equals(local)


def test_a_rerun_replaces_its_date_as_a_whole(s3: S3Env) -> None:
    """Pointer merging without a pipeline run: a re-run of a date drops every table entry of
    that date (even a table the re-run did not produce) and leaves other dates alone."""
    old = objectstore._merged_pointer(
        {},
        "run-a",
        DAY,
        {
            f"releases/run-a/published/stats/t/date={DAY}/part-0.parquet": {},
            f"releases/run-a/published/anonymized/r/date={DAY}/part-0.parquet": {},
        },
    )
    old = objectstore._merged_pointer(
        old, "run-b", DAY2, {f"releases/run-b/published/stats/t/date={DAY2}/part-0.parquet": {}}
    )
    new = objectstore._merged_pointer(
        old, "run-c", DAY, {f"releases/run-c/published/stats/t/date={DAY}/part-0.parquet": {}}
    )
    assert new["tables"] == {
        "stats/t": {
            DAY: [f"releases/run-c/published/stats/t/date={DAY}/part-0.parquet"],
            DAY2: [f"releases/run-b/published/stats/t/date={DAY2}/part-0.parquet"],
        }
    }
    assert {d: e["run_id"] for d, e in new["dates"].items()} == {DAY: "run-c", DAY2: "run-b"}
    # run-a is no longer referenced: a retention candidate
    fs = objectstore.filesystem()
    url = f"s3://{BUCKET}/scratch-out"
    for run in ("run-a", "run-b", "run-c"):
        fs.pipe_file(f"{BUCKET}/scratch-out/releases/{run}/{objectstore.RELEASE_INDEX}", b"{}")
    fs.pipe_file(f"{BUCKET}/scratch-out/{objectstore.POINTER}", json.dumps(new).encode())
    assert objectstore.unreferenced_releases(url, fs) == ["run-a"]


def test_a_retried_publish_of_a_published_release_changes_nothing(s3: S3Env, s3_run: dict) -> None:
    from tokumei.infra.storage import RunPaths

    _, raw_before = _pointer(s3)
    settings = s3.settings()
    again = objectstore.publish_release(settings, RunPaths(settings, DAY, s3_run["run_id"]))
    assert again["objects"] == s3_run["publish"]["objects"]
    assert again["published"] == s3_run["publish"]["published"]
    assert _pointer(s3)[1] == raw_before


def _fake_release(s3: S3Env, root: Path, run_id: str, day: str) -> tuple[Settings, Any]:
    """A tiny staged release (one table, one manifest) under a scratch out URL: publishing
    without running the pipeline, for the pointer's failure and concurrency paths."""
    from tokumei.infra.storage import RunPaths

    root.mkdir(parents=True)
    settings = Settings(
        landing=root,
        db_url="sqlite://",
        out=root / "build",
        landing_url=None,
        out_url=f"s3://{BUCKET}/scratch-pub",
    ).resolved()
    paths = RunPaths(settings, day, run_id)
    pl.DataFrame({"n": [1, 2, 3]}).write_parquet(
        (p := paths.staged_table("stats", "t")).parent.mkdir(parents=True) or p
    )
    paths.staged_reports.mkdir(parents=True)
    (paths.staged_reports / "manifest.json").write_text(json.dumps({"run_id": run_id}))
    return settings, paths


def _scratch_pointer() -> dict[str, Any]:
    return objectstore.read_pointer(f"s3://{BUCKET}/scratch-pub")[0]


def test_a_failed_pointer_write_changes_nothing_visible(
    s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objectstore.publish_release(*_fake_release(s3, tmp_path / "a", "run-ok", DAY))
    before = _scratch_pointer()
    assert before["dates"][DAY]["run_id"] == "run-ok"

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise TimeoutError("injected: the pointer PUT timed out")

    monkeypatch.setattr(objectstore, "_write_pointer", broken)
    with pytest.raises(TokumeiError, match="moving the pointer failed"):
        objectstore.publish_release(*_fake_release(s3, tmp_path / "b", "run-bad", DAY))
    assert _scratch_pointer() == before
    assert "run-bad" not in list(objectstore.iter_releases(f"s3://{BUCKET}/scratch-pub"))


def test_a_pointer_write_that_took_effect_despite_an_error_counts_as_published(
    s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = objectstore._write_pointer

    def applied_then_timed_out(*args: Any, **kwargs: Any) -> dict[str, Any]:
        real(*args, **kwargs)
        raise TimeoutError("injected: the response to the pointer PUT was lost")

    monkeypatch.setattr(objectstore, "_write_pointer", applied_then_timed_out)
    result = objectstore.publish_release(*_fake_release(s3, tmp_path / "x", "run-late", DAY2))
    assert result["objects"] == 2
    assert _scratch_pointer()["dates"][DAY2]["run_id"] == "run-late"
    assert "run-late" in list(objectstore.iter_releases(f"s3://{BUCKET}/scratch-pub"))


def test_a_concurrent_pointer_update_is_merged_not_lost(
    s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{BUCKET}/scratch-pub"
    objectstore.publish_release(*_fake_release(s3, tmp_path / "a", "run-1", DAY))
    real_read, calls = objectstore.read_pointer, []

    def racing_read(u: str, fs: Any = None) -> tuple[dict[str, Any], str]:
        got = real_read(u, fs)
        calls.append(1)
        if len(calls) == 2:  # the read inside _write_pointer: another run publishes meanwhile
            other = objectstore._merged_pointer(got[0], "run-other", "2026-01-01", {})
            objectstore.filesystem().pipe_file(
                f"{BUCKET}/scratch-pub/{objectstore.POINTER}", json.dumps(other).encode()
            )
        return got

    monkeypatch.setattr(objectstore, "read_pointer", racing_read)
    objectstore.publish_release(*_fake_release(s3, tmp_path / "b", "run-2", DAY2))
    assert len(calls) >= 3  # the conditional PUT failed once and the pointer was re-read
    final = real_read(url)[0]
    assert {d: e["run_id"] for d, e in final["dates"].items()} == {
        "2026-01-01": "run-other",
        DAY: "run-1",
        DAY2: "run-2",
    }


def test_timings_are_reasonable(s3: S3Env, s3_run: dict) -> None:
    """Not a benchmark: a guard that staging and upload stay small next to the run itself."""
    staged = [line for line in s3.log.getvalue().splitlines() if "landing file(s)" in line]
    print(f"object storage timings: {json.dumps(s3.timings, sort_keys=True)}; {staged}")
    assert s3.timings["upload_s"] < 30
