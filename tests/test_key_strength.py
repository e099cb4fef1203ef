"""The pseudonymization key is refused unless it carries >= 128 bits by a simple estimate."""

from __future__ import annotations

import secrets

import pytest
from conftest import TEST_KEY

from tokumei.infra.secrets import (
    MIN_KEY_BITS,
    WeakKeyError,
    check_key,
    key_bits,
    pseudonym_key,
)

WEAK = {
    "40 spaces": " " * 40,
    "tabs and newlines": "\t\n " * 14,
    "one character": "k" * 40,
    "a repeated word": "password1234567890" * 2,
    "a repeated hex run": "0123456789abcdef" * 3,
    "two letters": "ab" * 20,
    "runs of letters": "".join(c * 4 for c in "abcdefghij"),
    "binary digits": "0110100111010010" * 2 + "1001011000101101" * 2,
}


@pytest.mark.parametrize("key", WEAK.values(), ids=WEAK.keys())
def test_weak_keys_are_refused_without_showing_the_key(key: str) -> None:
    with pytest.raises(WeakKeyError) as err:
        check_key(key)
    message = str(err.value)
    assert "too weak" in message and f"at least {MIN_KEY_BITS}" in message
    core = key.strip() or key
    assert core[:4] not in message.replace("token_hex", "")


def test_whitespace_key_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", " " * 40)
    with pytest.raises(WeakKeyError, match="whitespace only"):
        pseudonym_key()


def test_short_key_is_refused() -> None:
    with pytest.raises(WeakKeyError, match="at least 32 characters"):
        check_key(secrets.token_hex(8))


@pytest.mark.parametrize(
    "key",
    [TEST_KEY, secrets.token_hex(32), secrets.token_urlsafe(32), secrets.token_hex(20)],
    ids=["test-key", "hex-64", "base64url-43", "hex-40"],
)
def test_random_and_test_keys_pass(key: str) -> None:
    check_key(key)
    assert key_bits(key) >= MIN_KEY_BITS


def test_estimate_counts_the_alphabet_actually_used() -> None:
    assert key_bits("0123456789abcdef" * 2) == pytest.approx(64.0)  # one repeated 16-hex unit
    assert key_bits("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6") == pytest.approx(128.0)  # 32 hex chars
    assert key_bits(" " * 40) == 0.0
