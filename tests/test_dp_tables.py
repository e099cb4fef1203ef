"""Optional differential privacy on the active-user tables (tokumei/stats/disclosure/dp_tables.py)."""

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

from tokumei.anonymize.policy import NoisePolicy, PolicyError, default_policy_dir, load_policy
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps
from tokumei.stats.disclosure import dp_tables


def _policy_dir(tmp_path: Path, noise: dict | None) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), target)
    root = yaml.safe_load((target / "policy.yaml").read_text())
    if noise is not None:
        root["noise"] = noise
    (target / "policy.yaml").write_text(yaml.safe_dump(root, allow_unicode=True))
    return target


def test_public_grid_comes_from_the_hierarchies_not_the_data() -> None:
    grid = dp_tables.demographic_grid(load_policy(default_policy_dir()))
    assert grid.height == 48 * 20 * 4  # prefectures, 5-year bands incl. 90+, genders; + unknown
    assert grid.unique().height == grid.height
    assert {"東京都", "沖縄県", "unknown"} <= set(grid["prefecture"])
    assert {"0-4", "85-89", "90+", "unknown"} <= set(grid["age_band"])


def test_noisy_counts_cover_the_grid_and_record_the_budget() -> None:
    policy = load_policy(default_policy_dir())
    grid = dp_tables.demographic_grid(policy)
    noise = NoisePolicy(epsilon=1.0, tables=["daily_active_users"], max_epsilon_per_run=2.0)
    exact = pl.DataFrame(
        {
            "prefecture": ["東京都", "atlantis"],  # a value outside the public grid
            "age_band": ["30-34", "30-34"],
            "gender": ["female", "female"],
            "persons": [1000, 7],
        }
    )
    noisy, entry = dp_tables.noisy_persons(exact, grid, noise, "daily_active_users")
    assert noisy.height == grid.height and set(noisy.columns) == {*grid.columns, "persons"}
    assert "atlantis" not in set(noisy["prefecture"])  # cannot be released without leaking it
    assert (noisy["persons"] >= 0).all()
    tokyo = noisy.filter((pl.col("prefecture") == "東京都") & (pl.col("age_band") == "30-34"))
    tokyo = tokyo.filter(pl.col("gender") == "female")["persons"].item()
    assert abs(tokyo - 1000) < 60  # Laplace scale 1: |noise| >= 60 has probability e^-60
    assert noisy["persons"].sum() != 1000  # 3,839 zero cells got noise too (P(all 0) ~ 0)
    assert entry.epsilon == pytest.approx(1.0) and entry.cells == grid.height
    assert entry.max_contributions == 1


def test_the_policy_refuses_tables_that_cannot_be_noised(tmp_path: Path) -> None:
    bad = {"epsilon": 1.0, "tables": ["sessions"], "max_epsilon_per_run": 1.0}
    with pytest.raises(PolicyError, match="cannot be noised"):
        load_policy(_policy_dir(tmp_path, bad))


@pytest.mark.slow
def test_a_noised_run_records_its_budget_and_an_overspending_one_publishes_nothing(
    tmp_path: Path,
) -> None:
    landing = write_handmade_landing(tmp_path / "landing")
    db = f"sqlite:///{landing / 'ops.db'}"
    noise = {"epsilon": 0.5, "tables": ["daily_active_users"], "max_epsilon_per_run": 1.0}
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    try:
        out = tmp_path / "out"
        policy_dir = _policy_dir(tmp_path / "ok", noise)
        settings = Settings(landing=landing, db_url=db, out=out, policy_dir=policy_dir)
        steps.run_all(settings.resolved(), DAY)
        m = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
        budget = m["privacy_budget"]
        assert budget["epsilon_spent"] == pytest.approx(0.5) and budget["epsilon_limit"] == 1.0
        assert [r["table"] for r in budget["releases"]] == ["daily_active_users"]
        dau = read_published(out, "stats", "daily_active_users")
        assert dau.height == 48 * 20 * 4  # the whole public grid, zeros included
        assert (dau.filter(~pl.col("suppressed"))["persons"] >= 10).all()

        over = {**noise, "epsilon": 2.0}
        out2 = tmp_path / "out2"
        settings2 = Settings(
            landing=landing, db_url=db, out=out2, policy_dir=_policy_dir(tmp_path / "x", over)
        )
        with pytest.raises(TokumeiError):
            steps.run_all(settings2.resolved(), DAY)
        assert published_tables(out2) == []
        failed = next((out2 / "reports").rglob("failed/*.json"))
        assert "stats_reduce" in json.loads(failed.read_text())["reason"]
    finally:
        os.environ.pop("TOKUMEI_PSEUDONYM_KEY", None)
