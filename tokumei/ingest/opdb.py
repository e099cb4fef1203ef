"""Read the operational database (users, consents, rights requests) into typed Polars frames.

Any SQLAlchemy URL works (SQLite by default, PostgreSQL in production). Columns are checked
against the policy exactly like landing files: an unclassified column stops the run, so does a
policy column the table no longer has, and a special-care column (role ``special_care``) is
never selected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import polars as pl
import sqlalchemy as sa

from tokumei.anonymize.policy import ColumnPolicy, Role, SourcePolicy
from tokumei.infra.errors import SafeMessage
from tokumei.ingest.sources import type_records

#: Rows fetched (and turned into text) per batch.
FETCH_ROWS = 50_000

#: Drivers whose own cursor is read directly (:func:`_batches`), and how to open one that
#: streams: SQLite's steps through the result as it is fetched; psycopg's named cursor is a
#: server-side one (without a name, libpq would hold the whole result in memory).
DRIVER_CURSORS: dict[str, dict[str, str]] = {"pysqlite": {}, "psycopg": {"name": "tokumei_read"}}


class DatabaseError(SafeMessage, RuntimeError):
    """The operational DB cannot be read (the URL's password is never included)."""


def read_table(
    db_url: str, table: str, policy: SourcePolicy, skip_roles: frozenset[Role] = frozenset()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All rows of ``table`` typed by the policy: (good rows, quarantined rows with reasons).

    Values go through text and the same DuckDB checks as landing files, so a DB row with an
    impossible date is quarantined with a reason instead of failing the run or slipping through.
    Row-wise Python here is bounded by the DB tables (users, consents, requests), not by logs.
    Columns of ``skip_roles`` that no check reads (optional text) are not selected: the caller
    drops them anyway, so their values stay in the DB (they come back as nulls).
    """
    engine = sa.create_engine(db_url)
    safe_url = sa.engine.make_url(db_url).render_as_string(hide_password=True)
    batches: list[pl.DataFrame] = []
    driver_error = getattr(engine.dialect.loaded_dbapi, "Error", sa.exc.SQLAlchemyError)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(table):
                raise DatabaseError(f"table {table!r} not found in {safe_url}")
            cols = [c["name"] for c in inspector.get_columns(table)]
            policy.check_columns(cols, where=f"table {table} of {safe_url}")
            # A removed column stops the run like an added one: without birth_date every age
            # band silently became 'unknown' (issue 17). Special-care columns are never read,
            # so their absence is fine.
            gone = [c for c in policy.readable().columns if c not in cols]
            if gone:
                raise DatabaseError(
                    f"table {table!r} of {safe_url} has no column(s) {', '.join(gone)} that "
                    f"policies/{table}.yaml classifies; a removed column stops the run like an "
                    "added one (restore it, or remove it from the policy in a reviewed change)"
                )
            # Special-care columns (要配慮個人情報) are classified but never selected: their
            # values do not leave the DB, not even into this process.
            readable = policy.readable().columns
            cols = [
                c
                for c in cols
                if c in readable
                and not (readable[c].role in skip_roles and _unchecked(readable[c]))
            ]
            picked = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
            # Batch by batch: the whole table as Python row tuples and str objects peaked at
            # 1.55 GiB for 500,000 users (a 0.1 GiB frame); per batch the peak follows the batch.
            for rows in _batches(conn, f'SELECT {picked or "NULL"} FROM "{table}"'):
                batches.append(_as_text(rows, cols))
    except (sa.exc.SQLAlchemyError, driver_error) as exc:
        raise DatabaseError(
            f"cannot read {table!r} from {safe_url}: {exc.__class__.__name__}"
        ) from None
    finally:
        engine.dispose()
    raw = pl.concat(batches) if batches else _as_text([], cols)
    return type_records(raw, policy, name=f"table {table}", require_offset=False)


def _batches(conn: sa.Connection, sql: str) -> Iterator[Sequence[Sequence[object]]]:
    """The rows of ``sql``, streamed in batches of :data:`FETCH_ROWS`.

    Why the driver's own cursor where it streams (:data:`DRIVER_CURSORS`): SQLAlchemy's result
    rows cost more than the read itself (1.5M consents: 1.96 against 0.77 CPU-s; the 10M-event
    day's DB read was extract's critical path, bench/results/scale.md, session 15). The values
    are the same: a text query's rows carry the driver's values unprocessed either way. Other
    drivers read through SQLAlchemy's streaming result.
    """
    cursor_args = DRIVER_CURSORS.get(conn.dialect.driver)
    if cursor_args is None:
        result = conn.execution_options(stream_results=True).execute(sa.text(sql))
        while rows := result.fetchmany(FETCH_ROWS):
            yield rows
        return
    cursor = conn.connection.dbapi_connection.cursor(**cursor_args)
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield rows
    finally:
        cursor.close()


def _unchecked(col: ColumnPolicy) -> bool:
    """No check of the typed read can reject this column's value (optional text)."""
    return (
        col.type == "string"
        and not col.required
        and col.allowed is None
        and col.min is None
        and col.max is None
    )


def _as_text(rows: Sequence[Sequence[object]], cols: list[str]) -> pl.DataFrame:
    """Rows as an all-string frame: every value goes through ``str`` like a landing value."""
    return pl.DataFrame(
        {c: [None if r[i] is None else str(r[i]) for r in rows] for i, c in enumerate(cols)},
        schema=dict.fromkeys(cols, pl.String),
    )
