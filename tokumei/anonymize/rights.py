"""Rights and consent filtering: who may be in today's statistics at all.

Fail closed: a person is kept only with a positive analytics consent and no deletion, ceasing or
analytics opt-out request (any status but ``rejected``: a pending request is already binding).
Logged-out traffic has no user record, so its cookie's banner consent decides; a cookie without
a consent record is excluded. All functions take and return LazyFrames on raw ids, and run before
pseudonymization so that excluded persons never reach a pseudonymized layer.
"""

from __future__ import annotations

import polars as pl

EXCLUDING_KINDS = ("deletion", "ceasing", "opt_out_analytics")


def excluded_by_request(rights_requests: pl.LazyFrame) -> pl.LazyFrame:
    """User ids with a binding deletion / ceasing / opt-out request."""
    return (
        rights_requests.filter(
            pl.col("kind").is_in(EXCLUDING_KINDS)
            & (pl.col("status").fill_null("pending") != "rejected")
        )
        .select(pl.col("user_id").cast(pl.String))
        .unique()
    )


def allowed_users(consents: pl.LazyFrame, rights_requests: pl.LazyFrame) -> pl.LazyFrame:
    """User ids whose *latest* analytics consent is granted and who have no binding request.

    Example:
        >>> import polars as pl
        >>> c = pl.LazyFrame({"user_id": ["a", "b"], "purpose": ["analytics"] * 2,
        ...                   "granted": [True, False], "updated_at": [None, None]})
        >>> r = pl.LazyFrame(schema={"user_id": pl.String, "kind": pl.String, "status": pl.String})
        >>> allowed_users(c, r).collect()["user_id"].to_list()
        ['a']
    """
    latest = (
        consents.filter(pl.col("purpose") == "analytics")
        .sort("updated_at", nulls_last=False)
        .group_by("user_id")
        .agg(pl.col("granted").last())
        .filter(pl.col("granted"))
        .select(pl.col("user_id").cast(pl.String))
    )
    return latest.join(excluded_by_request(rights_requests), on="user_id", how="anti")


def keep_expr(user_col: str, cookie_consent_col: str | None) -> pl.Expr:
    """The keep rule on a frame that already carries ``_user_allowed`` (joined) columns.

    A known user needs ``_user_allowed``; and a cookie that explicitly refused analytics is
    dropped even for a logged-in user. Without a user, the cookie's consent must be ``True``.
    """
    user_ok = pl.col("_user_allowed").fill_null(False)
    if cookie_consent_col is None:
        return pl.col(user_col).is_not_null() & user_ok
    cookie = pl.col(cookie_consent_col)
    return (
        pl.when(pl.col(user_col).is_not_null())
        .then(user_ok & cookie.fill_null(True))
        .otherwise(cookie.fill_null(False))
    )


def mark_allowed(frame: pl.LazyFrame, user_col: str, allowed: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``_user_allowed`` (bool) by joining ``allowed`` user ids on ``user_col``."""
    flags = allowed.select(pl.col("user_id").alias(user_col), pl.lit(True).alias("_user_allowed"))
    return frame.join(flags, on=user_col, how="left")
