"""`tokumei provide`: the provision ledger and the APPI Art. 44 statement (issue 15)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tokumei.cli import app
from tokumei.infra.tableformat import publish_release
from tokumei.release.provision import LEDGER, ProvisionError, provide, read_ledger

DAY = "2026-11-24"


def _release(out: Path, status: str = "published") -> Path:
    """A release as publish leaves it: the manifest and one file per dataset."""
    reports = out / "reports" / f"date={DAY}"
    reports.mkdir(parents=True)
    manifest = {
        "run_id": "2026-11-24-r1",
        "date": DAY,
        "status": status,
        "outputs": {"stats/daily_active_users": {"rows": 2}, "anonymized/page_views": {}},
    }
    (reports / "manifest.json").write_text(json.dumps(manifest))
    staged = {}
    for name, frame in (
        ("stats/daily_active_users", pl.DataFrame({"gender": ["f"], "persons": [12]})),
        ("anonymized/page_views", pl.DataFrame({"age": ["30-34"], "url_template": ["/"]})),
    ):
        part = out / "_staging" / name / "part-0.parquet"
        part.parent.mkdir(parents=True)
        frame.write_parquet(part)
        staged[name] = part
    if status == "published":
        publish_release(out / "published", staged, DAY, "2026-11-24-r1")
    return out


def test_provide_appends_an_entry_and_writes_the_statement(tmp_path: Path) -> None:
    out = _release(tmp_path / "out")
    at = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)
    done = provide(
        out,
        DAY,
        "Research Partner K.K.",
        ["page_views", "stats/daily_active_users"],
        "sftp",
        now=at,
    )
    e = done.entry
    assert e["recipient"] == "Research Partner K.K." and e["date"] == DAY and e["method"] == "sftp"
    assert e["datasets"] == {
        "anonymized/page_views": ["age", "url_template", "date"],
        "stats/daily_active_users": ["gender", "persons", "date"],
    }
    assert e["anonymously_processed"] == ["anonymized/page_views"]
    assert e["run_id"] == "2026-11-24-r1" and len(e["manifest_sha256"]) == 64
    assert e["recorded_at"] == "2026-11-25T01:02:03+00:00" and e["previous_sha256"] == ""
    text = done.statement.read_text()
    assert "匿名加工情報" in text and "第44条" in text and "Article 44" in text
    assert "第45条" in text and "`anonymized/page_views`" in text and "`url_template`" in text
    # a second hand-over is appended and chained to the first
    provide(out, DAY, "Another Co.", ["anonymized/page_views"], now=at)
    entries = read_ledger(out)
    assert [x["recipient"] for x in entries] == ["Research Partner K.K.", "Another Co."]
    assert entries[1]["previous_sha256"] != ""


def test_provide_refuses_what_the_release_does_not_hold(tmp_path: Path) -> None:
    out = _release(tmp_path / "out")
    with pytest.raises(ProvisionError, match="not in the release"):
        provide(out, DAY, "X", ["anonymized/purchases"])
    with pytest.raises(ProvisionError, match="no release"):
        provide(out, "2026-11-23", "X", ["page_views"])
    assert not (out / LEDGER).exists()  # nothing recorded for a refused provision
    failed = _release(tmp_path / "failed", status="failed")
    with pytest.raises(ProvisionError, match="not published"):
        provide(failed, DAY, "X", ["page_views"])


def test_an_edited_ledger_is_detected(tmp_path: Path) -> None:
    out = _release(tmp_path / "out")
    provide(out, DAY, "A", ["page_views"])
    provide(out, DAY, "B", ["page_views"])
    path = out / LEDGER
    lines = path.read_text().splitlines()
    path.write_text(lines[0].replace('"A"', '"C"') + "\n" + lines[1] + "\n")
    with pytest.raises(ProvisionError, match="line 2"):
        read_ledger(out)
    with pytest.raises(ProvisionError):
        provide(out, DAY, "D", ["page_views"])  # never appended to a broken ledger


def test_provide_command(tmp_path: Path) -> None:
    out = _release(tmp_path / "out")
    args = ["provide", "--out", str(out), "--date", DAY, "--recipient", "Partner"]
    ok = CliRunner().invoke(app, [*args, "--datasets", "anonymized/page_views", "--method", "usb"])
    assert ok.exit_code == 0, ok.output
    assert read_ledger(out)[0]["method"] == "usb"
    bad = CliRunner().invoke(app, [*args, "--datasets", "secret_table"])
    assert bad.exit_code == 1 and "not in the release" in bad.output
    assert len(read_ledger(out)) == 1
