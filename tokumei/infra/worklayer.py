"""A run's work layer and staging under an ``s3://`` output, for workers that share no disk.

With ``TOKUMEI_OUT=s3://…`` every Airflow task runs against a local scratch copy of the run's
folders under its own worker's ``TOKUMEI_LOCAL_OUT`` (``_work/<run_id>/``, ``_staging/<run_id>/``)
and syncs them with ``<out>/_work/<run_id>/`` and ``<out>/_staging/<run_id>/`` on the bucket:

* before the step, :func:`pull` downloads what the task needs (the layers it names, only the
  partition of a mapped task), skipping a file already held locally with the ETag the bucket
  has (recorded at the last download or upload, with the local size and mtime);
* after the step succeeded, :func:`push` uploads the files the step wrote or changed (size or
  mtime differ from the record) and deletes on the bucket the files the step removed; a failed
  step uploads nothing.

Several tasks of one run may share a worker (Celery concurrency): pull and push hold an
``flock`` on ``<local work>/.sync.lock``, and the record (``.sync.json``) is rewritten under it.

Privacy (docs/architecture.md §1.4): the work layer holds pseudonymized and generalized data
only; the raw landing copy ``extract`` stages (``_work/<run_id>/landing/``) is never uploaded
(each worker stages the files it reads itself, :func:`stage_landing_file`), nor is anything
outside the run's two folders (``quarantine/`` stays on the worker). :func:`remove_remote`
deletes both prefixes when the run ends. Uploads and downloads are verified
(``tokumei.infra.objectstore``: size, ETag stable during a copy, MD5 where the ETag is one).

Imports no domain module: the pipeline says which layers a task needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokumei.infra import objectstore
from tokumei.infra.objectstore import ObjectStoreError, _bare, _etag, _what

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from tokumei.infra.settings import Settings

log = logging.getLogger("tokumei.worklayer")

#: The run's folders, by their name in a task's needs: ``work/<layer>``, ``staging/<layer>``.
ROOTS = {"work": "_work", "staging": "_staging"}
#: Top-level folders of the local work dir that never leave the worker: the raw landing copy.
LOCAL_ONLY = ("landing",)
#: The record of what was synced, and the lock of concurrent tasks, in the local work dir.
RECORD = ".sync.json"
LOCK = ".sync.lock"
#: A file of partition p: a folder ``part-0003`` or a file ``part-0003.parquet``.
_PART = re.compile(r"^part-(\d{4})(?:\.parquet)?$")
#: A run id (``steps.new_run_id``): other runs' local scratch is swept only by this shape.
_RUN_ID = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{8}T\d{6}-[0-9a-f]{8}$")


@dataclass
class SyncStats:
    """What one pull or push moved (logged per task, returned for tests and benchmarks)."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0
    deleted: int = 0
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)


def enabled(settings: Settings) -> bool:
    """Whether the run's folders live under the storage URL (an ``s3://`` output)."""
    return bool(settings.out_url)


def _local_dirs(settings: Settings, run_id: str) -> dict[str, Path]:
    return {root: settings.out / sub / run_id for root, sub in ROOTS.items()}


def _remote_dirs(settings: Settings, run_id: str) -> dict[str, str]:
    assert settings.out_url
    base = _bare(settings.out_url)
    return {root: f"{base}/{sub}/{run_id}" for root, sub in ROOTS.items()}


def _skipped_name(rel: str) -> bool:
    """Files no other worker may see: the raw landing copy, in-progress writes, the sync files."""
    parts = rel.split("/")
    if parts[0] == "work" and len(parts) > 1 and parts[1] in LOCAL_ONLY:
        return True
    if parts[-1] in (RECORD, LOCK) or parts[-1].endswith((".tmp", ".part")):
        return True
    return any(p.startswith("_writing-") for p in parts)


def _wanted(rel: str, needs: Iterable[str], partition: int | None) -> bool:
    """Whether ``rel`` (``work/…`` or ``staging/…``) is under a need and of the partition."""
    if not any(rel == n or rel.startswith(n.rstrip("/") + "/") for n in needs):
        return False
    if partition is not None:
        for part in rel.split("/")[2:]:
            m = _PART.match(part)
            if m and int(m.group(1)) != partition:
                return False
    return True


@contextlib.contextmanager
def _locked(work: Path) -> Iterator[dict[str, Any]]:
    """The sync record under the worker's lock; written back (atomically) on exit."""
    work.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    work.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(work / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            record = json.loads((work / RECORD).read_text())
        except (OSError, ValueError):
            record = {}
        yield record
        tmp = work / (RECORD + ".tmp")
        tmp.write_text(json.dumps(record, sort_keys=True))
        os.replace(tmp, work / RECORD)
    finally:
        os.close(fd)


def _local_state(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _find_layer(fs: AbstractFileSystem, prefix: str, root: str) -> dict[str, dict[str, Any]]:
    """``{name: info}`` of every object under one of the run's prefixes (``root``: ``work`` or
    ``staging``), empty where there is none; a failed listing is an ``ObjectStoreError`` that
    names the layer, not the bucket's error text."""
    try:
        return fs.find(prefix, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise ObjectStoreError(f"listing the run's {root} layer failed ({_what(exc)})") from None


def _list_remote(fs: AbstractFileSystem, remote: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{rel: info}`` of every object under the run's two prefixes."""
    found: dict[str, dict[str, Any]] = {}
    for root, prefix in remote.items():
        for name, info in _find_layer(fs, prefix, root).items():
            if info.get("type") == "file" and name.startswith(prefix + "/"):
                found[f"{root}/{name.removeprefix(prefix + '/')}"] = info
    return found


def sweep_local(settings: Settings, run_id: str) -> int:
    """Remove this worker's scratch of other runs (work layers and staging); return how many.

    Only one run holds the output's lock (``tokumei.infra.runlock``), and the runs whose tasks
    this worker served before left their scratch here (``cleanup`` runs on one worker only).
    """
    gone: set[str] = set()
    for sub in ROOTS.values():
        parent = settings.out / sub
        if not parent.is_dir():
            continue
        for item in parent.iterdir():
            if item.name != run_id and _RUN_ID.match(item.name) and item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
                gone.add(item.name)
    return len(gone)


def pull(
    settings: Settings,
    run_id: str,
    needs: Iterable[str],
    partition: int | None = None,
    fs: AbstractFileSystem | None = None,
) -> SyncStats:
    """Download the run's files under ``needs`` (``work/dims``, ``staging``, …) that this
    worker does not hold in the bucket's version; of a partitioned layer only ``partition``."""
    stats = SyncStats()
    if not enabled(settings):
        return stats
    t0 = time.perf_counter()
    needs = tuple(needs)
    fs = fs or objectstore.filesystem()
    local, remote = _local_dirs(settings, run_id), _remote_dirs(settings, run_id)
    if swept := sweep_local(settings, run_id):
        log.info("removed this worker's scratch of %d earlier run(s)", swept)
    with _locked(local["work"]) as record:
        for rel, info in sorted(_list_remote(fs, remote).items()):
            if _skipped_name(rel) or not _wanted(rel, needs, partition):
                continue
            root, _, sub = rel.partition("/")
            dest = local[root] / sub
            held = record.get(rel)
            if (
                held
                and dest.is_file()
                and held["etag"] == _etag(info)
                and list(_local_state(dest)) == [held["size"], held["mtime_ns"]]
            ):
                stats.skipped += 1
                continue
            stats.bytes += objectstore.download_object(fs, info, dest, f"work file {rel}")
            stats.files += 1
            stats.names.append(rel)
            size, mtime = _local_state(dest)
            record[rel] = {"etag": _etag(info), "size": size, "mtime_ns": mtime}
    for folder in local.values():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stats.seconds = time.perf_counter() - t0
    return stats


def _local_files(local: dict[str, Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for root, folder in local.items():
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            rel = f"{root}/{path.relative_to(folder).as_posix()}"
            if path.is_file() and not path.is_symlink() and not _skipped_name(rel):
                files[rel] = path
    return files


def push(settings: Settings, run_id: str, fs: AbstractFileSystem | None = None) -> SyncStats:
    """Upload the run's local files that are new or changed since the last sync (verified), and
    delete on the bucket the files synced before that are gone here."""
    stats = SyncStats()
    if not enabled(settings):
        return stats
    t0 = time.perf_counter()
    fs = fs or objectstore.filesystem()
    local, remote = _local_dirs(settings, run_id), _remote_dirs(settings, run_id)
    with _locked(local["work"]) as record:
        files = _local_files(local)
        for rel, path in sorted(files.items()):
            size, mtime = _local_state(path)
            held = record.get(rel)
            if held and [held["size"], held["mtime_ns"]] == [size, mtime]:
                stats.skipped += 1
                continue
            root, _, sub = rel.partition("/")
            key = f"{remote[root]}/{sub}"
            try:
                objectstore._upload_file(fs, path, key)
            except ObjectStoreError:
                raise
            except Exception as exc:
                raise ObjectStoreError(f"uploading work file {rel} failed ({_what(exc)})") from None
            info = fs.info(key)
            record[rel] = {"etag": _etag(info), "size": size, "mtime_ns": mtime}
            stats.files += 1
            stats.bytes += size
            stats.names.append(rel)
        gone = sorted(rel for rel in record if rel not in files)
        if gone:
            names = [f"{remote[r.partition('/')[0]]}/{r.partition('/')[2]}" for r in gone]
            prefix = _bare(settings.out_url or "")
            objectstore.delete_objects(fs, names, prefix, "removed work files")
            for rel in gone:
                del record[rel]
            stats.deleted = len(gone)
    stats.seconds = time.perf_counter() - t0
    return stats


@contextlib.contextmanager
def synced(
    settings: Settings,
    run_id: str,
    task: str,
    needs: Iterable[str],
    partition: int | None = None,
    upload: bool = True,
) -> Iterator[None]:
    """Pull ``needs`` before the body, push what it wrote after it succeeded (an ``s3://``
    output only; with a local output nothing happens). ``upload=False``: a task whose writes
    no later task reads (``publish``)."""
    if not enabled(settings):
        yield
        return
    fs = objectstore.filesystem()
    down = pull(settings, run_id, needs, partition, fs)
    yield
    up = push(settings, run_id, fs) if upload else SyncStats()
    log.info(
        "%s: work layer synced with %s: pulled %d file(s), %d bytes, in %.2f s (%d held); "
        "pushed %d file(s), %d bytes, in %.2f s (%d removed)",
        task,
        settings.out_url,
        down.files,
        down.bytes,
        down.seconds,
        down.skipped,
        up.files,
        up.bytes,
        up.seconds,
        up.deleted,
    )


def stage_landing_file(
    settings: Settings, run_id: str, name: str, sha256: str | None = None
) -> Path:
    """The worker's own verified copy of one landing file (``<source>/date=<day>/<file>``, as
    ``extract`` listed it) under ``_work/<run_id>/landing/``, where ``extract`` stages them:
    raw data stays on the worker that reads it. ``sha256``: the producer's checksum from the
    marker (when the day was complete), so a file re-delivered since ``extract`` is refused."""
    assert settings.landing_url
    dest = settings.out / ROOTS["work"] / run_id / "landing" / name
    if dest.is_file() and (sha256 is None or _sha256(dest) == sha256):
        return dest
    fs = objectstore.filesystem()
    key = f"{_bare(settings.landing_url)}/{name}"
    try:
        info = fs.info(key)
    except Exception as exc:
        raise ObjectStoreError(f"reading landing file {name} failed ({_what(exc)})") from None
    objectstore.download_object(fs, info, dest, f"landing file {name}")
    if sha256 is not None and _sha256(dest) != sha256:
        dest.unlink(missing_ok=True)
        raise ObjectStoreError(
            f"landing file {name} changed since extract checked it against its marker"
        )
    return dest


def drop_landing(settings: Settings, run_id: str, name: str | None = None) -> None:
    """Remove this worker's raw landing copy (one file, or the whole folder ``extract``
    staged) once the task that read it is done: the run's scratch may stay on a worker until
    its next task of another run sweeps it, raw data must not."""
    folder = settings.out / ROOTS["work"] / run_id / "landing"
    if name is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        (folder / name).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(objectstore.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_remote(settings: Settings, run_id: str, fs: AbstractFileSystem | None = None) -> int:
    """Delete the run's work layer and staging on the bucket; return how many objects went."""
    if not enabled(settings):
        return 0
    fs = fs or objectstore.filesystem()
    removed = 0
    for root, prefix in _remote_dirs(settings, run_id).items():
        names = list(_find_layer(fs, prefix, root))
        if names:
            objectstore.delete_objects(fs, names, prefix, f"the run's {root} layer")
            removed += len(names)
    return removed


def remove_dead_remote(settings: Settings, run_id: str) -> int:
    """Remove the bucket's work layers and staging of runs other than ``run_id`` (called by
    ``start`` holding the output's lock: they are what killed runs left); return how many."""
    if not enabled(settings):
        return 0
    fs = objectstore.filesystem()
    base = _bare(settings.out_url or "")
    dead: set[str] = set()
    for sub in ROOTS.values():
        try:
            entries = fs.ls(f"{base}/{sub}", detail=False)
        except FileNotFoundError:
            continue
        except Exception as exc:
            raise ObjectStoreError(f"listing {sub}/ failed ({_what(exc)})") from None
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name != run_id:
                names = list(fs.find(f"{base}/{sub}/{name}"))
                if names:
                    objectstore.delete_objects(fs, names, f"{base}/{sub}", f"a dead run's {sub}")
                dead.add(name)
    return len(dead)


def has_remote_work(url: str, run_id: str, fs: AbstractFileSystem) -> bool:
    """Whether the bucket holds a work layer of ``run_id`` (the lock's liveness test)."""
    prefix = f"{_bare(url)}/{ROOTS['work']}/{run_id}"
    try:
        return bool(fs.ls(prefix, detail=False))
    except FileNotFoundError:
        return False
