"""Retention: delete raw landing partitions and quarantined rows once they are old enough.

Raw exports (``<landing>/<source>/date=YYYY-MM-DD/``) and quarantined rows
(``<out>/quarantine/<source>/date=YYYY-MM-DD/``) hold personal data; keeping them longer than the
pipeline needs them is a liability (APPI: delete personal data that is no longer needed). Published
outputs and reports are anonymized and are the product, so they are never touched here, except
that versions of the published Delta tables older than ``TOKUMEI_RETENTION_PUBLISHED_VERSIONS_DAYS``
(default 30) are removed by Delta's own ``vacuum`` (``tokumei.infra.tableformat.vacuum``,
docs/adr/0008-published-tables-delta-lake.md): the current release is never affected, only time
travel to releases replaced longer ago than that.

Safety rules, in order of importance:

* only directories named exactly ``date=YYYY-MM-DD`` (a real calendar date) directly under a source
  folder are candidates; anything else is skipped and listed in the report, never guessed at;
* nothing under ``<out>/published`` or ``<out>/reports`` is ever deleted, whatever the layout;
* symlinks are never followed or deleted through (a link could point at published data);
* a partition is first renamed to a hidden ``.date=….deleting`` name (atomic), then removed, so a
  concurrent reader sees the whole partition or none of it; leftovers of an interrupted run are
  finished by the next one.

The report and the log lines carry paths, dates and counts only — never data values.

**A landing zone on object storage** (``s3://bucket/prefix``, see ``tokumei.infra.objectstore``) gets
the same rules over object keys: the objects under ``<source>/date=YYYY-MM-DD/`` of an expired
date are deleted (one listing, bulk deletes, then a listing that checks they are gone);
anything else is skipped and listed as locally. What is reported and logged is the same as for
a folder: a deleted partition as ``landing/<source>/date=…`` with file and byte counts, never
its objects' names, which the producer chooses and the layout does not keep free of personal
data (entries skipped directly under a source are named, as locally). S3 has no rename, so a partition disappears object by object
rather than at once; an interrupted deletion leaves an expired partition with fewer objects,
which the next run finishes. Quarantine stays on the local output root; the retained layer of an
``s3://`` output lives under it and is swept the same way.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tokumei.infra import runlock
from tokumei.infra.errors import TokumeiError
from tokumei.infra.objectstore import is_url

log = logging.getLogger("tokumei.retention")

LANDING_DAYS_ENV = "TOKUMEI_RETENTION_LANDING_DAYS"
QUARANTINE_DAYS_ENV = "TOKUMEI_RETENTION_QUARANTINE_DAYS"
DEFAULT_LANDING_DAYS = 30
DEFAULT_QUARANTINE_DAYS = 90
#: The retained pseudonymous activity layer (``<out>/retained/<dataset>/date=…``, see
#: ``tokumei.stats.periods``): long enough for a year of monthly tables and retention cohorts.
ACTIVITY_DAYS_ENV = "TOKUMEI_RETENTION_ACTIVITY_DAYS"
DEFAULT_ACTIVITY_DAYS = 400
#: How long replaced versions of the published Delta tables stay readable by time travel.
VERSIONS_DAYS_ENV = "TOKUMEI_RETENTION_PUBLISHED_VERSIONS_DAYS"
DEFAULT_VERSIONS_DAYS = 30

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_LEFTOVER = re.compile(r"^\.(date=\d{4}-\d{2}-\d{2})\.deleting$")
PROTECTED = ("published", "reports")


@dataclass
class Counts:
    """What was (or, in a dry run, would be) deleted for one source."""

    partitions: int = 0
    files: int = 0
    bytes: int = 0

    def add(self, other: Counts) -> None:
        self.partitions += other.partitions
        self.files += other.files
        self.bytes += other.bytes


@dataclass
class RetentionReport:
    """Counts per ``landing/<source>`` and ``quarantine/<source>``; paths skipped and why."""

    today: date
    landing_cutoff: date
    quarantine_cutoff: date
    dry_run: bool
    activity_cutoff: date | None = None
    deleted: dict[str, Counts] = field(default_factory=dict)
    kept_partitions: int = 0
    skipped: list[str] = field(default_factory=list)
    #: Data files of replaced versions that Delta's vacuum removed, per published table.
    vacuumed: dict[str, int] = field(default_factory=dict)
    version_days: int = DEFAULT_VERSIONS_DAYS

    @property
    def totals(self) -> Counts:
        total = Counts()
        for counts in self.deleted.values():
            total.add(counts)
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (small: fit for XCom and the task log)."""
        return {
            "today": self.today.isoformat(),
            "landing_cutoff": self.landing_cutoff.isoformat(),
            "quarantine_cutoff": self.quarantine_cutoff.isoformat(),
            "activity_cutoff": self.activity_cutoff.isoformat() if self.activity_cutoff else None,
            "dry_run": self.dry_run,
            "deleted": {k: asdict(v) for k, v in sorted(self.deleted.items())},
            "totals": asdict(self.totals),
            "kept_partitions": self.kept_partitions,
            "skipped": sorted(self.skipped),
            "published_versions": {"days": self.version_days, "vacuumed_files": self.vacuumed},
        }


def days_from_env(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """``(landing_days, quarantine_days)`` from ``TOKUMEI_RETENTION_*`` (defaults 30 and 90).

    A value that is not a positive integer is an error rather than a silent default: a typo must
    not turn into "delete everything" or "keep raw data forever".
    """
    return (
        _days_env(environ, LANDING_DAYS_ENV, DEFAULT_LANDING_DAYS),
        _days_env(environ, QUARANTINE_DAYS_ENV, DEFAULT_QUARANTINE_DAYS),
    )


def activity_days_from_env(environ: dict[str, str] | None = None) -> int:
    """Retention of the retained activity layer from ``TOKUMEI_RETENTION_ACTIVITY_DAYS``."""
    return _days_env(environ, ACTIVITY_DAYS_ENV, DEFAULT_ACTIVITY_DAYS)


def versions_days_from_env(environ: dict[str, str] | None = None) -> int:
    """How long replaced published versions stay, from ``TOKUMEI_RETENTION_PUBLISHED_VERSIONS_DAYS``."""
    return _days_env(environ, VERSIONS_DAYS_ENV, DEFAULT_VERSIONS_DAYS)


def _days_env(environ: dict[str, str] | None, name: str, default: int) -> int:
    """A whole number of days >= 1 from ``name``, ``default`` when unset; anything else fails."""
    raw = ((os.environ if environ is None else environ).get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TokumeiError(f"{name} must be a whole number of days") from None
    return _check_days(name, value)


def _check_days(name: str, days: int) -> int:
    if days < 1:
        raise TokumeiError(f"{name} must be at least 1 day (got {days})")
    return days


@runlock.job_lock("retention")
def apply_retention(
    landing: Path | str,
    out: Path,
    today: date,
    landing_days: int,
    quarantine_days: int,
    dry_run: bool = False,
    activity_days: int = DEFAULT_ACTIVITY_DAYS,
    out_url: str | None = None,
    version_days: int | None = None,
) -> RetentionReport:
    """Delete partitions dated strictly before ``today - days``; return what was deleted.

    Runs under the output's run lock unless ``dry_run`` (``runlock.job_lock``): deleting the
    retained days a running day reads would change its weeks.

    A partition exactly ``days`` old is kept (``landing_days=30`` keeps 31 dates: today and the 30
    before it). ``dry_run`` computes the same report without deleting anything. ``landing`` may
    be an ``s3://`` URL (``Settings.landing_url``); ``out`` is always the local output root, and
    ``out_url`` (``Settings.out_url``) lets a URL landing that overlaps the published releases
    be refused like a local one that overlaps ``published/``. ``version_days`` (default:
    ``TOKUMEI_RETENTION_PUBLISHED_VERSIONS_DAYS``) is how long replaced versions of the
    published Delta tables stay readable; older ones go with Delta's vacuum.
    """
    from tokumei.infra.tableformat import vacuum

    version_days = versions_days_from_env() if version_days is None else version_days
    _check_days("version_days", version_days)
    _check_days("landing_days", landing_days)
    _check_days("quarantine_days", quarantine_days)
    _check_days("activity_days", activity_days)
    report = RetentionReport(
        today=today,
        landing_cutoff=today - timedelta(days=landing_days),
        quarantine_cutoff=today - timedelta(days=quarantine_days),
        activity_cutoff=today - timedelta(days=activity_days),
        dry_run=dry_run,
        version_days=version_days,
    )
    out = out.resolve()
    protected = [out / name for name in PROTECTED]
    zones = [
        ("quarantine", out / "quarantine", report.quarantine_cutoff),
        ("retained", out / "retained", report.activity_cutoff),
    ]
    if out_url:  # the retained layer lives under the s3:// output (docs/architecture.md §7)
        _sweep_remote_zone(
            report, "retained", f"{out_url.rstrip('/')}/retained", report.activity_cutoff
        )
    if is_url(landing):
        _sweep_remote_landing(report, str(landing), report.landing_cutoff, out_url)
    else:
        zones.insert(0, ("landing", Path(landing).resolve(), report.landing_cutoff))
    for zone, root, cutoff in zones:
        if not root.is_dir() or root.is_symlink():
            continue
        if _is_protected(root, protected) or any(p.is_relative_to(root) for p in protected):
            # a landing zone that contains (or is) the published tree: refuse to walk it at all
            report.skipped.append(f"{zone}: {root} overlaps published/ or reports/")
            log.warning("retention: %s zone %s overlaps protected outputs; skipped", zone, root)
            continue
        for source in sorted(root.iterdir()):
            if not source.is_dir():
                continue  # e.g. landing/ops.db: not a source folder
            if source.is_symlink():
                report.skipped.append(f"{zone}/{source.name} (symlink)")
                continue
            _sweep_source(report, zone, source, cutoff, protected)
    # the Delta tables live under the s3:// output when there is one (docs/adr/0008)
    published = f"{out_url.rstrip('/')}/published" if out_url else out / "published"
    report.vacuumed = vacuum(published, version_days, dry_run=dry_run)
    action = "would delete" if dry_run else "deleted"
    totals = report.totals
    log.info(
        "retention %s: %s %d partitions, %d files, %d bytes; kept %d; skipped %d; "
        "published versions older than %d days: %s %d files",
        today.isoformat(),
        action,
        totals.partitions,
        totals.files,
        totals.bytes,
        report.kept_partitions,
        len(report.skipped),
        version_days,
        action,
        sum(report.vacuumed.values()),
    )
    return report


_NOT_PARTITION = "not a date=YYYY-MM-DD partition folder"


def _skip(report: RetentionReport, rel: str, why: str) -> None:
    report.skipped.append(rel)
    log.warning("retention: skipped %s (%s)", rel, why)


def _partition_day(report: RetentionReport, rel: str, name: str) -> date | None:
    """The date of a ``date=YYYY-MM-DD`` partition (local folder or S3 prefix), else ``None``
    with the entry recorded as skipped: retention deletes only what it can date."""
    match = _PARTITION.match(name)
    if not match:
        _skip(report, rel, _NOT_PARTITION)
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        _skip(report, rel, "not a calendar date")
        return None


def _sweep_source(
    report: RetentionReport, zone: str, source: Path, cutoff: date, protected: list[Path]
) -> None:
    key = f"{zone}/{source.name}"
    for entry in sorted(source.iterdir()):
        rel = f"{key}/{entry.name}"
        leftover = _LEFTOVER.match(entry.name)
        if entry.is_symlink() or not entry.is_dir():
            _skip(report, rel, _NOT_PARTITION)
            continue
        if leftover:  # a partition already renamed by an interrupted run: finish the job
            _delete(report, key, entry, rel, protected)
            continue
        day = _partition_day(report, rel, entry.name)
        if day is None:
            continue
        if day < cutoff:
            _delete(report, key, entry, rel, protected)
        else:
            report.kept_partitions += 1


def _delete(
    report: RetentionReport, key: str, partition: Path, rel: str, protected: list[Path]
) -> None:
    if _is_protected(partition, protected):  # belt and braces: never reachable by construction
        raise TokumeiError(f"retention refused to delete {rel}: it is under published/ or reports/")
    counts = _measure(partition)
    report.deleted.setdefault(key, Counts()).add(counts)
    if report.dry_run:
        log.info("retention: would delete %s (%d files, %d bytes)", rel, counts.files, counts.bytes)
        return
    target = partition
    if _PARTITION.match(partition.name):
        target = partition.with_name(f".{partition.name}.deleting")
        if target.exists():  # an older interrupted deletion of the same date
            shutil.rmtree(target)
        os.replace(partition, target)
    shutil.rmtree(target)
    log.info("retention: deleted %s (%d files, %d bytes)", rel, counts.files, counts.bytes)


def _sweep_remote_landing(
    report: RetentionReport, url: str, cutoff: date, out_url: str | None
) -> None:
    """The landing sweep over an ``s3://`` landing: same selection and report as
    :func:`_sweep_source`, with prefixes for folders (see the module docstring)."""
    from tokumei.infra import objectstore

    url = objectstore.check_url(url)
    if out_url and objectstore.overlaps(url, out_url):
        report.skipped.append(f"landing: {url} overlaps the published releases")
        log.warning("retention: landing %s overlaps the output %s; skipped", url, out_url)
        return
    _sweep_remote_zone(report, "landing", url, cutoff)


def _sweep_remote_zone(report: RetentionReport, zone: str, url: str, cutoff: date) -> None:
    """``<url>/<source>/date=…/`` prefixes older than ``cutoff`` deleted (landing on S3, or the
    retained layer under an ``s3://`` output)."""
    from tokumei.infra import objectstore

    fs = objectstore.filesystem()
    root = url.split("://", 1)[1]
    # (source, entry below the source, whether that entry is an object rather than a prefix)
    entries: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for rel, info in objectstore.list_landing(url, fs):
        parts = rel.split("/")
        if len(parts) < 2:
            continue  # an object at the landing root (e.g. an export of ops.db): not a source
        entries.setdefault((parts[0], parts[1], len(parts) == 2), []).append(info)
    if not entries:
        return
    if not report.dry_run and zone == "landing":
        objectstore.warn_if_versioned(fs, url, "retention")
    for (source, entry, is_file), infos in sorted(entries.items()):
        key, rel = f"{zone}/{source}", f"{zone}/{source}/{entry}"
        if is_file:
            _skip(report, rel, _NOT_PARTITION)
            continue
        day = _partition_day(report, rel, entry)
        if day is None:
            continue
        if day >= cutoff:
            report.kept_partitions += 1
            continue
        counts = Counts(partitions=1, files=len(infos), bytes=sum(int(i["size"]) for i in infos))
        report.deleted.setdefault(key, Counts()).add(counts)
        if report.dry_run:
            log.info(
                "retention: would delete %s (%d files, %d bytes)", rel, counts.files, counts.bytes
            )
            continue
        prefix = f"{root}/{source}/{entry}"
        objectstore.delete_objects(fs, [i["name"] for i in infos], prefix, rel)
        log.info("retention: deleted %s (%d files, %d bytes)", rel, counts.files, counts.bytes)


def _measure(partition: Path) -> Counts:
    """Files and bytes in a partition, without following symlinks."""
    counts = Counts(partitions=1)
    for dirpath, _dirs, files in os.walk(partition, followlinks=False):
        for name in files:
            counts.files += 1
            counts.bytes += os.lstat(os.path.join(dirpath, name)).st_size
    return counts


def _is_protected(path: Path, protected: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(p) for p in protected)
