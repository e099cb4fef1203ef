"""The operational database schema (docs/architecture.md §3), as SQLAlchemy Core metadata.

One definition serves both sides of the contract: ``tokumei generate`` creates and fills these
tables, and the pipeline reads users, consents and rights requests through the same ``Table``
objects, so a column renamed here breaks both at once instead of drifting apart silently.

Only portable types are used so the same metadata works on SQLite (the default, a file) and on
PostgreSQL (production). No foreign keys: rights processing deletes users while consents and
requests must survive as evidence, and SQLite would not enforce them anyway.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

PURPOSES: tuple[str, ...] = ("analytics", "ads", "location")
RIGHTS_KINDS: tuple[str, ...] = ("deletion", "ceasing", "opt_out_analytics")
REQUEST_STATUSES: tuple[str, ...] = ("pending", "done")
GENDERS: tuple[str, ...] = ("male", "female", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL ``IN`` check text; a typo'd enum value must fail at insert, not in a later report."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("email", String(254)),
    Column("username", String(64)),
    Column("full_name", String(128)),
    Column("full_name_kana", String(128)),
    Column("birth_date", Date),
    Column("gender", String(8)),
    Column("occupation", String(128)),
    Column("postal_code", String(8)),
    Column("prefecture", String(8)),
    Column("address", String(256)),
    Column("phone", String(32)),
    Column("my_number", String(12)),
    Column("card_number", String(19)),
    Column("created_at", DateTime(timezone=True)),
    CheckConstraint(f"gender IS NULL OR {_in('gender', GENDERS)}", name="ck_users_gender"),
)

consents = Table(
    "consents",
    metadata,
    Column("user_id", String(40), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("user_id", "purpose", name="pk_consents"),
    CheckConstraint(_in("purpose", PURPOSES), name="ck_consents_purpose"),
)

rights_requests = Table(
    "rights_requests",
    metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    CheckConstraint(_in("kind", RIGHTS_KINDS), name="ck_rights_requests_kind"),
    CheckConstraint(_in("status", REQUEST_STATUSES), name="ck_rights_requests_status"),
    Index("ix_rights_requests_user_id", "user_id"),
)

__all__ = [
    "GENDERS",
    "PURPOSES",
    "REQUEST_STATUSES",
    "RIGHTS_KINDS",
    "consents",
    "metadata",
    "rights_requests",
    "users",
]
