"""The input expectations as a GX suite (``landing_input``) with results in Data Docs
(tokumei/expectations/inputs.py, docs/landing.md "Input expectations").

A run the input expectations stop is listed as failed in the one Data Docs site, offline and
without a value; a bound tightened in the suite JSON of gx/ fails the input validation. The
passed suite of a normal run is checked on the end-to-end run (tests/test_run_e2e.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, TEST_KEY, all_text_under, seal_landing, write_handmade_landing

from tokumei.anonymize.policy import InputPolicy
from tokumei.expectations.inputs import INPUT_NAME, input_frame, input_spec
from tokumei.expectations.offline import HISTORY_FILE, external_references
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.ingest.expectations import FileLines, InputExpectationFailed, check_quarantine
from tokumei.ingest.expectations import observing as observing_inputs
from tokumei.pipeline import steps

QUERY = "東京 ラーメン 新宿"
GX = Path(__file__).resolve().parents[1] / "gx"


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    return write_handmade_landing(tmp_path / "landing")


def _settings(landing: Path, out: Path) -> Settings:
    return Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out).resolved()


def _history(out: Path) -> list[dict]:
    return json.loads((out / "reports" / "data_docs" / HISTORY_FILE).read_text())


def _input_rows(out: Path) -> list[dict]:
    return [r for r in _history(out) if r["suite"] == INPUT_NAME]


def test_the_checks_record_their_figures_before_they_refuse() -> None:
    # the encoding guess is made where the lines are read (ingest); here it is given
    files = [FileLines("events/date=x/part-0.jsonl", 10, 5, 5, "Shift-JIS")]
    with observing_inputs() as seen, pytest.raises(InputExpectationFailed):
        check_quarantine("events", files, {"invalid UTF-8": 5}, InputPolicy())
    assert seen.sources["events"] == {
        "files": 1,
        "lines": 10,
        "quarantine_share": 0.5,
        "not_utf8_share": 0.5,
    }
    # outside a recording nothing is kept, and the check is the same
    with pytest.raises(InputExpectationFailed):
        check_quarantine("events", files, {"invalid UTF-8": 5}, InputPolicy())


def test_a_run_stopped_by_a_shift_jis_file_lists_the_failed_input_suite_in_data_docs(
    landing: Path, tmp_path: Path
) -> None:
    path = landing / "events" / f"date={DAY}" / "part-00003.jsonl"
    rows = [
        {"ts": f"{DAY}T11:00:00+09:00", "event": "search", "cookie_id": f"cookie-{i:04d}"}
        | {"user_id": f"user-{i:04d}", "search_query": QUERY}
        for i in range(40)
    ]
    path.write_bytes(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("cp932")
    )
    seal_landing(landing)
    out = tmp_path / "out"
    with pytest.raises(InputExpectationFailed) as info:
        steps.run_all(_settings(landing, out), DAY, isolate=False)
    msg = str(info.value)
    # the same one-line refusal, the page named after it
    assert f"100 % of lines in events/date={DAY}/part-00003.jsonl are not UTF-8" in msg
    assert "is the file Shift-JIS?" in msg and "\n" not in msg
    assert "Data Docs: " in msg and "all runs: " in msg
    (row,) = _input_rows(out)
    assert row["success"] is False and row["successful"] < row["evaluated"]
    run_id = row["run_name"]
    site = out / "reports" / "data_docs"
    index = (site / "index.html").read_text()
    assert "✘ failed" in index and INPUT_NAME in index and run_id in index
    page = (site / row["page"]).read_text()
    assert "quarantine_share" in page
    day_docs = out / "reports" / f"date={DAY}" / "failed" / run_id / "data_docs"
    assert (day_docs / "index.html").exists()
    assert external_references(site) == [] and external_references(day_docs) == []
    assert not (out / "published").exists()
    for where, text in all_text_under(out / "reports"):
        assert QUERY not in text and "ラーメン" not in text, where


def test_a_column_removed_from_the_db_lists_the_failed_input_suite(
    landing: Path, tmp_path: Path
) -> None:
    con = sqlite3.connect(landing / "ops.db")
    con.execute("ALTER TABLE users DROP COLUMN birth_date")
    con.commit()
    con.close()
    out = tmp_path / "out"
    with pytest.raises(TokumeiError, match="no column.s. birth_date"):
        steps.run_all(_settings(landing, out), DAY, isolate=False)
    (row,) = _input_rows(out)
    assert row["success"] is False
    page = (out / "reports" / "data_docs" / row["page"]).read_text()
    assert "columns_missing" in page


def _metrics(not_utf8: float) -> pl.DataFrame:
    landing = {
        "events": {
            "files": 2,
            "lines": 1000,
            "quarantine_share": not_utf8,
            "not_utf8_share": not_utf8,
            "volume_ratio": 1.0,
        }
    }
    return input_frame(landing, {"users": {"columns_missing": 0, "columns_unclassified": 0}})


def test_a_bound_tightened_in_the_suite_json_fails_the_input_validation(tmp_path: Path) -> None:
    """The data-quality team edits gx/expectations/landing_input__dq.json (gx/README.md)."""
    from tokumei.expectations.runner import validate_outputs

    spec = {INPUT_NAME: input_spec(InputPolicy())}
    frame = {INPUT_NAME: _metrics(0.05)}  # within the policy's 10 %
    site = tmp_path / "site"
    committed = validate_outputs(frame, spec, tmp_path / "a", "run-a", site, gx_dir=GX)
    assert committed.passed
    assert committed.outputs[INPUT_NAME].suites == [INPUT_NAME, f"{INPUT_NAME}__dq"]
    edited = tmp_path / "gx"
    shutil.copytree(GX / "expectations", edited / "expectations")
    suite_file = edited / "expectations" / f"{INPUT_NAME}__dq.json"
    doc = json.loads(suite_file.read_text())
    (bound,) = [e for e in doc["expectations"] if e["kwargs"].get("column") == "not_utf8_share"]
    bound["kwargs"]["max_value"] = 0.01
    suite_file.write_text(json.dumps(doc))
    tightened = validate_outputs(frame, spec, tmp_path / "b", "run-b", site, gx_dir=edited)
    assert not tightened.passed
    (failed,) = tightened.outputs[INPUT_NAME].failed_expectations
    assert (failed.suite, failed.column) == (f"{INPUT_NAME}__dq", "not_utf8_share")
    rows = json.loads((site / HISTORY_FILE).read_text())
    assert [r["success"] for r in rows if r["suite"].endswith("__dq")] == [True, False]
