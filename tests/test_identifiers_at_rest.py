"""Issue 16 (part): the operational DB's direct identifiers never reach the work layer.

Columns of the roles that are dropped (direct identifiers, identification codes, card
numbers) are dropped in memory by extract; before, ``_work/<run>/extracted/db/users.parquet``
held e-mail, name, phone, address, My Number and card number until cleanup, and a SIGKILL left
them there.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, TEST_KEY

from tokumei.anonymize.policy import DROPPED_ROLES, default_policy_dir, load_policy
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps


def test_extract_writes_no_direct_identifier_of_the_db(
    handmade_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    db = handmade_landing / "ops.db"
    con = sqlite3.connect(db)
    raw = {
        v
        for row in con.execute(
            "select email, full_name, phone, address, my_number, card_number from users"
        )
        for v in row
        if v
    }
    con.close()
    assert raw, "the landing's users carry identifiers (else the test proves nothing)"
    settings = Settings(landing=handmade_landing, db_url=f"sqlite:///{db}", out=tmp_path / "out")
    settings = settings.resolved()
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    steps.extract(settings, DAY, run_id)
    work = steps._paths(settings, DAY, run_id).work
    dropped = set(load_policy(default_policy_dir()).tables["users"].by_role(*DROPPED_ROLES))
    users = pl.read_parquet(work / "extracted" / "db" / "users.parquet")
    assert users.height > 0 and not dropped & set(users.columns)
    for path in (work / "extracted" / "db").rglob("*.parquet"):
        frame = pl.read_parquet(path)
        for col in frame.columns:
            if frame[col].dtype == pl.String:
                assert not raw & set(frame[col].drop_nulls().to_list()), (path.name, col)
    steps.cleanup(settings, DAY, run_id)
