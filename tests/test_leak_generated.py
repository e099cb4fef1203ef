"""The leak test on generator data: no planted PII or raw linking key survives a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DAY, TEST_KEY, all_text_under
from test_run_e2e import run_args, tokumei

pytestmark = pytest.mark.slow


def test_no_planted_value_in_published_reports_or_logs(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    gen = tokumei(
        "generate",
        "--landing",
        str(landing),
        "--db-url",
        f"sqlite:///{landing / 'ops.db'}",
        "--start",
        DAY,
        "--days",
        "1",
        "--users",
        "600",
        "--seed",
        "11",
    )
    assert gen.returncode == 0, gen.stderr[-2000:]
    planted = [
        v
        for v in (landing / "_generator" / "planted_pii.txt").read_text().splitlines()
        if len(v) >= 6  # shorter strings (e.g. "03") occur by chance in counts
    ]
    assert len(planted) > 1000
    out = tmp_path / "out"
    proc = tokumei(*run_args(landing, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert manifest["sources"]["events"]["quarantined"] != 0  # the generator's malformed lines
    needles = set(planted) | {TEST_KEY}
    logs = proc.stdout + proc.stderr + gen.stdout + gen.stderr
    leaks = [n for n in needles if n in logs]
    for path, text in all_text_under(out / "published", out / "reports"):
        leaks += [f"{n} in {path.name}" for n in needles if n in text]
    assert not leaks, leaks[:5]
