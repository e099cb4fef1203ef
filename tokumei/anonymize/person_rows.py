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
from tokumei.anonymize.rights import keep_expr

#: The keyed digest of a row's ``event_key`` columns (policy), kept in the work layer so that
#: the same event delivered in two files is counted once: both copies belong to one person, so
#: they land in one partition, where :func:`dedup_events` keeps the first.
EVENT_KEY = "_event_key"

_FB = "_fb"
_OWNER = "_owner"
_CONSENT = "_consent"
_USER = "_user"
_ROW = "_owner_row"
#: The column of :attr:`RightsDims.allowed`.
ALLOWED = _USER


def pseudonyms(sp: SourcePolicy, columns: list[str], key: str) -> list[pl.Expr]:
    """Keyed HMAC of ``columns`` of ``sp``, each in its policy ``domain``."""
    return [pseudonymize(pl.col(c), key, sp.domain(c)) for c in columns]


@dataclass(frozen=True)
class RightsDims:
    """Who may be counted, on pseudonyms only (safe to write to the work layer).

    ``allowed``: user pseudonyms (column ``ALLOWED``) with analytics consent and no binding
    request;
    ``owners``: per owners source (policy ``owner:``), the pseudonym of the id other sources
    fall back to → its owner's user pseudonym (and the consent that decides without a user).
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


def owner_map(frame: pl.LazyFrame, sp: SourcePolicy) -> pl.LazyFrame:
    """One row per owned id of an owners source (``owner:``): its last known owner and consent
    (the last export wins), on raw ids (in memory only)."""
    o = sp.owner
    if o is None:
        raise ValueError(f"source {sp.source!r} declares no owner:")
    aggs = [pl.col(o.user).drop_nulls().last().alias(_OWNER)]
    if o.consent:
        aggs.append(pl.col(o.consent).drop_nulls().last().alias(_CONSENT))
    return frame.group_by(o.key).agg(aggs).rename({o.key: _FB})


def rights_dims(
    allowed: pl.LazyFrame,
    owners: dict[str, tuple[pl.LazyFrame, SourcePolicy]],
    user_domain: str,
    key: str,
) -> RightsDims:
    """The pseudonymous rights dimensions of a run (raw ids stay in memory).

    ``allowed``: the allowed user ids (``tokumei.anonymize.rights.allowed_users``); ``owners``:
    each owners source's typed rows and policy.

    >>> import polars as pl, secrets
    >>> from tokumei.anonymize.policy import default_policy_dir, load_policy
    >>> policy = load_policy(default_policy_dir())
    >>> KEY = secrets.token_hex(32)  # a test key; real ones come from the secret store
    >>> ck = pl.LazyFrame({"cookie_id": ["c1"], "user_id": ["a"], "consent_analytics": [True]})
    >>> dims = rights_dims(pl.LazyFrame({"user_id": ["a"]}),
    ...                    {"cookies": (ck, policy.source("cookies"))}, "user", KEY)
    >>> dims.allowed.height, dims.owners["cookies"].columns
    (1, ['_fb', '_owner', '_consent'])
    """
    # allowed_users gives the operational DB's user ids (its schema: tokumei/ingest/opdb_schema.py)
    plans = [allowed.select(pseudonymize(pl.col("user_id"), key, user_domain).alias(_USER))]
    for frame, sp in owners.values():
        o = sp.owner
        assert o is not None  # owner_map raises otherwise
        plans.append(
            owner_map(frame, sp).with_columns(
                pseudonymize(pl.col(_FB), key, sp.domain(o.key)),
                pseudonymize(pl.col(_OWNER), key, sp.domain(o.user)),
            )
        )
    frames = pl.collect_all(plans)
    return RightsDims(frames[0], dict(zip(owners, frames[1:], strict=True)))


def on_day(ts: str, day: date) -> pl.Expr:
    """The row's JST date is the run's date (late or early exports belong to another day)."""
    return pl.col(ts).dt.convert_time_zone("Asia/Tokyo").dt.date() == day


def flag_rows(
    frame: pl.LazyFrame, sp: SourcePolicy, key: str, dims: RightsDims, day: date
) -> pl.LazyFrame:
    """Drop identifiers, HMAC linking keys, add ``person`` and the ``_keep`` / ``_scope`` flags.

    The source's ``person:`` (policy) says whose row it is: ``person`` is the user pseudonym when
    the person is known (the row's own id, else the fallback id's owner), else the fallback id's
    pseudonym: the unit every count and every k counts. ``_keep``: the rights rule
    (:func:`tokumei.anonymize.rights.keep_expr`, the owner's consent deciding for rows without a
    user where the owners source has one); ``_scope``: the row's ``day`` column is the run's day.
    """
    who = sp.person
    if who is None or not (who.fallback and who.owners and who.day):
        raise ValueError(f"source {sp.source!r} declares no person: with fallback, owners, day")
    names = frame.collect_schema().names()
    linking = [c for c in sp.by_role(Role.LINKING_KEY) if c in names]
    if sp.event_key:  # digested from the raw values, before any of them is hashed or dropped
        # a null is a value of its own ("\x00"): concat_str would make the whole key null
        parts = [pl.col(c).cast(pl.String).fill_null("\x00") for c in sp.event_key]
        raw = pl.concat_str(parts, separator="\x1f")
        frame = frame.with_columns(pseudonymize(raw.alias(EVENT_KEY), key, "event"))
    frame = frame.drop(sp.by_role(*DROPPED_ROLES), strict=False).with_columns(
        pseudonyms(sp, linking, key)
    )

    # a linking key already replaced by its pseudonym in its own domain is not hashed twice
    def pseudonym(column: str) -> pl.Expr:
        col = pl.col(column)
        return col if column in linking else pseudonymize(col, key, sp.domain(column))

    # Looked up, not joined: a join gathers every raw column of the file twice to add three
    # (10M-event day: 2.4 -> 1.8 CPU-s per 1M-line file, the same flags). The fallback id is
    # looked up once, to its row in the owners map, and owner and consent gathered from that
    # row: each lookup hashes the whole map (752,664 cookies), so two lookups cost 1.67 CPU-s
    # per 1M events and one with two gathers 0.92 (bench/results/scale.md, session 13).
    owners = dims.owners[who.owners]
    consent = _CONSENT if _CONSENT in owners.columns else None
    rows = pl.Series(_ROW, range(owners.height), dtype=pl.UInt32)

    def owner_of(column: str) -> pl.Expr:
        return pl.lit(owners[column]).gather(pl.col(_ROW)).alias(column)

    return (
        frame.with_columns(pseudonym(who.fallback).alias(_FB), pseudonym(who.id).alias("_uid"))
        .with_columns(pl.col(_FB).replace_strict(owners[_FB], rows, default=None).alias(_ROW))
        .with_columns(owner_of(_OWNER), *([owner_of(_CONSENT)] if consent else []))
        .with_columns(pl.coalesce("_uid", _OWNER).alias(_USER))
        .with_columns(pl.col(_USER).is_in(dims.allowed[ALLOWED].implode()).alias("_user_allowed"))
        .with_columns(
            keep_expr(_USER, consent).alias("_keep"),
            on_day(who.day, day).fill_null(False).alias("_scope"),
            pl.coalesce(_USER, _FB).alias(PERSON),
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
    """Every row through the compiled policy plan, with its ``_keep`` / ``_scope`` flags (only
    the plan's columns continue, and the event key digest where the policy declares one).

    Why every row, and the filter after (:func:`kept_rows`): the plan's expressions are per
    row, so the few excluded rows cost little, while collecting the flagged frame before
    generalizing held every raw column of the file a second time (peak RSS of the 10M-event
    day's ingest, two files in flight: bench/results/scale.md).
    """
    extra = [pl.col(EVENT_KEY)] if EVENT_KEY in flagged.collect_schema() else []
    return flagged.select(*plan.select(day), *extra, pl.col("_keep"), pl.col("_scope"))


def kept_rows(rows: pl.LazyFrame) -> pl.LazyFrame:
    """The rows the rights and day rules keep, without their flags."""
    return rows.filter(pl.col("_keep") & pl.col("_scope")).drop("_keep", "_scope")


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
