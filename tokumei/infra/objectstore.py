"""Landing and releases on S3-compatible object storage (issue 6, docs/architecture.md §7).

``TOKUMEI_LANDING`` and ``TOKUMEI_OUT`` may be ``s3://bucket/prefix`` URLs. Everything between
reading the landing files and publishing stays exactly as on a local disk; only the two ends
move, because that is where object storage differs from a file system:

**Landing on S3 → staged.** The steps read landing files with local readers (gzip, JSON Lines,
CSV, Parquet through Polars/DuckDB) and must quarantine byte-level garbage (invalid UTF-8) exactly
as they do locally. Rather than teaching every reader about remote files, :func:`stage_landing`
copies *only* the files the run needs (each source's ``date=<day>/`` folder) into the run's own
work directory, streaming file by file in bounded chunks, verifying each file's size (and its
MD5 where the ETag is a plain MD5) and that the object did not change while it was copied. The
copy is raw data, so it lives where raw data may live (docs/architecture.md §1.4): ``<out>/_work/<run_id>/``,
deleted when the run ends, success or failure. The readers then run unchanged.

**Output on S3 → immutable releases and a pointer.** S3 has no atomic rename of a directory,
so the local ``os.replace`` publish (``tokumei.infra.storage.publish_tree``) has no equivalent. The run
builds and validates locally under a local output root (``TOKUMEI_LOCAL_OUT``: staging, work
layer, quarantine, failure records), then :func:`publish_release`:

1. uploads every object of the validated release (tables, manifest, privacy report, items
   notice, Data Docs, the catalog script) under a new prefix that nothing else ever writes to,
   ``<out>/releases/<run_id>/…``;
2. lists that prefix and checks every object's presence, size and checksum, then writes the
   release's own index ``releases/<run_id>/_RELEASE.json``;
3. writes the pointer ``<out>/published/CURRENT.json`` **last**, with one PUT (atomic on S3:
   a reader gets the old or the new object, never a mix). It is conditional on the pointer read
   just before (``If-Match`` its ETag, or ``If-None-Match: *`` for the first release), so two
   runs publishing at once cannot silently drop each other's dates: the loser re-reads and
   merges.

The pointer is a manifest of manifests: for every published date, the release that holds it and
that release's run manifest, and for every table the object keys of its current partitions. A
reader that goes through the pointer therefore sees either the previous complete state or the
new one. If anything fails before the pointer write, nothing visible changed; the partial release
is deleted (best effort, after checking the pointer does not name it) and is in any case
unreferenced. A retried publish of a release the pointer already names changes nothing. Old releases stay until retention
(:func:`unreferenced_releases` lists those the pointer no longer mentions). A re-run of a date
replaces that date in the pointer as a whole.

The catalog for S3 is ``catalog.sql`` (DuckDB views over the releases' ``s3://`` URLs), not a
``.duckdb`` file: a DuckDB view over ``s3://`` is bound when created, which needs the ``httpfs``
extension, which DuckDB would download at run time — and nothing may download at run time.

**Credentials** never pass through tokumei: s3fs/botocore take them from their standard chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance or
pod roles). Only the endpoint of a non-AWS server comes from ``TOKUMEI_S3_ENDPOINT_URL`` (or
botocore's own ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``). URLs carrying ``user:secret@`` are
refused, so settings, XCom, logs and manifests only ever hold bucket and prefix. Errors raised here
name the operation and the exception type, never a server message.

Quarantined raw rows and failure records stay on the local output root (access-restricted): the
bucket is the analysts' side and never receives raw data.

**After the pointer write the release is published**, whatever happens next: ``steps.publish``
does everything that may fail before calling :func:`publish_release`, and treats the local
mirror it updates afterwards as best effort (a warning, never a failed run). Later runs read that
mirror as "what readers have" (re-release and period checks, the retained layer), so it records
which release it holds per date (``<local out>/MIRROR.json``, written last), ``steps.start``
refuses to run while it differs from the pointer (:func:`check_mirror`), and
:func:`sync_mirror` (``tokumei mirror``) downloads the missing releases, verified.

**Landing maintenance.** Retention and rights erasure on an ``s3://`` landing keep their local
logic and use :func:`list_landing`, :func:`delete_objects`, :func:`download_object` and
:func:`replace_object` (a PUT conditional on the ETag read, verified like an upload).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokumei.infra.errors import TokumeiError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from tokumei.infra.settings import Settings
    from tokumei.infra.storage import RunPaths, ViewDoc

log = logging.getLogger("tokumei.objectstore")

#: URL schemes handled here (s3fs). ``s3a`` is accepted because Hadoop-era configs use it.
SCHEMES = ("s3", "s3a")
#: Endpoint of a non-AWS S3 server (MinIO, Ceph RGW, a test server).
ENDPOINT_ENV = "TOKUMEI_S3_ENDPOINT_URL"
#: Local build root when ``TOKUMEI_OUT`` is a URL (must be shared by all workers of a run).
LOCAL_OUT_ENV = "TOKUMEI_LOCAL_OUT"
#: Where ``Settings.landing`` points when the landing zone is remote: a path below a file, so it
#: can never exist or be created — code that still expects a local landing fails loudly.
REMOTE_LANDING_PLACEHOLDER = Path(os.devnull) / "tokumei-landing-is-an-object-store-url"

#: Pointer to the current state, written last by a publish.
POINTER = "published/CURRENT.json"
#: Immutable per-run releases live under this prefix.
RELEASES = "releases"
#: Index of one release, written after its objects are verified and before the pointer.
RELEASE_INDEX = "_RELEASE.json"
POINTER_FORMAT = "tokumei-release-pointer/1"

#: Streaming copy chunk (download) and multipart part size (upload): memory stays bounded.
CHUNK = 8 * 2**20
PART = 16 * 2**20
#: Largest object S3 accepts in one PUT; conditional replacements are single PUTs.
SINGLE_PUT_MAX = 5 * 2**30
#: How often a publish re-reads and re-merges the pointer when another run moved it meanwhile.
POINTER_ATTEMPTS = 5

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


class ObjectStoreError(TokumeiError):
    """An object-storage operation failed; the message names it, never credentials or data."""


# --------------------------------------------------------------------------------------------
# URLs, settings and the file system


def is_url(value: str | os.PathLike[str] | None) -> bool:
    """Whether ``value`` is an object-store URL (``s3://…``) rather than a local path."""
    return isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and "://" in value


def check_url(url: str) -> str:
    """``s3://bucket[/prefix]`` normalised (``s3a`` → ``s3``, no trailing slash), or an error.

    Credentials embedded in the URL are refused: the URL ends up in settings, XCom, logs and the
    pointer, where a secret must never be.
    """
    scheme, rest = url.split("://", 1)
    bucket = rest.split("/", 1)[0]
    if "@" in bucket or ":" in bucket:
        raise ObjectStoreError(
            f"{scheme}:// URLs must not carry credentials or ports; use the standard AWS "
            f"environment variables and {ENDPOINT_ENV} instead"
        )
    if not bucket:
        raise ObjectStoreError(f"object-store URL {url!r} names no bucket")
    return "s3://" + rest.strip("/")


def overlaps(a: str, b: str) -> bool:
    """Whether one object-store prefix contains the other (or both are the same): a landing
    zone must never overlap the output, or maintenance of one would edit the other."""
    a, b = check_url(a) + "/", check_url(b) + "/"
    return a.startswith(b) or b.startswith(a)


def locations(landing: str, out: str) -> tuple[Path, str | None, Path, str | None]:
    """``(landing, landing_url, out, out_url)`` for :class:`~tokumei.infra.settings.Settings`.

    A remote landing gets :data:`REMOTE_LANDING_PLACEHOLDER` (files are staged per run); a remote
    out gets a local build root: ``TOKUMEI_LOCAL_OUT``, else a folder under the temp dir named
    after the URL (fine on one machine; a Celery cluster must set it to the shared volume).
    """
    landing_url = check_url(landing) if is_url(landing) else None
    out_url = check_url(out) if is_url(out) else None
    local_landing = REMOTE_LANDING_PLACEHOLDER if landing_url else Path(landing)
    if out_url:
        digest = hashlib.sha256(out_url.encode()).hexdigest()[:12]
        default = Path(tempfile.gettempdir()) / "tokumei-out" / digest
        local_out = Path(os.environ.get(LOCAL_OUT_ENV) or default)
    else:
        local_out = Path(out)
    return local_landing, landing_url, local_out, out_url


def storage_options() -> dict[str, Any]:
    """s3fs options from the environment: the endpoint only; credentials stay with botocore."""
    endpoint = os.environ.get(ENDPOINT_ENV)
    return {"endpoint_url": endpoint} if endpoint else {}


def polars_storage_options() -> dict[str, str]:
    """The same endpoint for Polars/object_store (``pl.scan_parquet(..., storage_options=…)``).

    object_store reads ``AWS_ACCESS_KEY_ID`` etc. itself; plain ``http://`` endpoints (a local
    MinIO or test server) need ``aws_allow_http``.
    """
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        return {}
    opts = {"aws_endpoint_url": endpoint}
    if endpoint.startswith("http://"):
        opts["aws_allow_http"] = "true"
    return opts


def filesystem() -> AbstractFileSystem:
    """A fresh s3fs file system (no instance or listing cache: verification must see the server,
    and a Celery worker process must not reuse an event loop across forks)."""
    import s3fs

    return s3fs.S3FileSystem(
        skip_instance_cache=True, use_listings_cache=False, **storage_options()
    )


def _bare(url: str) -> str:
    """``bucket/prefix`` (what s3fs methods take and return) of ``s3://bucket/prefix``."""
    return url.split("://", 1)[1].strip("/")


def _what(exc: BaseException) -> str:
    """An exception's type only: server messages may quote request details."""
    return f"{type(exc).__module__}.{type(exc).__name__}"


def _etag(info: dict[str, Any]) -> str:
    return str(info.get("ETag") or info.get("etag") or "").strip('"').lower()


def _check_md5(info: dict[str, Any], md5: str, what: str) -> None:
    """Compare with the ETag where it is a plain MD5: single-part uploads without SSE-KMS (a
    multipart ETag has a ``-N`` suffix, a KMS one is not the MD5; there size alone is checked)."""
    etag = _etag(info)
    kms = str(info.get("ServerSideEncryption", "")).startswith("aws:kms")
    if _MD5_ETAG.match(etag) and not kms and etag != md5:
        raise ObjectStoreError(f"checksum mismatch for {what}")


# --------------------------------------------------------------------------------------------
# Landing: stage the day's files into the run's work directory


def stage_landing(
    settings: Settings,
    day: str,
    work: Path,
    *,
    sources: Sequence[str],
    suffixes: tuple[str, ...],
) -> Path:
    """The landing directory ``extract`` reads: ``settings.landing`` itself when it is local,
    else a verified copy of the day's remote landing files under ``work/landing``.

    Copied: ``<landing>/<source>/date=<day>/<file>`` for each landing source, files with a
    landing suffix only (the same selection as ``tokumei.ingest.sources.landing_files``). A retried
    extract starts the copy over.
    """
    if not settings.landing_url:
        return settings.landing
    import shutil

    target = work / "landing"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    fs = filesystem()
    root = _bare(settings.landing_url)
    t0, files, size = time.perf_counter(), 0, 0
    for source in sources:
        folder = f"{root}/{source}/date={day}"
        try:
            entries = fs.ls(folder, detail=True)
        except FileNotFoundError:
            continue  # no files for this source and date: extract writes an empty frame
        except Exception as exc:
            raise ObjectStoreError(f"listing the landing zone failed ({_what(exc)})") from None
        for info in sorted(entries, key=lambda e: e["name"]):
            name = info["name"].rsplit("/", 1)[-1]
            if info.get("type") != "file" or not name.endswith(suffixes):
                continue
            dest = target / source / f"date={day}" / name
            size += _download(fs, info, dest, f"landing file {source}/date={day}/{name}")
            files += 1
    log.info(
        "staged %d landing file(s), %d bytes, from %s in %.2f s",
        files,
        size,
        settings.landing_url,
        time.perf_counter() - t0,
    )
    return target


def landing_day_objects(url: str, rel: str, fs: AbstractFileSystem) -> dict[str, dict[str, Any]]:
    """The objects directly under ``<url>/<rel>/`` by name, from one listing (the landing
    sensor's view of a source-day, ``tokumei.ingest.landing.check_day_url``); empty when there
    are none. A failed listing raises: "could not list" must never read as "not there yet"."""
    folder = f"{_bare(check_url(url))}/{rel.strip('/')}"
    try:
        entries = fs.ls(folder, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise ObjectStoreError(f"listing the landing zone failed ({_what(exc)})") from None
    return {info["name"].rsplit("/", 1)[-1]: info for info in entries if info.get("type") == "file"}


def read_small_object(
    fs: AbstractFileSystem, info: dict[str, Any], what: str, *, limit: int
) -> bytes | None:
    """The bytes of a small object (a marker), or ``None`` when it is larger than ``limit``."""
    if int(info.get("size") or 0) > limit:
        return None
    try:
        return bytes(fs.cat_file(info["name"]))
    except Exception as exc:
        raise ObjectStoreError(f"reading {what} failed ({_what(exc)})") from None


def _download(fs: AbstractFileSystem, info: dict[str, Any], dest: Path, what: str) -> int:
    """Stream one object to ``dest`` (via ``.part`` + rename), verified; return its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    md5, got = hashlib.md5(usedforsecurity=False), 0
    try:
        with fs.open(info["name"], "rb", block_size=CHUNK) as src, open(tmp, "wb") as fh:
            while chunk := src.read(CHUNK):
                md5.update(chunk)
                got += len(chunk)
                fh.write(chunk)
        after = fs.info(info["name"])
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ObjectStoreError(f"copying {what} failed ({_what(exc)})") from None
    if got != info["size"] or after["size"] != info["size"] or _etag(after) != _etag(info):
        tmp.unlink(missing_ok=True)
        raise ObjectStoreError(f"{what} changed or was cut short while it was copied")
    try:
        _check_md5(info, md5.hexdigest(), what)
    except ObjectStoreError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return got


# --------------------------------------------------------------------------------------------
# Output: upload a release, verify it, move the pointer


def release_objects(paths: RunPaths) -> list[tuple[Path, str]]:
    """``(local file, key relative to the out URL)`` for every file of the staged release."""
    rel = f"{RELEASES}/{paths.run_id}"
    objects: list[tuple[Path, str]] = []
    staged_pub = paths.staging / "published"
    for part in sorted(staged_pub.glob("*/*/date=*")):
        for f in sorted(p for p in part.rglob("*") if p.is_file()):
            objects.append((f, f"{rel}/published/{f.relative_to(staged_pub).as_posix()}"))
    if paths.staged_reports.exists():
        reports = f"{rel}/reports/date={paths.day}"
        for f in sorted(p for p in paths.staged_reports.rglob("*") if p.is_file()):
            objects.append((f, f"{reports}/{f.relative_to(paths.staged_reports).as_posix()}"))
    return objects


def _upload_file(
    fs: AbstractFileSystem, local: Path, key: str, if_match: str | None = None
) -> dict[str, Any]:
    """Upload one file (multipart above :data:`PART` × 2, so memory stays bounded); verify it
    against the server's size and ETag; return ``{"size", "md5"}``.

    With ``if_match`` (an ETag) the upload is one conditional PUT that only replaces the object
    if it still has that ETag: s3fs passes ``If-Match`` to single-part uploads only, so such a
    file is sent in one request (up to :data:`SINGLE_PUT_MAX`; its bytes are then in memory
    once, as they already were for the rewrite that produced it).
    """
    md5 = hashlib.md5(usedforsecurity=False)
    with open(local, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
    size = local.stat().st_size
    if if_match is None:
        fs.put_file(str(local), key, chunksize=PART, max_concurrency=2)
    elif size >= SINGLE_PUT_MAX:
        raise ObjectStoreError("object too large for a conditional single-part replacement")
    else:
        fs.put_file(str(local), key, chunksize=SINGLE_PUT_MAX, IfMatch=f'"{if_match}"')
    info = fs.info(key)
    if info["size"] != size:
        raise ObjectStoreError(f"uploaded object {key} has the wrong size")
    _check_md5(info, md5.hexdigest(), f"uploaded object {key}")
    return {"size": size, "md5": md5.hexdigest()}


def read_pointer(url: str, fs: AbstractFileSystem | None = None) -> tuple[dict[str, Any], str]:
    """The current pointer and its ETag (``({}, "")`` before the first release)."""
    fs = fs or filesystem()
    key = f"{_bare(url)}/{POINTER}"
    try:
        info = fs.info(key)
        with fs.open(key, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return {}, ""
    return json.loads(data), _etag(info)


def _merged_pointer(
    old: dict[str, Any], run_id: str, day: str, objects: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The pointer after this release: this date's entries replaced as a whole."""
    rel = f"{RELEASES}/{run_id}"
    tables: dict[str, dict[str, list[str]]] = {
        name: {d: keys for d, keys in by_day.items() if d != day}
        for name, by_day in (old.get("tables") or {}).items()
    }
    for key in objects:
        m = re.match(rf"^{re.escape(rel)}/published/([^/]+/[^/]+)/date=([^/]+)/", key)
        if m:
            tables.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(key)
    tables = {n: dict(sorted(d.items())) for n, d in sorted(tables.items()) if d}
    dates = {d: e for d, e in (old.get("dates") or {}).items() if d != day}
    dates[day] = {
        "run_id": run_id,
        "release": rel,
        "manifest": f"{rel}/reports/date={day}/manifest.json",
    }
    return {
        "format": POINTER_FORMAT,
        "release": rel,
        "previous_release": old.get("release"),
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalog": f"{rel}/published/catalog.sql",
        "dates": dict(sorted(dates.items())),
        "tables": tables,
    }


def catalog_sql(url: str, pointer: dict[str, Any]) -> str:
    """DuckDB views (``CREATE OR REPLACE VIEW``) over the pointer's tables, as absolute URLs.

    Run it in DuckDB after ``INSTALL httpfs; LOAD httpfs;`` and a ``CREATE SECRET`` for the
    bucket. View names follow ``tokumei.infra.storage.build_catalog``.
    """
    lines = [
        f"-- tokumei catalog for {url}, release {pointer['release']} (generated; do not edit)",
        "-- needs: INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE s3, ...);",
    ]
    for name, by_day in pointer["tables"].items():
        kind, table = name.split("/", 1)
        view = table if kind == "stats" else f"{kind}_{table}"
        files = ", ".join(
            "'" + f"{url}/{key}".replace("'", "''") + "'"
            for keys in by_day.values()
            for key in keys
        )
        lines.append(
            f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM '
            f"read_parquet([{files}], hive_partitioning = false);"
        )
    return "\n".join(lines) + "\n"


def publish_release(settings: Settings, paths: RunPaths) -> dict[str, Any]:
    """Upload the staged, validated release to ``settings.out_url`` and move the pointer to it.

    Returns what ``steps.publish`` returns for a local publish (``published`` paths relative to
    the release, ``catalog_views``) plus the release and pointer URLs and upload figures.

    Safe to retry (an Airflow publish task may be): a release the pointer already names is not
    touched again, and leftovers of an earlier failed attempt, which nothing references, are
    removed before uploading. A release is only ever deleted after checking that the pointer
    does not name it.
    """
    assert settings.out_url, "publish_release is only for object-store outputs"
    url, run_id = settings.out_url, paths.run_id
    rel = f"{RELEASES}/{run_id}"
    fs = filesystem()
    base = _bare(url)
    t0 = time.perf_counter()
    pointer, _ = read_pointer(url, fs)
    if _names(pointer, run_id):  # an earlier attempt of this task got as far as the pointer
        index = json.loads(fs.cat_file(f"{base}/{rel}/{RELEASE_INDEX}"))
        return _result(url, rel, pointer, index["objects"], 0.0)
    objects = release_objects(paths)
    if not objects:
        raise ObjectStoreError("nothing was staged for the release; nothing was published")
    _remove_unreferenced(fs, url, run_id)
    uploaded: dict[str, dict[str, Any]] = {}
    pointer_attempted = False
    try:
        for local, key in objects:
            uploaded[key] = _upload_file(fs, local, f"{base}/{key}")
        _verify_release(fs, base, rel, uploaded)
        index = {"run_id": run_id, "day": paths.day, "objects": uploaded}
        fs.pipe_file(f"{base}/{rel}/{RELEASE_INDEX}", json.dumps(index, sort_keys=True).encode())
        upload_s = time.perf_counter() - t0
        pointer_attempted = True
        pointer = _write_pointer(fs, url, run_id, paths.day, uploaded)
    except BaseException as exc:
        if pointer_attempted and isinstance(exc, Exception):
            # A PUT can fail in the reporting only (a timeout after the server applied it): if
            # the pointer names this verified release, it is published.
            with contextlib.suppress(Exception):
                pointer, _ = read_pointer(url, fs)
                if _names(pointer, run_id):
                    log.warning(
                        "the pointer write of %s reported %s but took effect", rel, _what(exc)
                    )
                    return _result(url, rel, pointer, uploaded, time.perf_counter() - t0)
        # Otherwise nothing names this release: remove what was uploaded (best effort; only
        # after checking the pointer again).
        with contextlib.suppress(Exception):
            _remove_unreferenced(fs, url, run_id)
        if isinstance(exc, TokumeiError) or not isinstance(exc, Exception):
            raise
        where = "moving the pointer" if pointer_attempted else "uploading the release"
        raise ObjectStoreError(
            f"{where} failed after {len(uploaded)} of {len(objects)} object(s) ({_what(exc)}); "
            f"the pointer {url}/{POINTER} still names the previous release"
        ) from None
    result = _result(url, rel, pointer, uploaded, upload_s)
    log.info(
        "published release %s to %s: %d object(s), %d bytes, uploaded in %.2f s",
        rel,
        url,
        result["objects"],
        result["bytes"],
        upload_s,
    )
    return result


def _names(pointer: dict[str, Any], run_id: str) -> bool:
    """Whether the pointer references the release of ``run_id``."""
    return any(e.get("run_id") == run_id for e in (pointer.get("dates") or {}).values())


def _remove_unreferenced(fs: AbstractFileSystem, url: str, run_id: str) -> None:
    """Delete the release prefix of ``run_id`` if it exists and the pointer does not name it."""
    prefix = f"{_bare(url)}/{RELEASES}/{run_id}"
    if not fs.find(prefix):
        return
    pointer, _ = read_pointer(url, fs)
    if not _names(pointer, run_id):
        fs.rm(prefix, recursive=True)


def _result(
    url: str,
    rel: str,
    pointer: dict[str, Any],
    uploaded: dict[str, dict[str, Any]],
    upload_s: float,
) -> dict[str, Any]:
    published = sorted(
        {f"published/{m.group(1)}" for k in uploaded if (m := _partition_re(rel).match(k))}
    )
    return {
        "published": published,
        "catalog_views": [_view_name(name) for name in pointer["tables"]],
        "release": f"{url}/{rel}",
        "pointer": f"{url}/{POINTER}",
        "objects": len(uploaded),
        "bytes": sum(o["size"] for o in uploaded.values()),
        "upload_seconds": round(upload_s, 3),
    }


def _partition_re(rel: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(rel)}/published/([^/]+/[^/]+/date=[^/]+)/")


def _view_name(name: str) -> str:
    kind, table = name.split("/", 1)
    return table if kind == "stats" else f"{kind}_{table}"


def _verify_release(
    fs: AbstractFileSystem, base: str, rel: str, uploaded: dict[str, dict[str, Any]]
) -> None:
    """Every uploaded object is listed under the release prefix with its size, and nothing else
    is there (a stray object would mean two writers share a run id)."""
    listed = {
        name.removeprefix(base + "/"): info
        for name, info in fs.find(f"{base}/{rel}", detail=True).items()
    }
    missing = sorted(set(uploaded) - set(listed))
    extra = sorted(set(listed) - set(uploaded))
    wrong = sorted(k for k, o in uploaded.items() if k in listed and listed[k]["size"] != o["size"])
    if missing or extra or wrong:
        raise ObjectStoreError(
            f"release {rel} failed verification: {len(missing)} missing, {len(extra)} unexpected, "
            f"{len(wrong)} of the wrong size; the pointer was not changed"
        )


def _write_pointer(
    fs: AbstractFileSystem, url: str, run_id: str, day: str, uploaded: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Write the catalog script and then the pointer, conditionally on the pointer's ETag."""
    base, key = _bare(url), f"{_bare(url)}/{POINTER}"
    for _ in range(POINTER_ATTEMPTS):
        old, etag = read_pointer(url, fs)
        pointer = _merged_pointer(old, run_id, day, uploaded)
        fs.pipe_file(f"{base}/{pointer['catalog']}", catalog_sql(url, pointer).encode())
        cond = {"IfMatch": f'"{etag}"'} if etag else {"IfNoneMatch": "*"}
        body = json.dumps(pointer, indent=2, sort_keys=True).encode()
        try:
            fs.pipe_file(key, body, ContentType="application/json", **cond)
        except Exception as exc:
            if _precondition_failed(exc):
                log.info("the pointer moved while publishing %s; merging again", run_id)
                continue
            raise
        return pointer
    raise ObjectStoreError(
        f"the pointer kept moving while publishing {run_id} ({POINTER_ATTEMPTS} attempts)"
    )


def _precondition_failed(exc: BaseException) -> bool:
    """412 from a conditional PUT: another writer changed the pointer since we read it.

    s3fs translates botocore's ``ClientError`` (into ``FileExistsError`` for a 412, in the
    versions tested), so the whole exception chain is searched for the S3 error code.
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        response = getattr(seen, "response", None) or {}
        code = str((response.get("Error") or {}).get("Code", ""))
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code in ("PreconditionFailed", "412") or status == 412:
            return True
        if isinstance(seen, FileExistsError) and "pre-condition" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --------------------------------------------------------------------------------------------
# Readers and retention helpers


def table_urls(url: str, table: str, fs: AbstractFileSystem | None = None) -> list[str]:
    """Absolute URLs of the current partitions of ``table`` (``stats/<name>`` or
    ``anonymized/<name>``), through the pointer: what ``pl.scan_parquet`` should read."""
    url = check_url(url)
    pointer, _ = read_pointer(url, fs)
    by_day = (pointer.get("tables") or {}).get(table)
    if by_day is None:
        raise ObjectStoreError(f"no published table {table!r} under {url}")
    return [f"{url}/{key}" for keys in by_day.values() for key in keys]


def iter_releases(url: str, fs: AbstractFileSystem | None = None) -> Iterator[str]:
    """Run ids of every release prefix under ``url``."""
    fs = fs or filesystem()
    try:
        entries = fs.ls(f"{_bare(check_url(url))}/{RELEASES}", detail=False)
    except FileNotFoundError:
        return
    for name in sorted(entries):
        yield name.rstrip("/").rsplit("/", 1)[-1]


def unreferenced_releases(url: str, fs: AbstractFileSystem | None = None) -> list[str]:
    """Run ids of releases the pointer no longer mentions: candidates for retention."""
    fs = fs or filesystem()
    pointer, _ = read_pointer(check_url(url), fs)
    used = {e["run_id"] for e in (pointer.get("dates") or {}).values()}
    return [r for r in iter_releases(url, fs) if r not in used]


# --------------------------------------------------------------------------------------------
# Landing maintenance: retention and rights erasure on an s3:// landing
#
# Both jobs keep their local logic (``tokumei.jobs.retention``, ``tokumei.jobs.rights_erasure``); these
# helpers are the only S3 calls they make: one listing, verified deletes, verified downloads
# (:func:`_download`) and conditional, verified replacements.


def list_landing(url: str, fs: AbstractFileSystem) -> list[tuple[str, dict[str, Any]]]:
    """``(key relative to the landing root, object info)`` of every object under ``url``.

    One recursive listing (paginated by s3fs), sorted by key; folder markers are left out. A
    landing root that does not exist yet is empty, any other failure is an error (retention and
    erasure must never mistake "could not list" for "nothing there").
    """
    root = _bare(check_url(url))
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise ObjectStoreError(f"listing the landing zone failed ({_what(exc)})") from None
    objects = [
        (name.removeprefix(root + "/"), info)
        for name, info in found.items()
        if info.get("type") == "file" and name.startswith(root + "/") and not name.endswith("/")
    ]
    return sorted(objects, key=lambda item: item[0])


def delete_objects(fs: AbstractFileSystem, names: list[str], prefix: str, what: str) -> None:
    """Delete ``names`` (``bucket/key``) and check by listing ``prefix`` that they are gone.

    s3fs's bulk delete does not raise on per-key errors, hence the listing. Names with glob
    characters are deleted one by one: s3fs would expand them as patterns. Errors name ``what``
    (a partition, never an object name) and the exception type.
    """
    from glob import has_magic

    literal = [n for n in names if not has_magic(n)]
    try:
        if literal:
            fs.rm(literal)  # DeleteObjects, 1000 keys per request
        for name in names:
            if has_magic(name):
                fs.rm_file(name)
        left = set(fs.find(prefix)) & set(names)
    except Exception as exc:
        raise ObjectStoreError(f"deleting {what} failed ({_what(exc)})") from None
    if left:
        raise ObjectStoreError(f"deleting {what} left {len(left)} object(s) in place")


def download_object(fs: AbstractFileSystem, info: dict[str, Any], dest: Path, what: str) -> int:
    """Verified copy of one object to ``dest`` (see :func:`_download`); its size."""
    return _download(fs, info, dest, what)


def replace_object(
    fs: AbstractFileSystem, local: Path, info: dict[str, Any], what: str
) -> dict[str, Any]:
    """Overwrite the object ``info`` describes with ``local``, verified, only if it is unchanged.

    The PUT carries ``If-Match`` with the ETag the object had when it was listed (and copied,
    :func:`_download` checks that too), so a producer re-delivering the file meanwhile is never
    overwritten with an edited old copy: the replacement fails instead. A PUT is atomic, so a
    failed one leaves the original object as it was. After the PUT, size and MD5 are checked
    against the server (:func:`_upload_file`). Errors name ``what`` and the exception type.
    """
    etag = _etag(info)
    if not etag:
        raise ObjectStoreError(f"{what} has no ETag; it cannot be replaced safely")
    try:
        return _upload_file(fs, local, info["name"], if_match=etag)
    except ObjectStoreError:
        raise ObjectStoreError(f"replacing {what} failed verification") from None
    except Exception as exc:
        if _precondition_failed(exc):
            raise ObjectStoreError(f"{what} changed since it was read; not replaced") from None
        raise ObjectStoreError(f"replacing {what} failed ({_what(exc)})") from None


def warn_if_versioned(fs: AbstractFileSystem, url: str, job: str) -> bool:
    """Log a warning when the bucket keeps object versions (best effort; needs
    ``s3:GetBucketVersioning``): a delete or rewrite then leaves the previous version, with
    the data, in place until a lifecycle rule expires noncurrent versions."""
    bucket = _bare(check_url(url)).split("/", 1)[0]
    try:
        versioned = bool(fs.is_bucket_versioned(bucket))
    except Exception:
        return False
    if versioned:
        log.warning(
            "%s: bucket %s has versioning enabled; previous versions of deleted or rewritten "
            "landing objects remain until a NoncurrentVersionExpiration lifecycle rule removes "
            "them",
            job,
            bucket,
        )
    return versioned


# --------------------------------------------------------------------------------------------
# The local mirror: which release the local output root reflects
#
# Later runs read the local mirror (``<local out>/published/`` for re-release and period checks,
# ``retained/`` for period tables), not the bucket. If it lags behind the pointer (its update
# failed after the pointer moved, or another machine published), those checks would compare
# against the wrong baseline: a cell hidden in the current release could be published by a
# re-release checked against an older one. So the mirror records, per date, the run whose
# release it holds; ``steps.start`` refuses to run when that differs from the pointer, and
# :func:`sync_mirror` (``tokumei mirror``) brings the mirror back in line.

#: Record of the local mirror, at the local output root (not under ``published/``: no table).
MIRROR = "MIRROR.json"
MIRROR_FORMAT = "tokumei-local-mirror/1"
#: How often :func:`sync_mirror` catches up with a pointer that moves while it copies.
SYNC_ATTEMPTS = 3


def read_mirror(local_out: Path) -> dict[str, Any]:
    """The local mirror's record (``{}`` when it has none: a new root, or one from before it)."""
    path = Path(local_out) / MIRROR
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        # an unreadable record proves nothing about the mirror: treat it as absent (refused)
        return {}


@contextlib.contextmanager
def _mirror_lock(local_out: Path) -> Iterator[None]:
    """Serialise read-modify-write of the record between runs sharing one local root."""
    import fcntl

    local_out.mkdir(parents=True, exist_ok=True)
    with open(local_out / (MIRROR + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def record_mirror(local_out: Path, url: str, dates: dict[str, str]) -> None:
    """Record that the local mirror now holds the releases of ``dates`` (date → run id).

    Called as the *last* act of a successful local mirror update, so a record never claims
    more than is on disk (a crash in between leaves the old record: a refusal, never a false
    pass). Written atomically (temp file, fsync, rename).
    """
    local_out = Path(local_out)
    with _mirror_lock(local_out):
        old = read_mirror(local_out)
        known = dict(old.get("dates") or {}) if old.get("out_url") == url else {}
        known.update(dates)
        record = {
            "format": MIRROR_FORMAT,
            "out_url": url,
            "dates": dict(sorted(known.items())),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        tmp = local_out / (MIRROR + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(record, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, local_out / MIRROR)


def check_pointer_unchanged(url: str, since: dict[str, str], day: str, run_id: str) -> None:
    """Refuse to publish when the pointer moved since the run started (``since``: what
    :func:`check_mirror` returned then), other than to this run's own release (a retry).

    The run's checks compared against the mirror as it was at the start; a release published
    meanwhile (another machine, a concurrent run) was not part of that baseline.
    """
    try:
        now = _pointer_dates(read_pointer(url)[0])
    except Exception as exc:
        raise ObjectStoreError(
            f"reading the pointer {url}/{POINTER} failed ({_what(exc)}); nothing was published"
        ) from None
    if now in (since, {**since, day: run_id}):
        return
    moved = sorted(d for d in set(now) | set(since) if now.get(d) != since.get(d))
    raise ObjectStoreError(
        f"the pointer {url}/{POINTER} moved while this run was computing ({len(moved)} date(s), "
        f"first: {moved[0]}): its checks used an older baseline; nothing was published. Retry "
        "the run (after `tokumei mirror` if it is then refused)"
    )


def _pointer_dates(pointer: dict[str, Any]) -> dict[str, str]:
    """``{date: run id}`` of a pointer: what a local mirror must hold."""
    return {d: str(e.get("run_id")) for d, e in (pointer.get("dates") or {}).items()}


def mirror_differences(
    local_out: Path, url: str, pointer: dict[str, Any]
) -> dict[str, tuple[str | None, str | None]]:
    """``{date: (run id the pointer names, run id the mirror holds)}`` where they differ.

    A record made for another output URL counts as holding nothing.
    """
    record = read_mirror(local_out)
    held = dict(record.get("dates") or {}) if record.get("out_url") == url else {}
    named = _pointer_dates(pointer)
    return {
        d: (named.get(d), held.get(d))
        for d in sorted(set(named) | set(held))
        if named.get(d) != held.get(d)
    }


def check_mirror(
    url: str, local_out: Path, fs: AbstractFileSystem | None = None
) -> dict[str, str]:
    """Refuse to run when the local mirror does not hold the releases the pointer names;
    return the pointer's ``{date: run id}`` (what the run's checks will compare against).

    Fail closed: the re-release and period checks of a run read the mirror as "what readers
    have"; a stale one could let a run publish a value that the current release hides.
    """
    try:
        pointer, _ = read_pointer(url, fs)
    except Exception as exc:
        raise ObjectStoreError(
            f"reading the pointer {url}/{POINTER} failed ({_what(exc)}); nothing was run"
        ) from None
    diff = mirror_differences(local_out, url, pointer)
    if not diff:
        return _pointer_dates(pointer)
    day, (named, held) = next(iter(diff.items()))
    raise ObjectStoreError(
        f"the local mirror {local_out} is stale: {len(diff)} date(s) differ from the pointer "
        f"{url}/{POINTER} (first: {day}, pointer {named or 'none'}, mirror {held or 'none'}); "
        f"nothing was run. Run `tokumei mirror --out {url}` with the same {LOCAL_OUT_ENV}, "
        "then retry"
    )


def sync_mirror(
    url: str, local_out: Path, docs: Mapping[str, ViewDoc] | None = None
) -> dict[str, Any]:
    """Bring the local mirror in line with the pointer; return what was done (no data).

    For every date whose release the mirror does not hold, the objects of the release the
    pointer names are downloaded (verified: size and ETag stable during the copy, MD5 against
    the ETag and against the release index) into a private staging folder and swapped into
    ``<local out>/published/`` and ``reports/`` with the same atomic, rolled-back publish as a
    run (``tokumei.infra.storage.publish_tree``); then the local catalog is rebuilt and, last, the
    record is updated. Safe to repeat; a pointer moving meanwhile is caught up with.

    The retained pseudonymous layer is never on the bucket, so it cannot be copied: a retained
    day that may belong to another run of a synced date is removed (weekly and monthly tables
    then skip that period, fail closed, until the date is rerun here). A day the mirror never
    recorded is left alone: it is absent after a failed first update, and a root from before
    this record existed holds the retained days of the runs that built it.
    """
    import shutil

    from tokumei.infra.settings import Settings
    from tokumei.infra.storage import build_catalog

    url, local_out = check_url(url), Path(local_out).resolve()
    record = read_mirror(local_out)
    if record.get("out_url") not in (None, url):
        raise ObjectStoreError(
            f"the local mirror {local_out} belongs to another output URL; set {LOCAL_OUT_ENV} "
            f"to this output's own folder"
        )
    settings = Settings(landing=local_out, db_url="sqlite://", out=local_out, out_url=url)
    fs = filesystem()
    synced: dict[str, str] = {}
    removed_retained: list[str] = []
    for _ in range(SYNC_ATTEMPTS):
        pointer, _ = read_pointer(url, fs)
        diff = mirror_differences(local_out, url, pointer)
        if not diff:
            break
        if extra := sorted(d for d, (named, _held) in diff.items() if named is None):
            raise ObjectStoreError(
                f"the local mirror {local_out} holds {len(extra)} date(s) the pointer does not "
                f"name (first: {extra[0]}; was {url} reset?); move its published/, reports/ "
                f"and {MIRROR} away and run `tokumei mirror` again"
            )
        done: dict[str, str] = {}
        for day, (run_id, held) in diff.items():
            assert run_id is not None
            _sync_date(fs, settings, day, run_id)
            done[day] = run_id
            if held is None:
                continue  # no other run of the day is recorded here: its retained day is absent
            for part in sorted((local_out / "retained").glob(f"*/date={day}")):
                shutil.rmtree(part)
                removed_retained.append(f"retained/{part.parent.name}/date={day}")
        build_catalog(local_out / "published", docs)
        record_mirror(local_out, url, done)  # last: the record never claims more than is there
        synced.update(done)
    else:
        pointer, _ = read_pointer(url, fs)
        if mirror_differences(local_out, url, pointer):
            raise ObjectStoreError(
                f"the pointer {url}/{POINTER} kept moving while the local mirror was synced "
                f"({SYNC_ATTEMPTS} attempts); run `tokumei mirror` again"
            )
    result = {
        "out_url": url,
        "local_out": str(local_out),
        "synced_dates": dict(sorted(synced.items())),
        "retained_days_removed": removed_retained,
        "release": pointer.get("release"),
    }
    log.info(
        "local mirror %s synced with %s: %d date(s), %d retained day(s) removed",
        local_out,
        url,
        len(synced),
        len(removed_retained),
    )
    return result


def _sync_date(fs: AbstractFileSystem, settings: Settings, day: str, run_id: str) -> None:
    """Download the release of ``run_id`` (which holds ``day``) and publish it locally."""
    import uuid

    from tokumei.infra.storage import RunPaths, publish_tree, remove_run_dirs

    assert settings.out_url
    base, rel = _bare(settings.out_url), f"{RELEASES}/{run_id}"
    try:
        index = json.loads(fs.cat_file(f"{base}/{rel}/{RELEASE_INDEX}"))
    except Exception as exc:
        raise ObjectStoreError(
            f"reading the index of release {rel} failed ({_what(exc)})"
        ) from None
    if index.get("run_id") != run_id or index.get("day") != day:
        raise ObjectStoreError(f"release {rel} does not hold {day} as the pointer says")
    paths = RunPaths(settings, day, f"mirror-{uuid.uuid4().hex[:12]}")
    published_re = re.compile(rf"^{re.escape(rel)}/published/([^/]+/[^/]+/date={day}/.+)$")
    reports_prefix = f"{rel}/reports/date={day}/"
    try:
        for n, (key, expected) in enumerate(sorted(index["objects"].items())):
            if m := published_re.match(key):
                dest = paths.staging / "published" / m.group(1)
            elif key.startswith(reports_prefix):
                dest = paths.staged_reports / key.removeprefix(reports_prefix)
            else:
                continue
            what = f"object {n + 1} of release {rel}"
            try:
                info = fs.info(f"{base}/{key}")
            except Exception as exc:
                raise ObjectStoreError(f"reading {what} failed ({_what(exc)})") from None
            if info["size"] != expected["size"]:
                raise ObjectStoreError(f"{what} does not match the release index (size)")
            _download(fs, info, dest, what)
            md5 = hashlib.md5(usedforsecurity=False)
            with open(dest, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    md5.update(chunk)
            if md5.hexdigest() != expected["md5"]:
                raise ObjectStoreError(f"{what} does not match the release index (MD5)")
        publish_tree(paths)
    finally:
        remove_run_dirs(paths)
