"""The landing completeness contract (docs/landing.md): is a source-day complete?

A folder ``<landing>/<source>/date=<day>/`` is *complete* when its producer has written the
marker ``_SUCCESS.json`` last, listing every data file with its size, line count and SHA-256,
and every listed file is there with exactly that content. Why a marker and not "the folder
exists": a day that never arrived, arrived half-way or was copied twice looked the same as a
real day to the pipeline and was published as one (issue 17). The producer is the only party
that knows when a day is done; the marker is how it says so, the Hadoop/Spark ``_SUCCESS``
convention with the content list that makes it checkable.

Every reason here is value-free: it names the source, the date, a file relative to the landing
and the cause, never a line of data.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokumei.infra.errors import TokumeiError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: The marker file of a complete source-day (written last by the producer).
MARKER = "_SUCCESS.json"
#: Marker format version (``"format"`` in the file).
MARKER_FORMAT = 1
#: Suffixes of landing data files (the same selection as ``tokumei.ingest.sources``).
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv", ".csv.gz", ".parquet")
#: Bytes read per call while hashing and counting lines.
_READ = 1 << 20
#: A marker larger than this is refused unread (a 1,000-file day's marker is ~150 KB).
MARKER_MAX_BYTES = 16 << 20


class Problem(StrEnum):
    """Why a source-day is not complete (stable codes for sensors, tests and the manifest)."""

    NO_FOLDER = "no_folder"
    NO_MARKER = "no_marker"
    BAD_MARKER = "bad_marker"
    MISSING_FILE = "missing_file"
    UNLISTED_FILE = "unlisted_file"
    SIZE = "size_differs"
    CHECKSUM = "checksum_differs"
    LINE_COUNT = "line_count_differs"
    EMPTY = "empty"
    LINK_OUTSIDE = "link_outside_landing"


@dataclass(frozen=True)
class FileEntry:
    """One data file as the marker lists it."""

    name: str
    bytes: int
    lines: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form (marker ``files`` item)."""
        return {"name": self.name, "bytes": self.bytes, "lines": self.lines, "sha256": self.sha256}


@dataclass(frozen=True)
class LandingStatus:
    """The verdict on one source-day: ``complete`` or a ``problem`` with a ``reason``."""

    source: str
    day: str
    complete: bool
    reason: str | None = None
    problem: Problem | None = None
    files: tuple[FileEntry, ...] = field(default=())

    @property
    def lines(self) -> int:
        """Lines of the day's listed files (0 when the marker is missing)."""
        return sum(f.lines for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """For the manifest: counts and codes, no values."""
        return {
            "complete": self.complete,
            "problem": self.problem.value if self.problem else None,
            "reason": self.reason,
            "files": len(self.files),
            "lines": self.lines,
        }


def day_folder(landing: Path, source: str, day: str) -> Path:
    """``<landing>/<source>/date=<day>``."""
    return Path(landing) / source / f"date={day}"


def is_data_file(name: str) -> bool:
    """A landing data file: a known suffix, not a marker or hidden/in-progress file.

    Names starting with ``_`` or ``.`` are the producer's own (``_SUCCESS.json``,
    ``.part-0.tmp``) by the Hadoop convention, never data.
    """
    return name.endswith(DATA_SUFFIXES) and not name.startswith(("_", "."))


def _count_newlines_gz(fh: Any, digest: Any) -> tuple[int, int, bool]:
    """(bytes read, newlines in the decompressed stream, decompressed ends with newline)."""
    size = newlines = 0
    last = b""
    d = zlib.decompressobj(wbits=47)  # gzip or zlib header, concatenated members below
    while chunk := fh.read(_READ):
        digest.update(chunk)
        size += len(chunk)
        while chunk:
            out = d.decompress(chunk)
            if out:
                newlines += out.count(b"\n")
                last = out[-1:]
            chunk = d.unused_data
            if chunk:  # another gzip member follows
                d = zlib.decompressobj(wbits=47)
    tail = d.flush()
    if tail:
        newlines += tail.count(b"\n")
        last = tail[-1:]
    return size, newlines, last in (b"", b"\n")


def describe_file(path: Path) -> FileEntry:
    """Size, line count and SHA-256 of one data file, in one read.

    ``lines`` is the number of lines of the *decompressed* content (a last line without a
    newline counts; an empty file has 0); for Parquet it is the row count. SHA-256 is of the
    file's bytes as stored. Measured: ~1 s per 100 MB of gzip here (hash + inflate).
    """
    digest = hashlib.sha256()
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        with path.open("rb") as fh:
            size = 0
            while chunk := fh.read(_READ):
                digest.update(chunk)
                size += len(chunk)
        lines = pq.ParquetFile(path).metadata.num_rows
        return FileEntry(path.name, size, lines, digest.hexdigest())
    with path.open("rb") as fh:
        if path.name.endswith(".gz"):
            size, lines, ends_nl = _count_newlines_gz(fh, digest)
            content = lines > 0 or not ends_nl
        else:
            size = lines = 0
            last = b""
            while chunk := fh.read(_READ):
                digest.update(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            ends_nl = last in (b"", b"\n")
            content = size > 0
    if content and not ends_nl:
        lines += 1  # a last line without its newline is a line
    return FileEntry(path.name, size, lines, digest.hexdigest())


def data_files(folder: Path) -> list[Path]:
    """The folder's data files in name order (symlinks included, as names)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_data_file(p.name) and not p.is_dir())


def write_marker(
    folder: Path, entries: Iterable[FileEntry] | None = None, *, producer: str = "unknown"
) -> Path:
    """Write ``folder/_SUCCESS.json`` for ``entries`` (default: describe every data file now).

    Written through a temporary name and renamed, so a reader never sees half a marker. The
    producer calls this *after* its last data file is closed; ``tokumei generate`` does. No
    timestamp: the marker is a function of the content, so a rerun writes the same bytes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    listed = (
        list(entries) if entries is not None else [describe_file(p) for p in data_files(folder)]
    )
    body = {
        "format": MARKER_FORMAT,
        "producer": producer,
        "files": [e.as_dict() for e in sorted(listed, key=lambda e: e.name)],
    }
    tmp = folder / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, folder / MARKER)
    return folder / MARKER


def seal_day(landing: Path, day: str, sources: Iterable[str], *, producer: str = "unknown") -> None:
    """Write the marker of every listed source-day as its folder is now (creating empty ones).

    For producers that write a day in one go, and for tests that write a landing by hand.
    """
    for source in sources:
        write_marker(day_folder(landing, source, day), producer=producer)


def reseal_file(path: Path) -> bool:
    """After a sanctioned rewrite of a listed file (rights erasure), update its marker entry.

    Only a file the marker already lists is updated, so a stray file never becomes part of
    the day this way; returns whether the marker changed.
    """
    marker = path.parent / MARKER
    if not marker.is_file():
        return False
    try:
        listed = _read_marker(marker)
    except ValueError:
        return False
    if path.name not in {e.name for e in listed}:
        return False
    body = json.loads(marker.read_text(encoding="utf-8"))
    new = [describe_file(path) if e.name == path.name else e for e in listed]
    write_marker(path.parent, new, producer=str(body.get("producer", "unknown")))
    return True


def remove_marker(folder: Path) -> None:
    """Withdraw a marker before rewriting a day (a rerun of the producer)."""
    (Path(folder) / MARKER).unlink(missing_ok=True)


def _read_marker(path: Path) -> list[FileEntry]:
    """The marker's file list; ``ValueError`` with a value-free cause when it is malformed."""
    try:
        return parse_marker(path.read_bytes())
    except OSError:
        raise ValueError("is not valid JSON") from None


def parse_marker(raw: bytes) -> list[FileEntry]:
    """The file list of a marker's bytes (local or an object's); ``ValueError`` as above."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("is not valid JSON") from None
    if not isinstance(body, dict) or body.get("format") != MARKER_FORMAT:
        raise ValueError(f"is not a format {MARKER_FORMAT} marker")
    files = body.get("files")
    if not isinstance(files, list):
        raise ValueError("has no 'files' list")
    out: list[FileEntry] = []
    for item in files:
        try:
            entry = FileEntry(
                str(item["name"]), int(item["bytes"]), int(item["lines"]), str(item["sha256"])
            )
        except (KeyError, TypeError, ValueError):
            raise ValueError("lists a file without name, bytes, lines and sha256") from None
        if "/" in entry.name or not is_data_file(entry.name):
            raise ValueError("lists a name that is not a data file of its folder")
        out.append(entry)
    return out


def check_day(landing: Path, source: str, day: str, *, lines: bool = True) -> LandingStatus:
    """Is ``<landing>/<source>/date=<day>`` complete by its marker? Never raises on bad data.

    Checked in this order (the first failure is the reason): the folder exists; the marker
    exists and is well-formed; every listed file is there with the listed size, SHA-256 and
    line count; no data file is in the folder that the marker does not list (written after
    the marker, or a stray copy); the listed files hold at least one line. Reads every listed
    file once (hash and inflate): the cost of a check is a read of the day.

    ``lines=False`` skips inflating to count lines: a matching SHA-256 already proves the bytes
    are the producer's, and the count only checks the producer's own arithmetic. The extract
    step uses it (measured on a 136 MB gzip part here: hash 0.5 s, hash + inflate 12.9 s, the
    extract's own read 41.6 s; bench/results/landing_check.md); the sensor checks everything.
    """
    folder = day_folder(landing, source, day)
    rel = f"{source}/date={day}"
    if escaping := links_outside(landing, source, day):
        return LandingStatus(source, day, False, escaping[0], Problem.LINK_OUTSIDE)

    def bad(problem: Problem, reason: str, files: tuple[FileEntry, ...] = ()) -> LandingStatus:
        return LandingStatus(source, day, False, reason, problem, files)

    if not folder.is_dir():
        return bad(Problem.NO_FOLDER, f"{rel}: no landing folder for this source and date")
    marker = folder / MARKER
    if not marker.is_file():
        return bad(
            Problem.NO_MARKER,
            f"{rel}: no {MARKER} marker (the producer has not finished the day)",
        )
    try:
        listed = _read_marker(marker)
    except ValueError as e:
        return bad(Problem.BAD_MARKER, f"{rel}/{MARKER} {e}")
    present = {p.name for p in data_files(folder)}
    for entry in listed:
        path = folder / entry.name
        if entry.name not in present or not path.is_file():
            return bad(Problem.MISSING_FILE, f"{rel}/{entry.name}: listed in {MARKER}, missing")
        if path.stat().st_size != entry.bytes:
            return bad(
                Problem.SIZE,
                f"{rel}/{entry.name}: {path.stat().st_size} bytes, {MARKER} lists {entry.bytes}",
            )
        found = describe_file(path) if lines else None
        digest = found.sha256 if found else sha256_of(path)
        if digest != entry.sha256:
            return bad(Problem.CHECKSUM, f"{rel}/{entry.name}: SHA-256 differs from {MARKER}")
        if found and found.lines != entry.lines:
            return bad(
                Problem.LINE_COUNT,
                f"{rel}/{entry.name}: {found.lines} lines, {MARKER} lists {entry.lines}",
            )
    return _complete_unless(source, day, rel, listed, set(present))


def check_day_url(
    url: str, source: str, day: str, fs: AbstractFileSystem | None = None
) -> LandingStatus:
    """:func:`check_day` for an ``s3://`` landing, from one listing and the marker alone.

    Same problems, same order, same reasons: no object under the source-day's prefix is
    ``no_folder`` (object stores have no folders), then the marker, every listed file's
    presence and size, unlisted data files, an empty day. Checksums and line counts need the
    data itself, which this check never downloads (raw data may live only in the landing zone
    and a run's work directory, docs/architecture.md §1): ``extract`` checks the SHA-256 of its
    verified copy of every file (``stage_landing``, then ``check_landing``) before it reads
    anything. Links do not exist on object storage. A failed listing raises
    :class:`~tokumei.infra.objectstore.ObjectStoreError` ("could not look" is never "missing").
    """
    from tokumei.infra.objectstore import filesystem, landing_day_objects, read_small_object

    fs = fs or filesystem()
    rel = f"{source}/date={day}"

    def bad(problem: Problem, reason: str, files: tuple[FileEntry, ...] = ()) -> LandingStatus:
        return LandingStatus(source, day, False, reason, problem, files)

    objects = landing_day_objects(url, rel, fs)
    if not objects:
        return bad(Problem.NO_FOLDER, f"{rel}: no landing folder for this source and date")
    if MARKER not in objects:
        return bad(
            Problem.NO_MARKER,
            f"{rel}: no {MARKER} marker (the producer has not finished the day)",
        )
    raw = read_small_object(fs, objects[MARKER], f"{rel}/{MARKER}", limit=MARKER_MAX_BYTES)
    if raw is None:
        return bad(Problem.BAD_MARKER, f"{rel}/{MARKER} is larger than a marker can be")
    try:
        listed = parse_marker(raw)
    except ValueError as e:
        return bad(Problem.BAD_MARKER, f"{rel}/{MARKER} {e}")
    present = {name: info for name, info in objects.items() if is_data_file(name)}
    for entry in listed:
        info = present.get(entry.name)
        if info is None:
            return bad(Problem.MISSING_FILE, f"{rel}/{entry.name}: listed in {MARKER}, missing")
        if int(info["size"]) != entry.bytes:
            return bad(
                Problem.SIZE,
                f"{rel}/{entry.name}: {int(info['size'])} bytes, {MARKER} lists {entry.bytes}",
            )
    return _complete_unless(source, day, rel, listed, set(present))


def _complete_unless(
    source: str, day: str, rel: str, listed: list[FileEntry], present: set[str]
) -> LandingStatus:
    """The verdict once every listed file checked out, on disk or in a bucket alike: a file the
    marker does not list, or a marker of no lines, still makes the day incomplete."""
    files = tuple(listed)
    unlisted = sorted(present - {e.name for e in listed})
    if unlisted:
        reason = (
            f"{rel}/{unlisted[0]}: in the folder but not in {MARKER} "
            f"({len(unlisted)} such file(s); written after the marker?)"
        )
        return LandingStatus(source, day, False, reason, Problem.UNLISTED_FILE, files)
    if sum(e.lines for e in listed) == 0:
        reason = f"{rel}: the producer's marker lists no lines (empty day)"
        return LandingStatus(source, day, False, reason, Problem.EMPTY, files)
    return LandingStatus(source, day, True, None, None, files)


def links_outside(landing: Path, source: str, day: str) -> list[str]:
    """Reasons for every data file of the source-day that resolves outside the landing zone.

    A symlink (of the file, or of its folder) to somewhere else would make the run read data
    that nobody put into the landing zone, with none of its access rules; it is refused,
    whatever ``--allow-incomplete`` says. A link inside the zone is fine (and deduplicated).
    """
    root = Path(landing).resolve()
    out = []
    for path in data_files(day_folder(landing, source, day)):
        if not path.resolve().is_relative_to(root):
            out.append(
                f"{source}/date={day}/{path.name}: a symbolic link that leaves the landing zone; "
                "refused (copy the file into the landing zone instead)"
            )
    return out


@dataclass
class Selection:
    """The files of a source-day to read: one per distinct content, and what was skipped."""

    files: list[Path]
    duplicates: int = 0  # files whose content another file of the day already has
    duplicate_lines: int = 0


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()


def select_files(landing: Path, source: str, day: str, status: LandingStatus) -> Selection:
    """The day's data files, each distinct content once (name order decides which copy).

    A file delivered twice (a copy ``part-00000 (1).jsonl.gz``, a rename, a symlink inside the
    zone) would double every count it holds (issue 17: revenue 357,000 -> 715,000); equal
    bytes are the same delivery. The marker's checksums are used when the day is complete
    (``status`` verified them just now), else each file is hashed. Raises
    :class:`LandingError` for a link that leaves the zone.
    """
    if escaping := links_outside(landing, source, day):
        raise LandingError(escaping[0])
    known = {f.name: f for f in status.files} if status.complete else {}
    seen: set[str] = set()
    sel = Selection([])
    for path in data_files(day_folder(landing, source, day)):
        if not path.is_file():
            raise LandingError(f"{source}/date={day}/{path.name}: a broken symbolic link")
        entry = known.get(path.name)
        digest = entry.sha256 if entry else sha256_of(path)
        if digest in seen:
            sel.duplicates += 1
            sel.duplicate_lines += entry.lines if entry else describe_file(path).lines
            continue
        seen.add(digest)
        sel.files.append(path)
    return sel


class LandingError(TokumeiError):
    """The landing zone is not fit to be read (its message names files and causes, no values)."""


class LandingIncomplete(LandingError):
    """A source-day is not complete and the run was not told to accept that."""


def refuse_incomplete(status: dict[str, LandingStatus], day: str, *, allow: bool) -> list[str]:
    """The reasons the day is incomplete; raise :class:`LandingIncomplete` unless ``allow``.

    A link leaving the landing zone is refused even when ``allow``: it is not a late day, it
    is data from elsewhere.
    """
    reasons = [s.reason or s.source for s in status.values() if not s.complete]
    for s in status.values():
        if s.problem is Problem.LINK_OUTSIDE:
            raise LandingError(s.reason or s.source)
    if reasons and not allow:
        more = f" (and {len(reasons) - 1} more source(s))" if len(reasons) > 1 else ""
        raise LandingIncomplete(
            f"the landing of {day} is not complete: {reasons[0]}{more}; nothing was read. "
            "Run again when the producer has written its marker, or pass --allow-incomplete "
            "to publish a release marked partial (docs/landing.md)"
        )
    return reasons


def check_landing(
    landing: Path, day: str, sources: Iterable[str], *, lines: bool = True
) -> dict[str, LandingStatus]:
    """:func:`check_day` for every source of the day."""
    return {s: check_day(landing, s, day, lines=lines) for s in sources}
