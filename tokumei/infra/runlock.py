"""One run at a time per output: ``<out>/_run.lock`` (docs/architecture.md §5).

Two runs writing one output interleave their publishes and the last writer wins; the lock makes
the second run refuse to start, naming the run that holds it. The lock names a *run* (the
tokumei run id), not a process: under Airflow one run spans many task processes, possibly on
several workers, so ``start`` takes the lock and ``cleanup`` (a task of its own, run whatever
happened upstream) releases it, each in a different process.

Whether the holder still runs (a lock whose holder died is taken over, and the takeover is
reported):

- the process that took the lock (host, pid and the pid's start time, so a reused pid does not
  count) is alive on this host: alive;
- an Airflow run's lock outlives its ``start`` process: the run is alive while its work layer
  ``_work/<run_id>`` exists (``start`` creates it, ``cleanup`` removes it before releasing) or
  while the lock is younger than ``GRACE`` (the moment between taking the lock and creating it);
- a holder on another host cannot be checked: alive;
- any lock older than ``TOKUMEI_LOCK_TTL_HOURS`` (default 24: a daily run never takes that
  long) is stale, so that a run abandoned without its cleanup does not block forever.

Taking, checking and replacing the lock happen under ``flock`` on ``<out>/_run.lock.guard``,
so two starts racing for a stale lock cannot both win.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tokumei.infra.errors import TokumeiError

log = logging.getLogger("tokumei")

P = ParamSpec("P")
R = TypeVar("R")

LOCK = "_run.lock"
GUARD = "_run.lock.guard"
#: An Airflow run's lock without its work layer yet is still being set up by ``start``.
GRACE = timedelta(minutes=5)


class RunLocked(TokumeiError):
    """Another run holds the output's lock: this one refuses to start."""


def _ttl() -> timedelta:
    return timedelta(hours=float(os.environ.get("TOKUMEI_LOCK_TTL_HOURS", "24")))


def _pid_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or
    None when the process does not exist or /proc is not there (then only the pid counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    if fields[0] == "Z":  # a zombie has finished
        return None
    return fields[19]


def _pid_alive(pid: int, start: str | None) -> bool:
    if Path("/proc").is_dir():
        now = _pid_start(pid)
        return now is not None and (not start or not now or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(holder: dict[str, Any]) -> str:
    """Who holds the lock, in words: run id, host, pid, Airflow run and start time (no data)."""
    airflow = f", Airflow run {holder['airflow_run']}" if holder.get("airflow_run") else ""
    return (
        f"run {holder.get('run_id')} on host {holder.get('host')}, pid {holder.get('pid')}"
        f"{airflow}, started {holder.get('started_at')}"
    )


def _holder_gone(
    holder: dict[str, Any], now: datetime | None, lock: str, has_work: Callable[[str], bool]
) -> str | None:
    """Why the holder is gone, or None while it may still run: the rules of the module
    docstring, for the local lock file and the bucket's lock object alike. ``lock`` names the
    lock in the sentence; ``has_work(run_id)`` says whether the run's work layer exists (asked
    only for an Airflow run past ``GRACE``, as it may cost a bucket listing)."""
    now = now or datetime.now(UTC)
    try:
        started = datetime.fromisoformat(holder["started_at"])
    except (KeyError, TypeError, ValueError):
        return f"the {lock} is unreadable"
    age = now - started
    if age > _ttl():
        return f"it started {age.total_seconds() / 3600:.1f} h ago, over the lock's time to live"
    same_host = holder.get("host") == socket.gethostname()
    if same_host and _pid_alive(int(holder.get("pid", 0)), holder.get("pid_start")):
        return None
    if holder.get("airflow_run") is not None or holder.get("mode") == "airflow":
        if age < GRACE or has_work(str(holder.get("run_id"))):
            return None
        return "its work layer is gone (the Airflow run ended without releasing the lock)"
    if not same_host:
        return None
    return "its process is gone"


def stale_reason(holder: dict[str, Any], out: Path, now: datetime | None = None) -> str | None:
    """Why the holder is gone (a value-free sentence), or None while it may still run."""
    return _holder_gone(holder, now, "lock file", lambda run_id: (out / "_work" / run_id).is_dir())


@contextlib.contextmanager
def _guarded(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / GUARD, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def read(out: Path) -> dict[str, Any] | None:
    """The holder recorded in the lock, or None when the output is not locked."""
    try:
        return json.loads((out / LOCK).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _airflow_run() -> str | None:
    """The Airflow run id of the task taking the lock, for the operator's message."""
    if os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"):
        return os.environ["AIRFLOW_CTX_DAG_RUN_ID"]
    try:
        from airflow.sdk import get_current_context

        return str(get_current_context()["run_id"])
    except Exception:  # noqa: BLE001 - outside a task, or another Airflow version: not needed
        return None


def _holder(run_id: str, in_airflow: bool) -> dict[str, Any]:
    """What a lock records of its holder (ids and times, no data)."""
    me = os.getpid()
    return {
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": me,
        "pid_start": _pid_start(me),
        "mode": "airflow" if in_airflow else "process",
        "airflow_run": _airflow_run() if in_airflow else None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def acquire(out: Path, run_id: str, in_airflow: bool = False) -> str | None:
    """Take the output's lock for ``run_id``; :class:`RunLocked` when a live run holds it.

    Returns a sentence when a stale lock was taken over (the caller reports it), else None.
    Taking it again for the same run id (a retried ``start``) is allowed.
    """
    me = os.getpid()
    holder = _holder(run_id, in_airflow)
    note = None
    with _guarded(out):
        current = read(out)
        if current is not None and current.get("run_id") != run_id:
            why = stale_reason(current, out)
            if why is None:
                raise RunLocked(
                    f"another run is writing to {out}: {describe(current)}; this run did not "
                    f"start (if that run is gone for good, delete {out / LOCK})"
                )
            note = f"took over the lock of {describe(current)}: {why}"
        tmp = out / f"{LOCK}.{me}.tmp"
        tmp.write_text(json.dumps(holder, sort_keys=True))
        os.replace(tmp, out / LOCK)
    if note:
        log.warning(note)
    return note


def release(out: Path, run_id: str) -> bool:
    """Remove the lock if ``run_id`` holds it (a refused run must not free the holder's)."""
    if not (out / LOCK).exists():
        return False
    with _guarded(out):
        current = read(out)
        if current is None or current.get("run_id") != run_id:
            return False
        (out / LOCK).unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def held(out: Path, job: str, url: str | None = None) -> Iterator[str]:
    """The output's lock for a job outside the daily run (retention, rights erasure).

    Those jobs delete or rewrite what a run reads and publishes (the retained layer, published
    partitions, the landing), so they wait their turn like a second run: refused with the
    holder named while a run holds the lock, and a run refused while they hold it. Yields the
    job's run id. ``url``: an ``s3://`` output, whose runs hold the bucket's lock
    (:func:`acquire_url`): the job holds that one too.
    """
    run_id = f"{job}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    acquire(out, run_id)
    try:
        if url:
            acquire_url(url, run_id)
        try:
            yield run_id
        finally:
            if url:
                release_url(url, run_id)
    finally:
        release(out, run_id)


def job_lock(job: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a job function (with ``out`` and ``dry_run`` parameters, and maybe ``out_url``)
    under :func:`held`; a dry run changes nothing and takes no lock. One wrapper for every job
    instead of a locked copy of each job's signature."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            if bound.arguments["dry_run"]:
                return fn(*args, **kwargs)
            url = bound.arguments.get("out_url")
            with held(Path(bound.arguments["out"]), job, url):
                return fn(*args, **kwargs)

        return locked

    return decorate


# --------------------------------------------------------------------------------------------
# The lock of an s3:// output: ``<out>/_run.lock`` on the bucket
#
# Workers of an Airflow run share no disk (tokumei.infra.worklayer), so the lock of an ``s3://``
# output is an object: taken with a conditional PUT (``If-None-Match: *``, atomic on S3: of two
# starts one gets 412), replaced only conditionally on the ETag read (``If-Match``), so two
# starts taking over a stale lock cannot both win. Liveness as for the local lock, with the
# bucket's work layer ``_work/<run_id>/`` in place of the local one; a process on another host
# is alive until the time to live.


def _lock_key(url: str) -> str:
    from tokumei.infra.objectstore import _bare, check_url

    return f"{_bare(check_url(url))}/{LOCK}"


def read_url(url: str, fs: Any = None) -> tuple[dict[str, Any] | None, str]:
    """The holder recorded in the output's lock object and its ETag; ``(None, "")`` when
    the output is not locked (``{}`` for an unreadable lock)."""
    from tokumei.infra.objectstore import ObjectStoreError, _etag, _what, filesystem

    fs = fs or filesystem()
    key = _lock_key(url)
    try:
        info = fs.info(key)
        data = fs.cat_file(key)
    except FileNotFoundError:
        return None, ""
    except Exception as exc:
        raise ObjectStoreError(f"reading the run lock failed ({_what(exc)})") from None
    try:
        return json.loads(data), _etag(info)
    except ValueError:
        return {}, _etag(info)


def stale_reason_url(
    holder: dict[str, Any], url: str, fs: Any, now: datetime | None = None
) -> str | None:
    """Why the holder of an ``s3://`` output's lock is gone, or None while it may still run."""
    from tokumei.infra.worklayer import has_remote_work

    return _holder_gone(holder, now, "lock object", lambda run_id: has_remote_work(url, run_id, fs))


#: How often a start retries when the lock object changed between its reads and its PUT.
URL_ATTEMPTS = 3


def acquire_url(url: str, run_id: str, in_airflow: bool = False) -> str | None:
    """Take the lock of the ``s3://`` output ``url`` for ``run_id``, as :func:`acquire` does
    for a folder: :class:`RunLocked` naming the holder while a live run holds it; a sentence
    when a stale lock was taken over; the same run id may take it again."""
    from tokumei.infra.objectstore import ObjectStoreError, _precondition_failed, _what, filesystem

    fs = filesystem()
    key = _lock_key(url)
    body = json.dumps(_holder(run_id, in_airflow), sort_keys=True).encode()
    note = None
    for _ in range(URL_ATTEMPTS):
        current, etag = read_url(url, fs)
        if current is None:
            cond = {"IfNoneMatch": "*"}
        else:
            if current.get("run_id") != run_id:
                why = stale_reason_url(current, url, fs)
                if why is None:
                    raise RunLocked(
                        f"another run is writing to {url}: {describe(current)}; this run did "
                        f"not start (if that run is gone for good, delete {url}/{LOCK})"
                    )
                note = f"took over the lock of {describe(current)}: {why}"
            cond = {"IfMatch": f'"{etag}"'}
        try:
            fs.pipe_file(key, body, ContentType="application/json", **cond)
        except Exception as exc:
            if _precondition_failed(exc):
                continue  # another start wrote the lock meanwhile: look again
            raise ObjectStoreError(f"writing the run lock failed ({_what(exc)})") from None
        if note:
            log.warning(note)
        return note
    current, _ = read_url(url, fs)
    raise RunLocked(
        f"another run is taking the lock of {url} at the same time"
        + (f": {describe(current)}" if current else "")
        + "; this run did not start"
    )


def release_url(url: str, run_id: str) -> bool:
    """Remove the lock object if ``run_id`` holds it (a refused run must not free the holder's).

    The check and the delete are two requests (S3 has no conditional delete everywhere): the
    lock is released only by its own run's cleanup, after its work layer is gone.
    """
    from tokumei.infra.objectstore import ObjectStoreError, _what, filesystem

    fs = filesystem()
    current, _ = read_url(url, fs)
    if current is None or current.get("run_id") != run_id:
        return False
    try:
        fs.rm_file(_lock_key(url))
    except FileNotFoundError:
        return False
    except Exception as exc:
        raise ObjectStoreError(f"removing the run lock failed ({_what(exc)})") from None
    return True
