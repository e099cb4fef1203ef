"""Keyed pseudonyms for linking keys (HMAC-SHA256 via polars-hash, vectorized in Rust).

Why HMAC and not a hash: user ids and cookie ids are guessable (sequential numbers, UUIDs seen in
a browser); a plain hash can be reversed by hashing every candidate. With a secret key that
never leaves the secret store, the pseudonym is a stable join key inside one release and useless
outside it. Each key kind gets its own domain prefix, so the same string used as a user id and as
a cookie id never collides into one person.

Example:
    >>> import polars as pl, secrets
    >>> df = pl.DataFrame({"user_id": ["u1", None]})
    >>> key = secrets.token_hex(32)  # a test key; real ones come from the secret store
    >>> out = df.select(pseudonymize(pl.col("user_id"), key=key, domain="user"))
    >>> out["user_id"][1] is None
    True
"""

from __future__ import annotations

import polars as pl
import polars_hash as plh

from tokumei.infra.secrets import MIN_KEY_LENGTH, WeakKeyError, check_key

__all__ = ["MIN_KEY_LENGTH", "WeakKeyError", "check_key", "pseudonymize"]

def pseudonymize(col: pl.Expr, key: str, domain: str) -> pl.Expr:
    """HMAC-SHA256 of ``"<domain>:<value>"`` as 64 hex characters; null stays null."""
    check_key(key)
    name = col.meta.output_name()
    text = pl.concat_str([pl.lit(f"{domain}:"), col.cast(pl.String)])
    return _hmac(text, key).alias(name)


def _hmac(text: pl.Expr, key: str) -> pl.Expr:
    # Importing polars_hash registers the `chash` namespace on every Polars expression.
    return plh.CryptographicHashingNameSpace(text).hmac_sha256(key=key)
