"""Errors that are safe to show: their messages carry names and counts, never data values.

Anything else raised inside a step (a Polars or DuckDB error may quote a value) is reported by
:func:`safe_reason` as its cause in words when the cause is a known one (an errno, a fixed
phrase of a library, ``UnicodeDecodeError``...), with the file it is about, and otherwise as its
type only, so raw PII cannot leak into logs, XComs or the terminal. The words come from our
tables, never from the exception's message.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path


class SafeMessage:
    """Marker for exceptions whose messages we wrote to carry names and counts only.

    Domain packages mark their own errors with it (``class PolicyError(SafeMessage, ValueError)``),
    so this infrastructure module needs to import none of them.
    """


class TokumeiError(RuntimeError):
    """A failure whose message was written by us and is safe to print."""


class MissingSecretError(TokumeiError):
    """No pseudonymization key in the secret store: the run refuses to start."""


class ValidationFailed(TokumeiError):
    """An output failed its Great Expectations suite: nothing is published."""


class BooksDoNotBalance(TokumeiError):
    """Row accounting does not add up (docs/architecture.md §1.3): nothing is published."""


class FileError(SafeMessage, OSError):
    """A file could not be read or written; the message names the file and the cause in words.

    Raised by :func:`about_file`, which attaches the file (relative to the landing or the
    output) where the failure happens, since the exceptions of the readers (Arrow, Polars,
    DuckDB, zlib) often name neither.
    """


SAFE_ERRORS: tuple[type, ...] = (TokumeiError, SafeMessage)

#: errno → what went wrong, in words, and how it relates to the file ("on", "in").
_ERRNO: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "writing"),
    errno.EDQUOT: ("disk quota exceeded", "writing"),
    errno.EACCES: ("permission denied", "on"),
    errno.EPERM: ("operation not permitted", "on"),
    errno.EROFS: ("read-only file system", "writing"),
    errno.ENOENT: ("no such file or directory", ":"),
    errno.EISDIR: ("is a directory", ":"),
    errno.ENOTDIR: ("not a directory", ":"),
    errno.EIO: ("input/output error", "on"),
    errno.EMFILE: ("too many open files", "opening"),
    errno.ENOMEM: ("out of memory", "at"),
    errno.EFBIG: ("file too large", "writing"),
}

#: Fixed phrases of library messages (Arrow, Polars, DuckDB, zlib, Python) → words. Only the
#: words on the right are ever shown: the message itself may quote data.
_PHRASES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), words, prep)
    for pattern, words, prep in (
        (r"truncated compressed stream|end-of-stream marker", "truncated gzip stream", "in"),
        (r"not a gzipped file|bad gzip|incorrect header check|invalid gzip", "not a gzip file", "in"),
        (r"inflate failed|invalid (?:block type|distance|code|stored block)", "corrupt gzip data", "in"),
        (r"no space left on device|os error 28\b", "no space left on device", "writing"),
        (r"disk quota exceeded|os error 122\b", "disk quota exceeded", "writing"),
        (r"read-only file system|os error 30\b", "read-only file system", "writing"),
        (r"permission denied|os error 13\b", "permission denied", "on"),
        (r"no such file or directory|os error 2\b", "no such file or directory", ":"),
        (r"out of memory|cannot allocate memory|os error 12\b", "out of memory", "at"),
    )
)

_TYPES: tuple[tuple[type[BaseException], str, str], ...] = (
    (UnicodeDecodeError, "text that is not valid UTF-8", "in"),
    (EOFError, "truncated gzip stream", "in"),
    (zlib.error, "corrupt compressed data", "in"),
    (MemoryError, "out of memory", "at"),
)


def _cause(exc: BaseException) -> tuple[str, str] | None:
    """The cause of ``exc`` (or of an exception it wraps) in words, with its preposition."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ERRNO:
            return _ERRNO[current.errno]
        for kind, words, prep in _TYPES:
            if isinstance(current, kind):
                return words, prep
        text = str(current.args[0]) if current.args else ""
        for pattern, words, prep in _PHRASES:
            if pattern.search(text[:2000]):
                return words, prep
        current = current.__cause__ or current.__context__
    return None


Roots = Sequence[tuple[Path, str]]


def relative(path: str | os.PathLike[str], roots: Roots = ()) -> str:
    """``path`` relative to the innermost root it is under, prefixed with that root's label:
    ``events/date=…/part-0.jsonl.gz`` (landing, label ``""``), ``out/published`` (output,
    label ``out``). Paths are locations the operator chose, never data values."""
    p = Path(os.fspath(path))
    best: tuple[int, str] | None = None
    for root, label in roots:
        try:
            rel = p.relative_to(root)
        except ValueError:
            continue
        depth = len(root.parts)
        if best is None or depth > best[0]:
            text = rel.as_posix() if rel.parts else "."
            best = (depth, f"{label}/{text}".lstrip("/") if label else text)
    return best[1] if best else str(p)


def _file_of(exc: BaseException, roots: Roots) -> str | None:
    """The file a failure is about: attached by :func:`about_file`, an ``OSError``'s file name,
    or else the ``path`` local of the innermost frame that has one under a root (the readers
    of the landing and the Parquet writer name their file ``path``)."""
    explicit = getattr(exc, "tokumei_file", None)
    if explicit:
        return str(explicit)
    if isinstance(exc, OSError) and exc.filename:
        return relative(exc.filename, roots)
    found = None
    tb = exc.__traceback__
    while tb is not None and roots:
        candidate = tb.tb_frame.f_locals.get("path")
        if isinstance(candidate, Path) and any(
            candidate.is_relative_to(root) for root, _ in roots
        ):
            found = relative(candidate, roots)
        tb = tb.tb_next
    return found


def describe(exc: BaseException, roots: Roots = ()) -> str | None:
    """``"<cause> <prep> <file>"`` in words, or None when the cause is not a known one."""
    cause = _cause(exc)
    if cause is None:
        return None
    words, prep = cause
    where = _file_of(exc, roots)
    if not where:
        return words
    return f"{words}: {where}" if prep == ":" else f"{words} {prep} {where}"


def safe_reason(exc: BaseException, step: str, roots: Roots = ()) -> str:
    """A one-line reason for ``exc`` raised in ``step`` that never includes data values.

    Our own errors print their message; a known cause (errno, a fixed library phrase, a type
    such as ``UnicodeDecodeError``) prints in words with the file when it can be found
    (``roots``: landing and output, see :func:`relative`); anything else prints its type only.
    """
    if isinstance(exc, SAFE_ERRORS):
        return f"{step}: {exc}"
    words = describe(exc, roots)
    if words:
        return f"{step}: {words}"
    where = _file_of(exc, roots)
    about = f" ({where})" if where else ""
    return (
        f"{step}: {type(exc).__module__}.{type(exc).__name__}{about} "
        "(details withheld because they may contain data; rerun with --debug locally)"
    )


@contextlib.contextmanager
def about_file(path: str | os.PathLike[str], roots: Roots = ()) -> Iterator[None]:
    """Failures inside the block are about ``path``: a known cause becomes a :class:`FileError`
    naming the file; any other exception keeps its type, with the file attached for
    :func:`safe_reason`. Our own errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, SAFE_ERRORS):
            raise
        where = relative(path, roots)
        cause = _cause(exc)
        if cause is not None:
            words, prep = cause
            text = f"{words}: {where}" if prep == ":" else f"{words} {prep} {where}"
            raise FileError(text) from exc
        with contextlib.suppress(AttributeError, TypeError):
            exc.tokumei_file = where  # type: ignore[attr-defined]
        raise


def without_traceback(record: logging.LogRecord) -> bool:
    """Logging filter for ``tokumei run`` without ``--debug``: libraries (GX on a full disk,
    say) log tracebacks whose text may quote data; the run's one-line reason says what failed."""
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
    return True
