"""Rights erasure: apply deletion and ceasing requests to the raw data we still retain.

The daily pipeline already excludes a person with a binding request from everything it publishes
(``tokumei.anonymize.rights``), but the raw exports in the landing zone and the quarantined lines still
hold that person's data until retention removes them (30 and 90 days). APPI Art. 35 requests
(deletion, ceasing of use) must reach those copies within a bounded time, so this step, run hourly,
removes the person's rows from them:

* landing files of every source and date (JSON Lines, optionally gzipped, CSV, Parquet): a record
  goes when any of its values equals one of the person's ids — the ``user_id``, the cookies the
  landing cookies files assign to them, the devices the devices files assign to them (so logged-out
  events of their cookie and measurements of their scale go too);
* a line that does not parse (kept for investigation) goes only when it contains one of those ids
  as a whole token; every other malformed line is kept byte for byte;
* quarantine Parquet files (``raw`` holds the rejected line): rows whose raw line contains an id.

Published data is anonymized (aggregates with suppression, k-anonymous records over persons) and
holds no personal data, so it is not touched; the pseudonymized work layers are transient (removed
at the end of each run) and never receive a person with a request, who is filtered out before
pseudonymization. The audit entry says so.

Why the design looks like this:

* One pass per file for a whole batch of requests, with Polars' Aho-Corasick ``contains_any`` as a
  vectorized prefilter, so only lines that mention an id are parsed in Python; a file in which no
  id occurs is not rewritten at all (its bytes and mtime stay as they are).
* Rewrites go to a hidden temp file in the same folder and are moved into place with
  ``os.replace``, so a reader (the daily run, retention) sees the old file or the new one.
* Files are handled as bytes through a Latin-1 view (a bijection on bytes), so lines with invalid
  UTF-8 or odd line ends survive exactly as received.
* The operational DB belongs to the operational system and is only read. Application is recorded
  in an append-only audit log, ``<out>/audit/rights_requests.jsonl``, one entry per request:
  request id, kind, times, datasets touched and rows removed per dataset. Never a user id, cookie,
  device or any value — the log outlives the data it describes. A request in the log is never
  applied again, which makes the step idempotent and safe to retry.
* At most ``max_requests`` requests per call, oldest first, so one hourly run stays bounded; the
  report says how many are left for the next run.

**A landing zone on object storage** (``s3://``, ``tokumei.infra.objectstore``) is handled by the same
per-format code on local copies: each object is downloaded (verified) into a private folder
under ``<out>/_work/`` (where raw data may live, docs/architecture.md §1.4; removed at the end, also on
failure), filtered there exactly like a local file, and, when rows were removed, uploaded back
with one PUT conditional on the ETag it had when read, then checked against the server's size
and MD5. Only then does it count as rewritten. An object that cannot be read, rewritten or
verified (or that a producer replaced meanwhile) is counted as failed: the other files are
still processed, then the call fails *before* the audit entries are written, so the batch's
requests stay open and the next run applies them again (a PUT is atomic, so the object is
either the original or the verified rewrite, never half of one). One copy exists at a time
(bounded disk); objects of the sources that establish ownership are read twice (once to find
the person's cookies and devices, once to erase). The log and errors name partitions
(``landing/<source>/date=…``), never object names: those are chosen by the producer.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from tokumei.anonymize.policy import Policy
from tokumei.infra import runlock
from tokumei.infra.errors import TokumeiError
from tokumei.infra.objectstore import ObjectStoreError, is_url
from tokumei.infra.storage import PARQUET_OPTIONS
from tokumei.ingest.landing import MARKER, is_data_file, reseal_file
from tokumei.ingest.sources import landing_files

log = logging.getLogger("tokumei.rights_erasure")

ERASURE_KINDS = ("deletion", "ceasing")
AUDIT_LOG = Path("audit") / "rights_requests.jsonl"
DEFAULT_MAX_REQUESTS = 1000
#: Columns that link a record to a person; they may hold ids typed as numbers by a producer.
KEY_COLUMNS = ("user_id", "cookie_id", "device_id")
#: Which landing sources tie which ids to a user (docs/architecture.md §3): the cookies and devices files, and
#: logged-in events (the cookie and app device they were sent from), so that the logged-out
#: traffic of the same cookie or device — the same person's data — goes too.
OWNERSHIP_SOURCES = {
    "cookies": ("cookie_id",),
    "devices": ("device_id",),
    "events": ("cookie_id", "device_id"),
}
_ID_CHAR = rb"A-Za-z0-9_\-"
_PUBLISHED_NOTE = "not modified: published data is anonymized and holds no personal data"
_WORK_NOTE = (
    "not modified: work layers are transient (removed at the end of each run) and persons with "
    "a request are excluded before pseudonymization"
)


@dataclass
class RequestResult:
    """What one request removed. Carries the request id and counts only — never a user id."""

    request_id: int
    kind: str
    requested_at: str | None
    rows_removed: dict[str, int] = field(default_factory=dict)

    def audit_entry(self, applied_at: datetime, seconds: float, scanned: int) -> dict[str, Any]:
        """The audit log line (docs/architecture.md §1: no PII, no values)."""
        touched = {k: v for k, v in sorted(self.rows_removed.items()) if v}
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "requested_at": self.requested_at,
            "applied_at": applied_at.isoformat(),
            "datasets_touched": sorted(touched),
            "rows_removed": touched,
            "rows_removed_total": sum(touched.values()),
            "datasets_scanned": scanned,
            "published": _PUBLISHED_NOTE,
            "work_layers": _WORK_NOTE,
            "seconds": round(seconds, 3),
        }


@dataclass
class ErasureReport:
    """Outcome of one call: counts for XCom and logs, and the audit entries written."""

    now: datetime
    dry_run: bool
    applied: list[dict[str, Any]] = field(default_factory=list)
    remaining: int = 0
    already_applied: int = 0
    without_request_id: int = 0
    db_quarantined: int = 0
    files_scanned: int = 0
    files_rewritten: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Counts only (no request or user ids): fit for XCom and the task log."""
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "applied": len(self.applied),
            "remaining": self.remaining,
            "already_applied": self.already_applied,
            "without_request_id": self.without_request_id,
            "db_quarantined": self.db_quarantined,
            "files_scanned": self.files_scanned,
            "files_rewritten": self.files_rewritten,
            "datasets_touched": sum(1 for v in self.rows_removed.values() if v),
            "rows_removed": sum(self.rows_removed.values()),
            "skipped": sorted(self.skipped),
            "seconds": round(self.seconds, 3),
        }


class _Targets:
    """The ids of a batch of persons, prepared for fast matching.

    ``owner`` maps every id (user, cookie, device) to the user it belongs to. Matching happens on
    Latin-1 views of UTF-8 bytes, so ids are kept in that form too; a non-ASCII id is also searched
    in its JSON ``\\uXXXX`` escaped form, which ``json.dumps`` writes by default.
    """

    def __init__(self, owner: dict[str, str]) -> None:
        self.owner = owner
        self.latin: dict[str, str] = {}  # latin-1 view of the UTF-8 id (or its escape) -> owner
        for ident, user in owner.items():
            self.latin[ident.encode("utf-8").decode("latin-1")] = user
            escaped = json.dumps(ident)[1:-1]
            self.latin.setdefault(escaped, user)
        self.needles = sorted(self.latin, key=len, reverse=True)
        alternatives = b"|".join(re.escape(n.encode("latin-1")) for n in self.needles)
        self.token = re.compile(
            rb"(?<![" + _ID_CHAR + rb"])(" + alternatives + rb")(?![" + _ID_CHAR + rb"])"
        )

    def contains_any(self, texts: list[str]) -> list[bool]:
        """Vectorized substring prefilter (a superset of real matches)."""
        if not texts or not self.needles:
            return [False] * len(texts)
        return pl.Series(texts, dtype=pl.String).str.contains_any(self.needles).to_list()

    def token_owner(self, raw: bytes) -> str | None:
        """Owner of the first id found in ``raw`` as a whole token (for unparseable lines)."""
        m = self.token.search(raw)
        return self.latin[m.group(1).decode("latin-1")] if m else None

    def value_owner(self, value: Any, key: str | None = None) -> str | None:
        """Owner of the first id that a parsed JSON value holds as a string (at any depth)."""
        if isinstance(value, str):
            return self.owner.get(value)
        if isinstance(value, dict):
            for k, v in value.items():
                found = self.value_owner(v, k)
                if found:
                    return found
        elif isinstance(value, list):
            for v in value:
                found = self.value_owner(v)
                if found:
                    return found
        elif key in KEY_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
            return self.owner.get(str(value))
        return None


# ------------------------------------------------------------------ requests and the audit log


def read_audit_log(out: Path) -> set[int]:
    """Request ids already applied. A torn last line (crash mid-append) is ignored: its request is
    simply applied again, which removes nothing new."""
    path = out / AUDIT_LOG
    done: set[int] = set()
    if not path.is_file():
        return done
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            done.add(int(json.loads(line)["request_id"]))
        except (ValueError, KeyError, TypeError):
            log.warning("rights erasure: audit log line %d is unreadable; ignored", n)
    return done


def _append_audit(out: Path, entries: list[dict[str, Any]]) -> None:
    path = out / AUDIT_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _pending_requests(db_url: str, policy: Policy, report: ErasureReport) -> pl.DataFrame:
    """Deletion and ceasing requests that bind (any status but ``rejected``), oldest first."""
    from tokumei.ingest.opdb import read_table

    if "rights_requests" not in policy.tables:
        raise TokumeiError("the policy has no rights_requests table")
    frame, bad = read_table(db_url, "rights_requests", policy.tables["rights_requests"])
    report.db_quarantined = bad.height
    if bad.height:
        log.warning("rights erasure: %d rights_requests rows are malformed; skipped", bad.height)
    binding = frame.filter(
        pl.col("kind").is_in(ERASURE_KINDS) & (pl.col("status").fill_null("pending") != "rejected")
    )
    report.without_request_id = binding.filter(pl.col("request_id").is_null()).height
    if report.without_request_id:
        log.warning(
            "rights erasure: %d binding requests have no request_id and cannot be audited; skipped",
            report.without_request_id,
        )
    return binding.filter(pl.col("request_id").is_not_null()).sort(
        ["requested_at", "request_id"], nulls_last=True
    )


# ------------------------------------------------------------------ file walking


def _partitions(root: Path, zone: str, report: ErasureReport) -> Iterator[tuple[str, Path]]:
    """``(dataset name, folder)`` for every ``<root>/<source>/date=*`` folder; symlinks skipped
    (a link could lead out of the zone, e.g. into published data)."""
    if not root.is_dir() or root.is_symlink():
        return
    for source in sorted(root.iterdir()):
        if not source.is_dir():
            continue
        if source.is_symlink():
            report.skipped.append(f"{zone}/{source.name} (symlink)")
            continue
        for part in sorted(source.glob("date=*")):
            if part.is_symlink():
                report.skipped.append(f"{zone}/{source.name}/{part.name} (symlink)")
            elif part.is_dir():
                yield f"{zone}/{source.name}/{part.name}", part


def _landing_partition_files(landing: Path, part: Path) -> list[Path]:
    files = landing_files(landing, part.parent.name, part.name.removeprefix("date="))
    return [f for f in files if not f.is_symlink()]


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return fh.read()


def _replace(path: Path, data: bytes | pl.DataFrame) -> None:
    """Write next to ``path`` under a hidden name no reader picks up, then move it into place."""
    tmp = path.with_name(f".{path.name}.erasing.tmp")
    try:
        if isinstance(data, pl.DataFrame):
            data.write_parquet(tmp, **PARQUET_OPTIONS)
        elif path.name.endswith(".gz"):
            # no name and mtime 0: the same rewrite gives the same bytes wherever it runs, so
            # the day's marker (docs/landing.md) gets the same checksum locally and on S3
            with open(tmp, "wb") as raw, gzip.GzipFile("", "wb", 6, raw, mtime=0) as fh:
                fh.write(data)
        else:
            tmp.write_bytes(data)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ per-format filters


def _filter_jsonl(data: bytes, targets: _Targets) -> tuple[bytes, Counter[str]]:
    """Drop lines of the persons; keep every other line (malformed ones too) byte for byte."""
    lines = data.decode("latin-1").split("\n")
    removed: Counter[str] = Counter()
    drop: set[int] = set()
    for i, hit in enumerate(targets.contains_any(lines)):
        if not hit:
            continue
        raw = lines[i].encode("latin-1")
        try:
            owner = targets.value_owner(json.loads(raw))
        except ValueError:  # not JSON or not UTF-8: a whole-token match on the raw line
            owner = targets.token_owner(raw)
        if owner:
            drop.add(i)
            removed[owner] += 1
    if not drop:
        return data, removed
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return "\n".join(kept).encode("latin-1"), removed


def _filter_csv(data: bytes, targets: _Targets) -> tuple[bytes, Counter[str]]:
    """Drop records (the header never) with a field equal to an id; others keep their bytes.

    The csv reader pulls physical lines one at a time, so capturing the lines it consumed per
    record keeps quoted multi-line fields whole.
    """
    text = data.decode("latin-1")
    removed: Counter[str] = Counter()
    if not targets.contains_any([text])[0]:
        return data, removed
    consumed: list[str] = []

    def physical_lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    out: list[str] = []
    changed = False
    for n, fields in enumerate(csv.reader(physical_lines())):
        raw = "".join(consumed)
        consumed.clear()
        owner = (
            None if n == 0 else next((targets.latin[f] for f in fields if f in targets.latin), None)
        )
        if owner:
            removed[owner] += 1
            changed = True
        else:
            out.append(raw)
    out.append("".join(consumed))  # anything the reader did not turn into a record
    return ("".join(out).encode("latin-1") if changed else data), removed


def _filter_parquet(frame: pl.DataFrame, targets: _Targets) -> tuple[pl.DataFrame, Counter[str]]:
    """Drop rows with a string (or key) column equal to an id."""
    removed: Counter[str] = Counter()
    ids = list(targets.owner)
    cols = [
        c
        for c, t in frame.schema.items()
        if t == pl.String or (c in KEY_COLUMNS and t.is_integer())
    ]
    if not cols or not ids or frame.height == 0:
        return frame, removed
    match = pl.coalesce(
        [
            pl.when(pl.col(c).cast(pl.String).is_in(ids)).then(pl.col(c).cast(pl.String))
            for c in cols
        ]
    )
    hits = frame.select(match.alias("_id")).to_series()
    mask = hits.is_not_null()
    if not mask.any():
        return frame, removed
    for ident in hits.filter(mask).to_list():
        removed[targets.owner[ident]] += 1
    return frame.filter(~mask), removed


def _filter_quarantine(frame: pl.DataFrame, targets: _Targets) -> tuple[pl.DataFrame, Counter[str]]:
    """Drop quarantined rows whose raw line contains an id as a whole token."""
    removed: Counter[str] = Counter()
    if "raw" not in frame.columns or frame.height == 0:
        return frame, removed
    raws = [b"" if r is None else bytes(r) for r in frame["raw"].to_list()]
    keep: list[bool] = []
    for raw, hit in zip(
        raws, targets.contains_any([r.decode("latin-1") for r in raws]), strict=True
    ):
        owner = targets.token_owner(raw) if hit else None
        if owner:
            removed[owner] += 1
        keep.append(owner is None)
    if all(keep):
        return frame, removed
    return frame.filter(pl.Series(keep, dtype=pl.Boolean)), removed


def _filter_landing_file(path: Path, targets: _Targets, dry_run: bool) -> Counter[str]:
    name = path.name
    if name.endswith(".parquet"):
        frame = pl.read_parquet(path, hive_partitioning=False)
        kept, removed = _filter_parquet(frame, targets)
        if removed and not dry_run:
            _replace(path, kept)
            reseal_file(path)
        return removed
    data = _read_bytes(path)
    fn = _filter_csv if name.endswith((".csv", ".csv.gz")) else _filter_jsonl
    new, removed = fn(data, targets)
    if removed and not dry_run:
        _replace(path, new)
        reseal_file(path)  # the day's completeness marker follows the rewrite (docs/landing.md)
    return removed


# ------------------------------------------------------------------ ownership


def _local_ownership_files(landing: Path, report: ErasureReport) -> Iterator[tuple[str, Path]]:
    """``(source, file)`` of every local landing file of an :data:`OWNERSHIP_SOURCES` source."""
    for _name, part in _partitions(landing, "landing", report):
        if part.parent.name in OWNERSHIP_SOURCES:
            for path in _landing_partition_files(landing, part):
                yield part.parent.name, path


def _owned_ids(files: Iterable[tuple[str, Path]], users: set[str]) -> dict[str, str]:
    """Every id that belongs to ``users``: themselves, plus the cookies and devices that the
    landing cookies, devices and logged-in events (``files``: ``(source, path)``) tie to them
    (all dates: an id tied once stays theirs). A shared device or cookie therefore takes the
    co-user's logged-out rows with it: erring towards erasure, since those rows cannot be told
    apart."""
    owner = {u: u for u in users}
    by_user = _Targets(owner)
    for source, path in files:
        keys = OWNERSHIP_SOURCES[source]
        for record in _records_of_users(path, by_user):
            user = record.get("user_id")
            if not (isinstance(user, str | int) and str(user) in users):
                continue
            for key in keys:
                ident = record.get(key)
                if isinstance(ident, str) and ident:
                    owner.setdefault(ident, str(user))
    return owner


def _records_of_users(path: Path, by_user: _Targets) -> Iterator[dict[str, Any]]:
    """Records of a landing file that mention one of the users (prefiltered; tolerant of bad
    lines, which are skipped: only well-formed records establish ownership)."""
    try:
        if path.name.endswith(".parquet"):
            frame = pl.read_parquet(path, hive_partitioning=False)
            if "user_id" not in frame.columns:
                return
            ids = list(by_user.owner)
            yield from frame.filter(pl.col("user_id").cast(pl.String).is_in(ids)).iter_rows(
                named=True
            )
            return
        data = _read_bytes(path)
    except FileNotFoundError:  # removed meanwhile (retention): nothing to own
        return
    text = data.decode("latin-1")
    if path.name.endswith((".csv", ".csv.gz")):
        if not by_user.contains_any([text])[0]:
            return
        for row in csv.DictReader(io.StringIO(text, newline="")):
            yield {
                k: v.encode("latin-1").decode("utf-8", "replace")
                for k, v in row.items()
                if isinstance(k, str) and isinstance(v, str)
            }
        return
    lines = text.split("\n")
    for line, hit in zip(lines, by_user.contains_any(lines), strict=True):
        if hit:
            try:
                obj = json.loads(line.encode("latin-1"))
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


# ------------------------------------------------------------------ a landing zone on S3


class _RemoteLanding:
    """An ``s3://`` landing zone handled as local files, one verified copy at a time.

    Listed once per call. Copies go to a private folder under ``<out>/_work/`` (raw data may
    live there, docs/architecture.md §1.4), removed by :meth:`close`. ``failed`` collects the partitions of
    objects that could not be read, rewritten or verified; the caller fails the batch on it.
    """

    def __init__(self, url: str, out: Path, out_url: str | None, report: ErasureReport) -> None:
        from tokumei.infra import objectstore

        self.store = objectstore
        self.url = objectstore.check_url(url)
        self.fs = objectstore.filesystem()
        self.failed: list[str] = []
        self.objects: list[tuple[str, str, dict[str, Any]]] = []
        if out_url and objectstore.overlaps(self.url, out_url):
            # a misconfigured landing must never make this step edit published releases
            report.skipped.append("landing (overlaps the published releases)")
        else:
            self.objects = self._list()
        self.tmp = _private_tmp(out)

    def _list(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(dataset, source, info)`` of every ``<source>/date=*/<file>`` object with a landing
        suffix: the selection ``tokumei.ingest.sources.landing_files`` makes on a folder."""
        found = []
        for rel, info in self.store.list_landing(self.url, self.fs):
            parts = rel.split("/")
            if len(parts) == 3 and parts[1].startswith("date=") and is_data_file(parts[2]):
                found.append((f"landing/{parts[0]}/{parts[1]}", parts[0], info))
        return found

    @contextlib.contextmanager
    def local_copy(self, dataset: str, info: dict[str, Any]) -> Iterator[Path]:
        """A verified copy of one object, under its own name (the suffix selects the format),
        deleted when the block ends."""
        folder = Path(tempfile.mkdtemp(dir=self.tmp))
        dest = folder / info["name"].rsplit("/", 1)[-1]
        try:
            self.store.download_object(self.fs, info, dest, f"a landing object of {dataset}")
            yield dest
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def ownership_files(self) -> Iterator[tuple[str, Path]]:
        """``(source, local copy)`` of the objects that tie cookies and devices to users. A copy
        that fails raises: ownership must be complete before anything is erased."""
        for dataset, source, info in self.objects:
            if source in OWNERSHIP_SOURCES:
                with self.local_copy(dataset, info) as path:
                    yield source, path

    def erase(
        self, dataset: str, info: dict[str, Any], targets: _Targets, dry_run: bool
    ) -> Counter[str]:
        """Filter one object with the local code; put the rewrite back (conditional, verified).

        Returns the rows removed once the rewrite is verified on the server; raises
        :class:`ObjectStoreError` (naming the partition only) otherwise.
        """
        with self.local_copy(dataset, info) as path:
            removed = _filter_landing_file(path, targets, dry_run)
            if removed and not dry_run:
                self.store.replace_object(self.fs, path, info, f"a landing object of {dataset}")
                self._reseal(dataset, info, path)
        return removed

    def _reseal(self, dataset: str, info: dict[str, Any], path: Path) -> None:
        """The folder's completeness marker follows the rewrite (docs/landing.md), replaced
        like the object: verified, and only if nobody changed it meanwhile."""
        key = info["name"].rsplit("/", 1)[0] + "/" + MARKER
        self.fs.invalidate_cache(key)  # resealed after an earlier file of the same folder
        try:
            marker = self.fs.info(key)
        except FileNotFoundError:
            return
        what = f"the completeness marker of {dataset}"
        self.store.download_object(self.fs, marker, path.parent / MARKER, what)
        if reseal_file(path):
            self.store.replace_object(self.fs, path.parent / MARKER, marker, what)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _RemoteRetained:
    """The retained pseudonymous layer under an ``s3://`` output (``<out>/retained/``), listed
    once and erased object by object like :class:`_RemoteLanding`: a verified copy, the rows
    of the batch's persons removed, the rewrite put back only if the object is unchanged,
    verified."""

    def __init__(self, url: str) -> None:
        from tokumei.infra import objectstore

        self.store = objectstore
        self.url = objectstore.check_url(url)
        self.fs = objectstore.filesystem()

    @functools.cached_property
    def objects(self) -> list[tuple[str, dict[str, Any]]]:
        """``(dataset, info)`` of every ``<dataset>/date=*/part-*.parquet`` object; listed on
        first use (an hourly call with no request lists nothing)."""
        return [
            (f"retained/{parts[0]}/{parts[1]}", info)
            for rel, info in self.store.list_landing(self.url, self.fs)
            if len(parts := rel.split("/")) == 3
            and parts[1].startswith("date=")
            and parts[2].startswith("part-")
            and parts[2].endswith(".parquet")
        ]

    def erase(
        self,
        dataset: str,
        info: dict[str, Any],
        erase: Callable[[pl.DataFrame], tuple[pl.DataFrame, Counter[str]]],
        dry_run: bool,
        tmp: Path,
    ) -> Counter[str]:
        folder = Path(tempfile.mkdtemp(dir=tmp))
        path = folder / "part.parquet"
        what = f"an object of {dataset}"
        try:
            self.store.download_object(self.fs, info, path, what)
            kept, removed = erase(pl.read_parquet(path))
            if removed and not dry_run:
                _replace(path, kept)
                self.store.replace_object(self.fs, path, info, what)
            return removed
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _private_tmp(out: Path) -> Path:
    """A private folder for verified copies, under ``<out>/_work`` (where raw data may live)."""
    work = out / "_work"
    work.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="rights-erasure-", dir=work))


# ------------------------------------------------------------------ the step


def _pseudonyms(owner: dict[str, str], key: str, domains: tuple[str, ...]) -> dict[str, str]:
    """pseudonym -> owning user for every id of the batch, under each key domain it may have.

    The retained layer's ``person`` is the user pseudonym, or the cookie / device pseudonym of
    logged-out traffic (``Policy.person_domains``: the ``domain:`` of the ids in ``person:``); an
    id's kind is not known here, so it is hashed in every such domain (a wrong-domain hash
    matches nothing).
    """
    from tokumei.anonymize.pseudonymize import pseudonymize

    ids = pl.DataFrame({"_id": list(owner), "_owner": list(owner.values())})
    frames = [
        ids.select(pseudonymize(pl.col("_id"), key, domain).alias("p"), "_owner")
        for domain in domains
    ]
    both = pl.concat(frames)
    return dict(zip(both["p"].to_list(), both["_owner"].to_list(), strict=True))


@runlock.job_lock("rights-erasure")
def apply_rights_requests(
    landing: Path | str,
    out: Path,
    db_url: str,
    policy: Policy,
    now: datetime,
    dry_run: bool = False,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    key: str | None = None,
    out_url: str | None = None,
) -> ErasureReport:
    """Apply new deletion / ceasing requests to landing, quarantine and the retained layer.

    Runs under the output's run lock unless ``dry_run`` (``runlock.job_lock``): a run reading
    a landing file or retained day while it is rewritten would publish a mix of both.

    ``dry_run`` scans and counts exactly as a real run but writes nothing (no file, no audit
    entry). Requests beyond ``max_requests`` wait for the next call (``report.remaining``).
    The retained pseudonymous activity layer (``<out>/retained/``) holds persons by pseudonym
    only, so finding them needs the pseudonym ``key``; without it, when that layer exists, the
    call fails before touching anything (fail closed: an erasure must not be half applied).
    ``landing`` may be an ``s3://`` URL (``Settings.landing_url``; see the module docstring);
    ``out`` is always the local output root, ``out_url`` (``Settings.out_url``) only serves to
    refuse a URL landing that overlaps the published releases.
    """
    retained = Path(out).resolve() / "retained"
    remote_retained = _RemoteRetained(f"{out_url.rstrip('/')}/retained") if out_url else None
    if key is None and (
        (retained.is_dir() and any(retained.glob("*/date=*")))
        or (remote_retained is not None and remote_retained.objects)
    ):
        raise TokumeiError(
            "the retained activity layer exists; erasing from it needs the pseudonym key"
        )
    if max_requests < 1:
        raise TokumeiError("max_requests must be at least 1")
    started = time.monotonic()
    report = ErasureReport(now=now, dry_run=dry_run)
    remote_url = str(landing) if is_url(landing) else None
    local = None if remote_url is not None else Path(landing).resolve()
    out = Path(out).resolve()
    done = read_audit_log(out)
    requests = _pending_requests(db_url, policy, report)
    new = requests.filter(~pl.col("request_id").is_in(list(done)))
    report.already_applied = requests.height - new.height
    batch, report.remaining = new.head(max_requests), max(new.height - max_requests, 0)
    if batch.height == 0:
        report.seconds = time.monotonic() - started
        log.info("rights erasure: no new requests (%d already applied)", report.already_applied)
        return report

    results: list[RequestResult] = []
    first_request_of: dict[str, RequestResult] = {}  # rows go to the user's oldest request
    for row in batch.iter_rows(named=True):
        ts = row["requested_at"]
        result = RequestResult(
            request_id=int(row["request_id"]),
            kind=row["kind"],
            requested_at=ts.isoformat() if ts is not None else None,
        )
        results.append(result)
        first_request_of.setdefault(str(row["user_id"]), result)

    remote = None if remote_url is None else _RemoteLanding(remote_url, out, out_url, report)
    try:
        return _apply_batch(
            local,
            remote,
            out,
            report,
            results,
            first_request_of,
            dry_run,
            key,
            started,
            policy.person_domains(),
            remote_retained,
        )
    finally:
        if remote is not None:
            remote.close()


def _apply_batch(
    landing: Path | None,
    remote: _RemoteLanding | None,
    out: Path,
    report: ErasureReport,
    results: list[RequestResult],
    first_request_of: dict[str, RequestResult],
    dry_run: bool,
    key: str | None,
    started: float,
    domains: tuple[str, ...],
    remote_retained: _RemoteRetained | None = None,
) -> ErasureReport:
    """Erase one batch from every zone, then audit it (the part of
    :func:`apply_rights_requests` that touches files)."""
    retained = out / "retained"
    users = set(first_request_of)
    if landing is not None:
        targets = _Targets(_owned_ids(_local_ownership_files(landing, report), users))
    else:
        assert remote is not None
        if not dry_run:
            remote.store.warn_if_versioned(remote.fs, remote.url, "rights erasure")
        targets = _Targets(_owned_ids(remote.ownership_files(), users))

    def record(dataset: str, removed: Counter[str]) -> None:
        for user, n in removed.items():
            counts = first_request_of[user].rows_removed
            counts[dataset] = counts.get(dataset, 0) + n
            report.rows_removed[dataset] = report.rows_removed.get(dataset, 0) + n
        if removed:
            report.files_rewritten += 1

    scanned: set[str] = set()
    remote_failed: list[str] = []
    protected = [out / "published", out / "reports"]
    for dataset, part in _partitions(landing, "landing", report) if landing is not None else ():
        if any(part.resolve().is_relative_to(p) for p in protected):
            report.skipped.append(f"{dataset} (under published/ or reports/)")
            continue  # a misconfigured landing must never make this step edit published data
        for path in _landing_partition_files(landing, part):
            scanned.add(dataset)
            report.files_scanned += 1
            try:
                record(dataset, _filter_landing_file(path, targets, dry_run))
            except FileNotFoundError:  # deleted by retention meanwhile: nothing left to erase
                continue
    for dataset, _source, info in remote.objects if remote is not None else ():
        scanned.add(dataset)
        report.files_scanned += 1
        try:
            removed = remote.erase(dataset, info, targets, dry_run)
        except ObjectStoreError as exc:  # the message names the partition, never the object
            remote.failed.append(dataset)
            log.warning("rights erasure: %s", exc)
            continue
        record(dataset, removed)

    def parquet_zone(
        root: Path,
        zone: str,
        erase: Callable[[pl.DataFrame], tuple[pl.DataFrame, Counter[str]]],
    ) -> None:
        """Rewrite every ``part-*.parquet`` of a zone without the batch's rows."""
        for dataset, part in _partitions(root, zone, report):
            for path in sorted(part.glob("part-*.parquet")):
                if path.is_symlink():
                    continue
                scanned.add(dataset)
                report.files_scanned += 1
                try:
                    kept, removed = erase(pl.read_parquet(path))
                except FileNotFoundError:  # deleted by retention meanwhile
                    continue
                if removed and not dry_run:
                    _replace(path, kept)
                record(dataset, removed)

    parquet_zone(out / "quarantine", "quarantine", lambda f: _filter_quarantine(f, targets))
    if key is not None:
        by_pseudonym = _pseudonyms(targets.owner, key, domains)

        def erase_pseudonyms(frame: pl.DataFrame) -> tuple[pl.DataFrame, Counter[str]]:
            owners = frame["person"].replace_strict(by_pseudonym, default=None)
            return frame.filter(owners.is_null()), Counter(owners.drop_nulls().to_list())

        parquet_zone(retained, "retained", erase_pseudonyms)
        if remote_retained is not None:
            tmp = _private_tmp(out)
            try:
                for dataset, info in remote_retained.objects:
                    scanned.add(dataset)
                    report.files_scanned += 1
                    try:
                        removed = remote_retained.erase(
                            dataset, info, erase_pseudonyms, dry_run, tmp
                        )
                    except ObjectStoreError as exc:
                        remote_failed.append(dataset)
                        log.warning("rights erasure: %s", exc)
                        continue
                    record(dataset, removed)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    if remote is not None:
        remote_failed += remote.failed
    if remote_failed:
        # fail closed: no audit entry, so every request of the batch is applied again next run
        failed = sorted(set(remote_failed))
        raise TokumeiError(
            f"rights erasure: {len(remote_failed)} object(s) could not be rewritten "
            f"({', '.join(failed)}); no request of this batch was recorded as applied"
        )
    report.seconds = time.monotonic() - started
    report.applied = [r.audit_entry(report.now, report.seconds, len(scanned)) for r in results]
    if not dry_run:
        _append_audit(out, report.applied)  # only after every file is rewritten
    summary = report.to_dict()
    log.info(
        "rights erasure%s: %d requests, %d rows removed from %d datasets (%d files), %d remaining",
        " (dry run)" if dry_run else "",
        summary["applied"],
        summary["rows_removed"],
        summary["datasets_touched"],
        summary["files_rewritten"],
        summary["remaining"],
    )
    return report
