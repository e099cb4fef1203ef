"""Fill the operational database (users, consents, rights requests) through SQLAlchemy Core.

Any SQLAlchemy URL works (SQLite file by default, PostgreSQL in production). Reruns are
idempotent: tables are created if missing and emptied before inserting, inside one transaction.
A handful of rights requests of every kind is guaranteed (pending, dated before the start) so
even a tiny test population exercises deletion, ceasing and analytics opt-out.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Connection, Table, create_engine, delete, insert
from sqlalchemy.engine import make_url

from tokumei.ingest.opdb_schema import PURPOSES, RIGHTS_KINDS, consents, metadata, rights_requests
from tokumei.ingest.opdb_schema import users as users_table
from tokumei.synthetic.common import day_wall_ms, rng_for
from tokumei.synthetic.people import Population

RIGHTS_SHARE = 0.01
BATCH = 20_000


def _aware_datetimes(wall_ms: np.ndarray) -> list[datetime]:
    """JST-aware datetimes for many wall-clock ms values at once (Polars, not a Python loop)."""
    return (pl.Series(np.asarray(wall_ms, dtype=np.int64)).cast(pl.Datetime("ms"))
            .dt.replace_time_zone("Asia/Tokyo").to_list())


def _bulk_insert(conn: Connection, table: Table, columns: dict[str, list]) -> None:
    """Insert column lists with the driver's ``executemany``, bypassing per-row Core overhead.

    The statement is compiled once for the connection's dialect (so placeholders suit SQLite
    and psycopg alike) and each column's own bind processor is applied, so stored values are
    exactly what ``conn.execute(insert(table), rows)`` would store, about five times faster.
    """
    names = list(columns)
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=names)
    processed: dict[str, list] = {}
    for name in names:
        proc = table.c[name].type._cached_bind_processor(conn.dialect)
        values = columns[name]
        processed[name] = [proc(v) for v in values] if proc else values
    n = len(processed[names[0]]) if names else 0
    if compiled.positional:
        order = list(compiled.positiontup or names)
        rows: list = list(zip(*(processed[c] for c in order), strict=True))
    else:
        rows = [{c: processed[c][i] for c in names} for i in range(n)]
    sql = str(compiled)
    for i in range(0, n, BATCH):
        conn.exec_driver_sql(sql, rows[i : i + BATCH])


def write_opdb(db_url: str, seed: int, pop: Population, start: date, days: int) -> dict[str, int]:
    """Create/empty the tables and insert the population; returns rows per table."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    rng = rng_for(seed, "opdb", pop.n)
    start_ms = day_wall_ms(start)

    # rows sorted by primary key: B-tree inserts in key order are several times faster
    order = sorted(range(pop.n), key=pop.user_id.__getitem__)
    created = _aware_datetimes(pop.created_ms)
    user_cols: dict[str, list] = {
        "user_id": pop.user_id, "email": pop.email, "username": pop.username,
        "full_name": pop.full_name, "full_name_kana": pop.full_name_kana,
        "birth_date": pop.birth_date, "gender": pop.gender, "occupation": pop.occupation,
        "postal_code": pop.postal_code, "prefecture": pop.prefecture, "address": pop.address,
        "phone": pop.phone, "my_number": pop.my_number, "card_number": pop.card_number,
        "created_at": created,
    }
    user_cols = {k: [v[i] for i in order] for k, v in user_cols.items()}
    granted = {"analytics": pop.consent_analytics, "ads": pop.consent_ads,
               "location": pop.consent_location}
    upd = pop.created_ms + (rng.random((len(PURPOSES), pop.n))
                            * (start_ms - pop.created_ms)).astype(np.int64)
    upd_at = [_aware_datetimes(upd[k]) for k in range(len(PURPOSES))]
    consent_cols: dict[str, list] = {"user_id": [], "purpose": [], "granted": [],
                                     "updated_at": []}
    for i in order:
        for k, purpose in enumerate(PURPOSES):
            consent_cols["user_id"].append(pop.user_id[i])
            consent_cols["purpose"].append(purpose)
            consent_cols["granted"].append(bool(granted[purpose][i]))
            consent_cols["updated_at"].append(upd_at[k][i])

    n_req = min(pop.n, max(len(RIGHTS_KINDS), round(RIGHTS_SHARE * pop.n)))
    who = rng.choice(pop.n, size=n_req, replace=False)
    kinds = rng.choice(len(RIGHTS_KINDS), size=n_req, p=[0.40, 0.25, 0.35])
    kinds[: len(RIGHTS_KINDS)] = np.arange(len(RIGHTS_KINDS))[: n_req]
    window_lo = start - timedelta(days=30)
    offsets = rng.uniform(0, (30 + days) * 86_400_000, n_req).astype(np.int64)
    req_ms = day_wall_ms(window_lo) + offsets
    guaranteed = np.arange(n_req) < len(RIGHTS_KINDS)
    req_ms[guaranteed] = start_ms - 86_400_000 + rng.integers(0, 3_600_000 * 20, n_req)[
        guaranteed]
    done = (req_ms < start_ms - 7 * 86_400_000) & (rng.random(n_req) < 0.7) & ~guaranteed
    req_at = _aware_datetimes(req_ms)
    request_rows = [
        {"request_id": r + 1, "user_id": pop.user_id[int(who[r])],
         "kind": RIGHTS_KINDS[int(kinds[r])],
         "requested_at": req_at[r],
         "status": "done" if done[r] else "pending"}
        for r in range(n_req)
    ]

    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            for table in (rights_requests, consents, users_table):
                conn.execute(delete(table))
            _bulk_insert(conn, users_table, user_cols)
            _bulk_insert(conn, consents, consent_cols)
            _bulk_insert(conn, rights_requests,
                         {c: [r[c] for r in request_rows] for c in request_rows[0]})
    finally:
        engine.dispose()
    return {"users": pop.n, "consents": len(consent_cols["user_id"]),
            "rights_requests": len(request_rows)}
