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

**Output on S3 → Delta tables, then reports.** The run builds and validates under a local
build root (``TOKUMEI_LOCAL_OUT``: staging, work layer, quarantine, failure records), then
``steps.publish`` commits the tables to the Delta tables under ``<out>/published/delta/`` and
their release marker (``tokumei.infra.tableformat``; the marker's commit is the readers'
commit point, docs/adr/0008-published-tables-delta-lake.md) and only then uploads the run's
reports to ``<out>/reports/date=<day>/`` (:func:`upload_reports`, manifest last). Later runs
read what readers have straight from the bucket (the Delta tables at the marker's release,
:func:`read_report` for earlier manifests), so there is no local mirror to keep in line.

**Credentials** never pass through tokumei: s3fs/botocore take them from their standard chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance or
pod roles). Only the endpoint of a non-AWS server comes from ``TOKUMEI_S3_ENDPOINT_URL`` (or
botocore's own ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``). URLs carrying ``user:secret@`` are
refused, so settings, XCom, logs and manifests only ever hold bucket and prefix. Errors raised here
name the operation and the exception type, never a server message.

Quarantined raw rows and failure records stay on the local output root (access-restricted): the
bucket never receives raw data. The pseudonymous layers live under the output URL
(``_work/``, ``_staging/``: ``tokumei.infra.worklayer``; ``retained/``: ``steps.publish``),
restricted to the pipeline's role (docs/deploy.md, Object storage).

**Landing maintenance.** Retention and rights erasure on an ``s3://`` landing keep their local
logic and use :func:`list_landing`, :func:`delete_objects`, :func:`download_object` and
:func:`replace_object` (a PUT conditional on the ETag read, verified like an upload).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokumei.infra.errors import TokumeiError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from tokumei.infra.settings import Settings

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

#: Streaming copy chunk (download) and multipart part size (upload): memory stays bounded.
CHUNK = 8 * 2**20
PART = 16 * 2**20
#: Largest object S3 accepts in one PUT; conditional replacements are single PUTs.
SINGLE_PUT_MAX = 5 * 2**30

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
# Output: the run's reports next to the published Delta tables


def upload_folder(
    local: Path, prefix_url: str, last: str | None = None, prune: bool = True
) -> dict[str, Any]:
    """Upload every file under ``local`` to ``prefix_url``, verified (size, MD5), the file
    named ``last`` last; then (``prune``) remove objects under the prefix that ``local`` does
    not have (an earlier run's). Returns object and byte counts. Errors name the prefix, never
    a value.
    """
    fs = filesystem()
    prefix = _bare(check_url(prefix_url))
    files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else []
    files.sort(key=lambda p: p.name == last)
    uploaded: dict[str, dict[str, Any]] = {}
    try:
        for path in files:
            key = f"{prefix}/{path.relative_to(local).as_posix()}"
            uploaded[key] = _upload_file(fs, path, key)
        stale = [name for name in fs.find(prefix) if name not in uploaded] if prune else []
        if stale:  # verified, and names with glob characters deleted as names
            delete_objects(fs, stale, prefix, f"earlier objects under {prefix_url}")
    except TokumeiError:
        raise
    except Exception as exc:
        raise ObjectStoreError(
            f"uploading {prefix_url} failed after {len(uploaded)} of {len(files)} "
            f"object(s) ({_what(exc)})"
        ) from None
    return {"objects": len(uploaded), "bytes": sum(o["size"] for o in uploaded.values())}


def download_folder(prefix_url: str, local: Path, keep: Callable[[str], bool]) -> int:
    """Verified copies of the objects under ``prefix_url`` whose relative key ``keep``
    accepts, into ``local``; returns how many. A prefix that does not exist yet is empty."""
    fs = filesystem()
    prefix = _bare(check_url(prefix_url))
    try:
        found = fs.find(prefix, detail=True)
    except FileNotFoundError:
        return 0
    n = 0
    for name, info in sorted(found.items()):
        rel = name.removeprefix(prefix + "/")
        if keep(rel):
            _download(fs, info, local / rel, f"an object under {prefix_url}")
            n += 1
    return n


def upload_reports(url: str, staged: Path, day: str) -> dict[str, Any]:
    """Upload a release's reports (manifest, privacy report, items notice, Data Docs) to
    ``<url>/reports/date=<day>/``, ``manifest.json`` last (:func:`upload_folder`).

    Called after the Delta release marker committed (the readers' commit point for the
    tables): the manifest names the run, so a reader that finds it finds that run's reports.
    """
    try:
        result = upload_folder(staged, f"{url.rstrip('/')}/reports/date={day}", "manifest.json")
    except ObjectStoreError as exc:
        raise ObjectStoreError(f"uploading the reports of {day} failed: {exc}") from None
    log.info("uploaded %d report object(s) of %s to %s", result["objects"], day, url)
    return result


def read_report(url: str, day: str, name: str) -> bytes | None:
    """One report object of a date's release (``manifest.json``, …), or None."""
    try:
        return filesystem().cat_file(f"{_bare(check_url(url))}/reports/date={day}/{name}")
    except FileNotFoundError:
        return None


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
