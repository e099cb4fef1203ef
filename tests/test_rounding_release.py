"""Optional rounding of published counts (policy ``thresholds.rounding_base``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import DAY, TEST_KEY, write_handmade_landing
from published import published_tables, read_published

from tokumei.anonymize.policy import PolicyError, default_policy_dir, load_policy
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps
from tokumei.stats.tables import TABLES


def _policy_dir(tmp_path: Path, **thresholds: int) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), target)
    root = yaml.safe_load((target / "policy.yaml").read_text())
    root["thresholds"].update(thresholds)
    (target / "policy.yaml").write_text(yaml.safe_dump(root, allow_unicode=True))
    return target


def test_a_base_that_could_round_below_min_cell_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="must divide min_cell"):
        load_policy(_policy_dir(tmp_path, rounding_base=3))
    assert load_policy(_policy_dir(tmp_path / "ok", rounding_base=5)).thresholds.rounding_base == 5


@pytest.mark.slow
def test_published_counts_are_rounded_and_still_pass_the_attacker(tmp_path: Path) -> None:
    landing = write_handmade_landing(tmp_path / "landing")
    out = tmp_path / "out"
    settings = Settings(
        landing=landing,
        db_url=f"sqlite:///{landing / 'ops.db'}",
        out=out,
        policy_dir=_policy_dir(tmp_path, rounding_base=5),
    ).resolved()
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    try:
        steps.run_all(settings, DAY)
    finally:
        os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
    seen = 0
    for name, spec in TABLES.items():
        if f"stats/{name}" not in published_tables(out):
            continue
        df = read_published(out, "stats", name)
        for count in spec.counts:
            shown = df[count].drop_nulls()
            seen += shown.len()
            assert (shown % 5 == 0).all() and (shown >= 10).all(), (name, count)
    assert seen > 0
    m = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert all(d["ok"] for d in m["disclosure"].values())
    # the handmade Tokyo cell has 26 persons: published as 25
    dau = read_published(out, "stats", "daily_active_users")
    tokyo = dau.filter(
        (pl.col("prefecture") == "東京都")
        & (pl.col("age_band") == "30-34")
        & (pl.col("gender") == "female")
    )
    assert tokyo["persons"].to_list() == [25]
