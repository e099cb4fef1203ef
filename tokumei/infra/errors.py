"""Errors that are safe to show: their messages carry names and counts, never data values.

Anything else raised inside a step (a Polars or DuckDB error may quote a value) is reported by
:func:`safe_reason` as its type only, so raw PII cannot leak into logs, XComs or the terminal.
"""

from __future__ import annotations


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


SAFE_ERRORS: tuple[type, ...] = (TokumeiError, SafeMessage)


def safe_reason(exc: BaseException, step: str) -> str:
    """A one-line reason for ``exc`` raised in ``step`` that never includes data values."""
    if isinstance(exc, SAFE_ERRORS):
        return f"{step}: {exc}"
    return (
        f"{step}: {type(exc).__module__}.{type(exc).__name__} "
        "(details withheld because they may contain data; rerun with --debug locally)"
    )
