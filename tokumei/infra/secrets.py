"""The pseudonymization key, from the secret store only (docs/architecture.md §6).

Order: Airflow connection ``tokumei_pseudonym_key`` (its password), Airflow variable of the same
name (only when running inside Airflow), then the environment variable ``TOKUMEI_PSEUDONYM_KEY``.
The key is returned to the one step that needs it and is never logged, written or put in XCom.
"""

from __future__ import annotations

import math
import os
import re

from tokumei.infra.errors import MissingSecretError, SafeMessage

KEY_NAME = "tokumei_pseudonym_key"
ENV_NAME = "TOKUMEI_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 32


class WeakKeyError(SafeMessage, ValueError):
    """The pseudonymization key is too weak to resist guessing; the message never shows it."""


#: Bits a key must carry by :func:`key_bits`: an attacker who can guess the key can link every
#: pseudonym back to its identifier by hashing candidate ids (docs/architecture.md §6).
MIN_KEY_BITS = 128

_CLASSES: tuple[tuple[str, int], ...] = (
    (r"[a-z]", 26),
    (r"[A-Z]", 26),
    (r"[0-9]", 10),
    (r"[!-/:-@\[-`{-~]", 32),  # ASCII punctuation
    (r"[^\x00-\x7f]", 1000),  # any non-ASCII character: generous on purpose
)
_HEX = re.compile(r"^(?:[0-9a-f]+|[0-9A-F]+)$")


def _core(key: str) -> str:
    """The key without its obvious redundancy: its shortest repeating unit, runs of four or
    more identical characters counted once."""
    n = len(key)
    for period in range(1, n // 2 + 1):
        if n % period == 0 and key[:period] * (n // period) == key:
            key = key[:period]
            break
    return re.sub(r"(.)\1{3,}", r"\1", key)


def key_bits(key: str) -> float:
    """A simple, deliberately conservative estimate of the key's entropy in bits.

    Why an estimate of our own: password meters (zxcvbn and the like) score human-chosen
    passwords and undervalue the random hex and base64 keys operators are told to generate,
    while what must be refused here is the obvious: short keys, whitespace, repeated patterns.
    Estimate: ``len(core) * log2(alphabet)``, where the core drops repetition (:func:`_core`)
    and the alphabet is the one the character classes imply (16 for hex), or the number of
    distinct characters when the key uses fewer than half of that alphabet. A key of spaces
    (whitespace is no class) and a key of one repeated character both score 0.
    """
    core = _core(key.strip())
    if not core or core.isspace():
        return 0.0
    if _HEX.match(core):
        alphabet = 16
    else:
        alphabet = sum(size for pattern, size in _CLASSES if re.search(pattern, core))
    distinct = len(set(core))
    if distinct < alphabet / 2:
        alphabet = distinct
    return len(core) * math.log2(alphabet) if alphabet > 1 else 0.0


def check_key(key: str) -> None:
    """Refuse keys shorter than 32 characters or below ``MIN_KEY_BITS`` by :func:`key_bits`.

    The message names the length and the estimate only, never the key or a part of it.
    """
    hint = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
    if len(key) < MIN_KEY_LENGTH:
        raise WeakKeyError(
            f"the pseudonymization key must have at least {MIN_KEY_LENGTH} characters "
            f"(it has {len(key)}); {hint}"
        )
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        what = (
            "is whitespace only"
            if not key.strip()
            else "repeats a pattern or uses too few characters"
        )
        raise WeakKeyError(
            f"the pseudonymization key is too weak: it {what} (about {bits:.0f} bits by a "
            f"simple estimate; at least {MIN_KEY_BITS} are required); {hint}"
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
