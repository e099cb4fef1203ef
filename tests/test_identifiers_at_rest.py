"""Issue 16: no raw identifier at rest outside ``quarantine/``.

The operational DB's direct identifiers are dropped in memory by extract; landing files are
read, pseudonymized, filtered and generalized in memory by ingest, one file at a time
(tokumei/anonymize/person_rows.py). Before, ``_work/<run>/extracted/`` held every raw line and
``extracted/db/users.parquet`` e-mail, name, phone, address, My Number and card number until
cleanup, and a SIGKILL left them there.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, PLANTED, TEST_KEY

from tokumei.infra.settings import Settings
from tokumei.pipeline import steps


def test_extract_and_ingest_write_no_raw_identifier(
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
    steps.ingest(settings, DAY, run_id)
    steps.check_inputs(settings, DAY, run_id)
    # ids of the landing and validated identifiers (NER names are scrub's: see below)
    raw |= {PLANTED[k] for k in ("user_id", "cookie_id", "device_id", "ip", "mac", "email")}
    raw |= {PLANTED[k] for k in ("email2", "phone", "my_number", "card")}
    strings = 0
    for path in (tmp_path / "out").rglob("*"):
        rel = path.relative_to(tmp_path / "out")
        if not path.is_file() or rel.parts[0] == "quarantine":
            continue
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            cells = [
                v for c in frame.columns if frame[c].dtype == pl.String
                for v in frame[c].drop_nulls().to_list()
            ]  # fmt: skip
        else:
            cells = [path.read_text(errors="replace")]
        strings += len(cells)
        for value in raw:
            assert not any(value in cell for cell in cells), (str(rel), "a raw value at rest")
    assert strings > 1000, "the work layer was read (else the test proves nothing)"
    steps.cleanup(settings, DAY, run_id)
