"""The operational DB reader selects no value it would only drop (data minimization).

Direct identifiers, identification codes and card numbers have no use in tokumei: ``extract``
drops them as soon as a table is read. A column of those roles that no check of the typed read
looks at is not even selected, so its values stay in the DB; one with a check is still read,
so a bad value is quarantined as before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tokumei.anonymize.policy import (
    DROPPED_ROLES,
    ColumnPolicy,
    Role,
    default_policy_dir,
    load_policy,
)
from tokumei.ingest.opdb import read_table

USERS = load_policy(default_policy_dir()).tables["users"]


def _db(tmp_path: Path) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "ops.db"
    con = sqlite3.connect(path)
    cols = list(USERS.columns)
    con.execute(f"CREATE TABLE users ({', '.join(c + ' TEXT' for c in cols)})")
    row = {c: None for c in cols} | {
        "user_id": "u1",
        "email": "taro@example.com",
        "full_name": "山田太郎",
        "phone": "090-1234-5678",
        "gender": "female",
    }
    con.execute(
        f"INSERT INTO users VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols]
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def test_unchecked_identifiers_are_not_selected(tmp_path: Path) -> None:
    good, bad = read_table(_db(tmp_path), "users", USERS, DROPPED_ROLES)
    assert bad.height == 0 and good["user_id"].to_list() == ["u1"]
    assert good["gender"].to_list() == ["female"]
    for column in USERS.by_role(*DROPPED_ROLES):
        assert good[column].null_count() == 1, column  # never read
    # without skip_roles every classified column is read (the reader's default)
    good, _ = read_table(_db(tmp_path / "again"), "users", USERS)
    assert good["email"].to_list() == ["taro@example.com"]


def test_a_checked_identifier_is_still_read_and_checked(tmp_path: Path) -> None:
    strict = USERS.model_copy(
        update={
            "columns": USERS.columns
            | {"email": ColumnPolicy(type="string", role=Role.DIRECT_IDENTIFIER, required=True)}
        }
    )
    db = _db(tmp_path)
    good, bad = read_table(db, "users", strict, DROPPED_ROLES)
    assert good["email"].to_list() == ["taro@example.com"] and bad.height == 0
