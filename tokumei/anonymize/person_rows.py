"""One landing file's rows → pseudonymous, rights-filtered, generalized rows, in one pass.

Why one pass (issue 16): each layer written between reading a file and generalizing it was a
copy of raw identifiers at rest (a SIGKILL left it on disk) and cost a full write and read of
the day. Here the typed frame of one file is pseudonymized, filtered by rights and day, and put
through the compiled policy plan in memory; only the result is written. The rights filter runs
on pseudonyms: the operational DB's consents and requests, and the cookie and device owners, are
reduced to pseudonymous dimensions (:class:`RightsDims`) once per run, so no raw id is joined on
disk. HMAC is injective in practice, so filtering on pseudonyms keeps exactly who filtering on
raw ids kept. See docs/architecture.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from tokumei.anonymize.compile import PERSON, SourcePlan
from tokumei.anonymize.policy import DROPPED_ROLES, Role, SourcePolicy
from tokumei.anonymize.pseudonymize import pseudonymize
from tokumei.anonymize.rights import allowed_users, cookie_owner, keep_expr

#: Linking keys → pseudonym domain. The domain keeps a user id and a cookie id with the same
#: text from colliding into one person.
KEY_DOMAINS = {
    "user_id": "user",
    "cookie_id": "cookie",
    "device_id": "device",
    "session_id": "session",
    "ad_id": "ad",
    "mac": "mac",
    "serial": "serial",
}

#: Per person-level source: the id that stands for the person when there is no user id, and
#: whether its owner's banner consent decides for logged-out rows (cookies do, devices do not).
FALLBACK_IDS: dict[str, tuple[str, bool]] = {
    "events": ("cookie_id", True),
    "measurements": ("device_id", False),
}

#: The keyed digest of a row's ``event_key`` columns (policy), kept in the work layer so that
#: the same event delivered in two files is counted once: both copies belong to one person, so
#: they land in one partition, where :func:`dedup_events` keeps the first.
EVENT_KEY = "_event_key"

_OWNER = "_owner"
_USER = "_user"
_CONSENT = "consent_analytics"


@dataclass(frozen=True)
class RightsDims:
    """Who may be counted, on pseudonyms only (safe to write to the work layer).

    ``allowed``: user pseudonyms with analytics consent and no binding request;
    ``owners``: per fallback id (``cookie_id``, ``device_id``), its pseudonym → the owner's user
    pseudonym (and, for cookies, the banner consent).
    """

    allowed: pl.DataFrame
    owners: dict[str, pl.DataFrame]

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.allowed.write_parquet(folder / "allowed.parquet")
        for name, frame in self.owners.items():
            frame.write_parquet(folder / f"owners_{name}.parquet")

    @classmethod
    def read(cls, folder: Path) -> RightsDims:
        owners = {
            p.stem.removeprefix("owners_"): pl.read_parquet(p)
            for p in sorted(folder.glob("owners_*.parquet"))
        }
        return cls(pl.read_parquet(folder / "allowed.parquet"), owners)


def rights_dims(
    consents: pl.LazyFrame,
    requests: pl.LazyFrame,
    cookies: pl.LazyFrame,
    devices: pl.LazyFrame,
    key: str,
) -> RightsDims:
    """The pseudonymous rights dimensions of a run (raw ids stay in memory).

    >>> import polars as pl
    >>> c = pl.LazyFrame({"user_id": ["a"], "purpose": ["analytics"], "granted": [True],
    ...                   "updated_at": [None]})
    >>> r = pl.LazyFrame(schema={"user_id": pl.String, "kind": pl.String, "status": pl.String})
    >>> ck = pl.LazyFrame({"cookie_id": ["c1"], "user_id": ["a"], "consent_analytics": [True]})
    >>> dv = pl.LazyFrame({"device_id": ["d1"], "user_id": ["a"]})
    >>> dims = rights_dims(c, r, ck, dv, "k" * 40)
    >>> dims.allowed.height, sorted(dims.owners)
    (1, ['cookie_id', 'device_id'])
    """
    allowed = allowed_users(consents, requests).select(pseudonymize(pl.col("user_id"), key, "user"))
    cookie = cookie_owner(cookies).select(
        pseudonymize(pl.col("cookie_id"), key, KEY_DOMAINS["cookie_id"]),
        pseudonymize(pl.col("cookie_user_id"), key, "user").alias(_OWNER),
        pl.col(_CONSENT),
    )
    device = (
        devices.group_by("device_id")
        .agg(pl.col("user_id").drop_nulls().last())
        .select(
            pseudonymize(pl.col("device_id"), key, KEY_DOMAINS["device_id"]),
            pseudonymize(pl.col("user_id"), key, "user").alias(_OWNER),
        )
    )
    allowed_df, cookie_df, device_df = pl.collect_all([allowed, cookie, device])
    return RightsDims(allowed_df, {"cookie_id": cookie_df, "device_id": device_df})


def on_day(ts: str, day: date) -> pl.Expr:
    """The row's JST date is the run's date (late or early exports belong to another day)."""
    return pl.col(ts).dt.convert_time_zone("Asia/Tokyo").dt.date() == day


def flag_rows(
    frame: pl.LazyFrame, source: str, sp: SourcePolicy, key: str, dims: RightsDims, day: date
) -> pl.LazyFrame:
    """Drop identifiers, HMAC linking keys, add ``person`` and the ``_keep`` / ``_scope`` flags.

    ``person`` is the user pseudonym when the person is known (the row's own user id, else the
    fallback id's owner), else the fallback id's pseudonym: the unit every count and every k
    counts. ``_keep``: the rights rule (:func:`tokumei.anonymize.rights.keep_expr`);
    ``_scope``: the row belongs to the run's day.
    """
    fallback, consent = FALLBACK_IDS[source]
    names = frame.collect_schema().names()
    linking = [c for c in sp.by_role(Role.LINKING_KEY) if c in names]
    if sp.event_key:  # digested from the raw values, before any of them is hashed or dropped
        # a null is a value of its own ("\x00"): concat_str would make the whole key null
        parts = [pl.col(c).cast(pl.String).fill_null("\x00") for c in sp.event_key]
        raw = pl.concat_str(parts, separator="\x1f")
        frame = frame.with_columns(pseudonymize(raw.alias(EVENT_KEY), key, "event"))
    frame = frame.drop(sp.by_role(*DROPPED_ROLES), strict=False).with_columns(
        pseudonymize(pl.col(c), key, KEY_DOMAINS.get(c, c)) for c in linking
    )
    # a linking key already replaced by its pseudonym in its own domain is not hashed twice
    user = (
        pl.col("user_id") if "user_id" in linking else pseudonymize(pl.col("user_id"), key, "user")
    )
    fb = (
        pl.col(fallback)
        if fallback in linking
        else pseudonymize(pl.col(fallback), key, KEY_DOMAINS[fallback])
    )
    owners = dims.owners[fallback].lazy()
    allowed = dims.allowed.lazy().select(
        pl.col("user_id").alias(_USER), pl.lit(True).alias("_user_allowed")
    )
    return (
        frame.with_columns(fb.alias("_fb"), user.alias("_uid"))
        .join(owners.rename({fallback: "_fb"}), on="_fb", how="left", maintain_order="left")
        .with_columns(pl.coalesce("_uid", _OWNER).alias(_USER))
        .join(allowed, on=_USER, how="left", maintain_order="left")
        .with_columns(
            keep_expr(_USER, _CONSENT if consent else None).alias("_keep"),
            on_day("ts", day).fill_null(False).alias("_scope"),
            pl.coalesce(_USER, "_fb").alias(PERSON),
        )
    )


def count_flags(flagged: pl.DataFrame) -> dict[str, int]:
    """The rights filter's books of one file: input, excluded by rights, dropped by rule, kept."""
    row = flagged.select(
        pl.len().alias("input"),
        (~pl.col("_keep")).sum().alias("excluded_by_rights"),
        (pl.col("_keep") & ~pl.col("_scope")).sum().alias("dropped_by_rule"),
        (pl.col("_keep") & pl.col("_scope")).sum().alias("kept"),
    ).row(0, named=True)
    return {k: int(v) for k, v in row.items()}


def generalized_rows(flagged: pl.LazyFrame, plan: SourcePlan, day: date) -> pl.LazyFrame:
    """The kept, in-scope rows through the compiled policy plan (only its columns continue,
    and the event key digest where the policy declares one)."""
    extra = [pl.col(EVENT_KEY)] if EVENT_KEY in flagged.collect_schema() else []
    return flagged.filter(pl.col("_keep") & pl.col("_scope")).select(*plan.select(day), *extra)


def dedup_events(rows: pl.LazyFrame) -> pl.LazyFrame:
    """One row per event key (the first, in file order), the digest dropped; rows of a source
    without an event key pass unchanged.

    >>> import polars as pl
    >>> rows = pl.LazyFrame({"person": ["p", "p", "p"], EVENT_KEY: ["a", "a", "b"]})
    >>> dedup_events(rows).collect().height
    2
    """
    if EVENT_KEY not in rows.collect_schema():
        return rows
    return rows.unique(subset=[EVENT_KEY], keep="first", maintain_order=True).drop(EVENT_KEY)


def duplicate_rows(rows: pl.LazyFrame) -> int:
    """Rows :func:`dedup_events` drops (0 without an event key)."""
    if EVENT_KEY not in rows.collect_schema():
        return 0
    n = rows.select(pl.len() - pl.col(EVENT_KEY).n_unique()).collect(engine="streaming")
    return int(n.item())
