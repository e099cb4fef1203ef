"""The pseudonymization key, from the secret store only (docs/architecture.md §6).

Order: Airflow connection ``tokumei_pseudonym_key`` (its password), Airflow variable of the same
name (only when running inside Airflow), then the environment variable ``TOKUMEI_PSEUDONYM_KEY``.
The key is returned to the one step that needs it and is never logged, written or put in XCom.
"""

from __future__ import annotations

import os

from tokumei.infra.errors import MissingSecretError, SafeMessage

KEY_NAME = "tokumei_pseudonym_key"
ENV_NAME = "TOKUMEI_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 32


class WeakKeyError(SafeMessage, ValueError):
    """The pseudonymization key is too short to resist guessing."""


def check_key(key: str) -> None:
    """Refuse keys shorter than 32 characters (128+ bits of a random key, hex or base64)."""
    if len(key) < MIN_KEY_LENGTH:
        raise WeakKeyError(
            f"the pseudonymization key must have at least {MIN_KEY_LENGTH} characters "
            f"(it has {len(key)}); generate one with: python -c "
            "'import secrets; print(secrets.token_hex(32))'"
        )


def _from_airflow() -> str | None:
    try:
        from airflow.sdk import Connection, Variable
    except ImportError:  # pragma: no cover - airflow is a dependency, but stay usable without
        return None
    try:
        return Connection.get(KEY_NAME).password or None
    except Exception:  # noqa: BLE001 - "not found" has several exception types across backends
        pass
    try:
        return Variable.get(KEY_NAME, default=None)
    except Exception:  # noqa: BLE001
        return None


def pseudonym_key(in_airflow: bool = False) -> str:
    """The key, checked for strength; :class:`MissingSecretError` when there is none."""
    key = (_from_airflow() if in_airflow else None) or os.environ.get(ENV_NAME)
    if not key:
        where = f"the Airflow connection or variable {KEY_NAME!r} or " if in_airflow else ""
        raise MissingSecretError(
            f"no pseudonymization key: set {where}the environment variable {ENV_NAME} "
            "(a random string of at least 32 characters); the run refuses to start without it"
        )
    check_key(key)
    return key
