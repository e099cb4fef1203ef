"""The privacy report reads offline like the Data Docs: nothing loaded from another host.

The report is built from the same inputs as tests/test_reports.py; the check is the one the
Data Docs get (tokumei.expectations.offline.external_references) plus headless Chromium with
DNS and the proxy cut off.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from headless import CHROMIUM, chromium
from test_reports import _manifest, _tables

from tokumei.expectations.offline import external_references
from tokumei.release.reports import write_privacy_report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("offline") / "privacy_report.html"
    return write_privacy_report(_manifest(), _tables(), out)


def test_privacy_report_references_no_other_host(report: Path) -> None:
    assert external_references(report.parent) == []
    text = report.read_text(encoding="utf-8")
    assert "default-src 'none'" in text  # the browser itself refuses any fetch
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_privacy_report_renders_with_the_network_cut(report: Path, tmp_path: Path) -> None:
    res = chromium(["--dump-dom", report.resolve().as_uri()], tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "tokumei privacy report" in res.stdout and "<svg" in res.stdout
    assert not re.search(r"CONSOLE[:(]|Refused to|ERR_", res.stderr), res.stderr[-2000:]
