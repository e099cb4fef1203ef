"""Write one source/date partition as JSON Lines parts, injecting malformed lines on the way.

Polars serialises each chunk (``write_ndjson``), which is fast but only ever writes valid JSON
in valid UTF-8. Real exports are not that clean, so a few serialised lines are replaced by
corrupted *bytes*: truncated JSON, a number where a timestamp belongs, an impossible date, a
missing required field, invalid UTF-8. The pipeline must quarantine exactly these.

Files are deterministic: gzip headers carry no name and ``mtime = 0``. Compression (zlib, which
releases the GIL) runs on a background thread while the next chunk is generated; at most two
chunks are in flight, so memory stays bounded whatever the day's size. When the partition is
closed, the completeness marker ``_SUCCESS.json`` (docs/landing.md) is written last, listing
every part with its size, line count and SHA-256, computed while writing (no second read).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from tokumei.ingest.landing import FileEntry, remove_marker, write_marker

MALFORMED_KINDS = (
    "bad_json", "wrong_type_ts", "wrong_type_value", "impossible_ts", "missing_required",
    "invalid_utf8",
)


@dataclass(frozen=True)
class CorruptionSpec:
    """Which keys of a source each kind of corruption targets."""

    time_key: bytes
    required_key: bytes
    value_key: bytes
    bad_value: bytes


SPECS: dict[str, CorruptionSpec] = {
    "events": CorruptionSpec(b"ts", b"cookie_id", b"amount_jpy", b'"abc"'),
    "devices": CorruptionSpec(b"first_seen", b"device_id", b"os_version", b"[14]"),
    "measurements": CorruptionSpec(b"ts", b"device_id", b"weight_kg", b'"abc"'),
    "cookies": CorruptionSpec(b"first_seen", b"cookie_id", b"consent_ads", b'"yes"'),
}


def corrupt(line: bytes, kind: str, spec: CorruptionSpec, year: int) -> bytes:
    """Return ``line`` broken in the way ``kind`` names (always unparseable or invalid)."""
    if kind == "bad_json":
        return line[: max(1, len(line) // 2)]
    if kind == "wrong_type_ts":
        return re.sub(rb'"' + spec.time_key + rb'":"[^"]*"', b'"' + spec.time_key + b'":12345',
                      line, count=1)
    if kind == "wrong_type_value":
        return re.sub(rb'"' + spec.value_key + rb'":(null|true|false|"[^"]*"|[-0-9.eE+]+)',
                      b'"' + spec.value_key + b'":' + spec.bad_value, line, count=1)
    if kind == "impossible_ts":
        bad = f'"{year}-02-30T25:00:00+09:00"'.encode()
        return re.sub(rb'"' + spec.time_key + rb'":"[^"]*"', b'"' + spec.time_key + b'":' + bad,
                      line, count=1)
    if kind == "missing_required":
        return re.sub(rb'"' + spec.required_key + rb'":"[^"]*",?', b"", line, count=1)
    if kind == "invalid_utf8":
        key = b'"' + spec.required_key + b'":"'
        return line.replace(key, key + b"\xff\xfe\xc3\x28", 1)
    raise ValueError(f"unknown malformed kind {kind!r}")


@dataclass
class PartitionStats:
    """What one partition received: lines, malformed lines by kind, files."""

    lines: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)


class _Hashing(io.RawIOBase):
    """A write-only file that hashes and counts what goes through it (for the marker)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.sha.update(b)
        self.size += len(b)
        return self.raw.write(b)

    def close(self) -> None:
        self.raw.close()
        super().close()


class PartitionWriter:
    """Streams chunks of one ``<landing>/<source>/date=YYYY-MM-DD/`` into ``part-NNNNN`` files."""

    def __init__(
        self, directory: Path, source: str, year: int, *, use_gzip: bool = True,
        max_lines: int = 1_000_000, compresslevel: int = 1,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.directory = directory
        self.spec = SPECS[source]
        self.year = year
        self.use_gzip = use_gzip
        self.max_lines = max_lines
        self.compresslevel = compresslevel
        self.stats = PartitionStats()
        self._pool = pool
        self._pending: list[Future[None]] = []
        self._raw: _Hashing | None = None
        self._out: BinaryIO | None = None
        self._part_lines = 0
        self.entries: list[FileEntry] = []  # closed parts, for the marker
        directory.mkdir(parents=True, exist_ok=True)
        remove_marker(directory)  # a rerun withdraws the day's marker before touching its parts
        for old in directory.glob("part-*"):  # reruns must not leave stale parts behind
            old.unlink()

    def _open(self) -> None:
        suffix = ".jsonl.gz" if self.use_gzip else ".jsonl"
        path = self.directory / f"part-{len(self.stats.files):05d}{suffix}"
        self.stats.files.append(path)
        self._raw = _Hashing(path.open("wb"))
        self._out = (gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0,
                                   compresslevel=self.compresslevel)
                     if self.use_gzip else self._raw)  # type: ignore[assignment]
        self._part_lines = 0

    def _close_part(self) -> None:
        self._drain(0)
        if self._out is not None:
            if self._out is not self._raw:
                self._out.close()
            assert self._raw is not None
            self._raw.close()
            # every row is one line ending in a newline (corruption never adds or drops one)
            self.entries.append(FileEntry(self.stats.files[-1].name, self._raw.size,
                                          self._part_lines, self._raw.sha.hexdigest()))
        self._out = self._raw = None

    def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    def write(self, df: pl.DataFrame, rng: np.random.Generator, malformed_rate: float) -> None:
        """Append ``df``; about ``malformed_rate`` of its lines are replaced by corrupted bytes."""
        offset = 0
        while offset < df.height:
            if self._out is None or self._part_lines >= self.max_lines:
                self._close_part()
                self._open()
            take = min(df.height - offset, self.max_lines - self._part_lines)
            self._write_slice(df.slice(offset, take), rng, malformed_rate)
            offset += take

    def _write_slice(self, df: pl.DataFrame, rng: np.random.Generator, rate: float) -> None:
        buf = io.BytesIO()
        df.write_ndjson(buf)
        data = buf.getvalue()
        n = df.height
        k = int(rng.binomial(n, rate)) if rate > 0 else 0
        pieces: list[bytes | memoryview] = [data]
        if k:
            rows = np.sort(rng.choice(n, size=k, replace=False))
            kinds = rng.integers(0, len(MALFORMED_KINDS), k)
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
            starts = np.concatenate([[0], ends[:-1] + 1])
            mv = memoryview(data)
            pieces, prev = [], 0
            for row, kind_i in zip(rows, kinds, strict=True):
                s, e = int(starts[row]), int(ends[row])
                kind = MALFORMED_KINDS[kind_i]
                pieces.append(mv[prev:s])
                pieces.append(corrupt(data[s:e], kind, self.spec, self.year))
                prev = e
                self.stats.malformed[kind] += 1
            pieces.append(mv[prev:])
        self.stats.lines += n
        self._part_lines += n
        out = self._out
        assert out is not None

        def _emit() -> None:
            for p in pieces:
                out.write(p)

        if self._pool is None:
            _emit()
        else:
            self._drain(1)
            self._pending.append(self._pool.submit(_emit))

    def close(self) -> PartitionStats:
        """Flush and close the last part, then write the day's marker; returns what was written."""
        if self._out is None and not self.stats.files:
            self._open()  # an empty partition still gets an (empty) part file
        self._close_part()
        write_marker(self.directory, self.entries, producer="tokumei generate")
        return self.stats
