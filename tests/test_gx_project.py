"""The GX project in the repository (gx/): generated suites in sync, hand-written suites run.

The data-quality team owns gx/expectations/: a hand-added expectation in a copy of gx/ must be
run by the pipeline's runner, stop publication when it fails, and show in Data Docs without
any data value, whatever result format the file asks for.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from tokumei.expectations.suites import (
    GENERATED_META,
    SuiteFileError,
    load_hand_suites,
    repo_gx_dir,
)

ROOT = Path(__file__).resolve().parents[1]
GX = ROOT / "gx"
HAND = "daily_active_users__dq"
CANARY = "カナリア村ZQ"
"""A prefecture value that no suite or page contains unless a value leaked."""
DAY = dt.date(2024, 1, 5)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_gx_suites", ROOT / "scripts" / "gen_gx_suites.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _copy_gx(tmp: Path) -> Path:
    target = tmp / "gx"
    shutil.copytree(GX, target, ignore=shutil.ignore_patterns("uncommitted"))
    return target


def _add_expectation(gx_dir: Path, suite_file: str, expectation: dict[str, Any]) -> None:
    path = gx_dir / "expectations" / suite_file
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["expectations"].append(expectation)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def test_repo_gx_dir_is_this_checkout() -> None:
    assert repo_gx_dir() == GX
    assert (GX / "great_expectations.yml").is_file()


def test_gx_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tokumei.expectations.suites import GX_DIR_ENV, default_gx_dir

    monkeypatch.setenv(GX_DIR_ENV, str(_copy_gx(tmp_path)))
    assert default_gx_dir() == tmp_path / "gx"
    monkeypatch.setenv(GX_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(SuiteFileError, match="no expectations/ folder"):
        default_gx_dir()
    monkeypatch.delenv(GX_DIR_ENV)
    assert default_gx_dir() == GX


def test_generated_suites_are_in_sync() -> None:
    gen = _script()
    files = gen.generated_files()
    assert len(files) >= 13  # 12 statistics tables + the record-level release
    stale = [
        n
        for n, text in files.items()
        if not (GX / "expectations" / n).exists()
        or (GX / "expectations" / n).read_text(encoding="utf-8") != text
    ]
    assert stale == [], "gx/expectations is stale: run `uv run python scripts/gen_gx_suites.py`"
    assert gen.stale_generated(GX / "expectations") == []


def test_gx_project_loads_in_a_file_context(tmp_path: Path) -> None:
    """gx/ is a regular GX 1.x file project: GX itself reads every suite, both kinds."""
    import great_expectations as gx

    import tokumei.expectations.custom  # noqa: F401  (tokumei's custom expectation types)

    root = tmp_path / "project"
    _copy_gx(root)
    context = gx.get_context(mode="file", project_root_dir=root)
    assert type(context).__name__ == "FileDataContext"
    suites = {s.name: s for s in context.suites.all()}
    on_disk = {p.stem for p in (GX / "expectations").glob("*.json")}
    assert set(suites) == on_disk
    assert HAND in suites and "daily_active_users" in suites
    assert suites["daily_active_users"].meta.get(GENERATED_META) is True
    assert len(suites[HAND].expectations) >= 1


def test_value_revealing_expectation_type_is_refused(tmp_path: Path) -> None:
    gx_dir = _copy_gx(tmp_path)
    _add_expectation(
        gx_dir,
        f"{HAND}.json",
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "persons"}},
    )
    with pytest.raises(SuiteFileError, match=rf"{HAND}\.json: expectation 3: .*value-free"):
        load_hand_suites(gx_dir)


def test_hand_suite_must_name_its_output(tmp_path: Path) -> None:
    gx_dir = _copy_gx(tmp_path)
    path = gx_dir / "expectations" / f"{HAND}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["meta"] = {}
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(SuiteFileError, match="tokumei_output"):
        load_hand_suites(gx_dir)


# ------------------------------------------------------------------------------------------------
# a hand-added expectation runs and shows in Data Docs


def _dau_spec_and_frame(prefectures: tuple[str, str]) -> tuple[Any, pl.DataFrame]:
    """The default policy's daily_active_users spec and a two-cell frame that satisfies it."""
    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.pipeline.steps import _stats_specs

    spec = _stats_specs(load_policy(default_policy_dir()))["daily_active_users"]
    cols: dict[str, pl.Series] = {}
    for c in spec.columns:
        if c.name == "prefecture":
            cols[c.name] = pl.Series(list(prefectures))
        elif c.dtype == "string":
            cols[c.name] = pl.Series([c.allowed[0] if c.allowed else "x"] * 2)
        elif c.dtype == "int":
            cols[c.name] = pl.Series([spec.min_cell * 3, None], dtype=pl.Int64)
        elif c.dtype == "bool":
            cols[c.name] = pl.Series([False, True])
        elif c.dtype == "date":
            cols[c.name] = pl.Series([DAY, DAY])
        else:
            cols[c.name] = pl.Series([0.5, None])
    return spec, pl.DataFrame(cols)


@pytest.fixture(scope="module")
def hand_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same frame validated with the committed gx/ and with a copy where the DQ team added
    one expectation (asking for GX's most verbose result format): both into one history site."""
    from tokumei.expectations.runner import validate_outputs

    tmp = tmp_path_factory.mktemp("gxrun")
    spec, frame = _dau_spec_and_frame(("東京都", CANARY))
    edited = _copy_gx(tmp / "edited")
    _add_expectation(
        edited,
        f"{HAND}.json",
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {
                "column": "prefecture",
                "value_set": ["東京都"],
                "result_format": {"result_format": "COMPLETE"},
            },
            "meta": {"notes": "added by hand in a test"},
        },
    )
    site = tmp / "reports" / "data_docs"
    outputs = {"daily_active_users": frame}
    specs = {"daily_active_users": spec}
    committed = validate_outputs(outputs, specs, tmp / "a", "2024-01-05", site, gx_dir=GX)
    added = validate_outputs(outputs, specs, tmp / "b", "2024-01-06", site, gx_dir=edited)
    return {"committed": committed, "added": added, "site": site, "docs": tmp / "b"}


def test_committed_hand_suite_runs_in_the_same_checkpoint(hand_runs: dict[str, Any]) -> None:
    out = hand_runs["committed"].outputs["daily_active_users"]
    assert out.suites == ["daily_active_users", HAND]
    assert out.passed, out.failed_expectations


def test_hand_added_expectation_runs_and_stops_publication(hand_runs: dict[str, Any]) -> None:
    out = hand_runs["added"].outputs["daily_active_users"]
    assert not out.passed
    assert [(f.suite, f.expectation_type, f.column) for f in out.failed_expectations] == [
        (HAND, "expect_column_values_to_be_in_set", "prefecture")
    ]


def test_hand_added_expectation_shows_in_data_docs(hand_runs: dict[str, Any]) -> None:
    site: Path = hand_runs["site"]
    rows = re.findall(
        r'<tr class="tk-validation">(.*?)</tr>', (site / "index.html").read_text(), re.DOTALL
    )
    hand_rows = [r for r in rows if f">{HAND}</a>" in r]
    assert len(hand_rows) == 2  # the committed run and the edited one
    assert sum("failed" in r for r in hand_rows) == 1
    failed_row = next(r for r in hand_rows if "failed" in r)
    page = site / re.search(r'href="([^"]+)"', failed_row).group(1)  # type: ignore[union-attr]
    text = page.read_text(encoding="utf-8")
    assert "added by hand in a test" in text or "prefecture" in text
    assert "values must belong to this set" in text


def test_hand_expectation_cannot_show_values(hand_runs: dict[str, Any]) -> None:
    """The file asked for COMPLETE (every unexpected value); the checkpoint's result format and
    the one the runner forces on each hand-written expectation keep counts only."""
    for root in (hand_runs["site"], hand_runs["docs"]):
        for page in root.rglob("*.html"):
            text = page.read_text(encoding="utf-8")
            assert CANARY not in text, page.name


def test_runner_forces_the_value_free_format_on_hand_expectations(tmp_path: Path) -> None:
    from tokumei.expectations.runner import RESULT_FORMAT, hand_expectations

    gx_dir = _copy_gx(tmp_path)
    _add_expectation(
        gx_dir,
        f"{HAND}.json",
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "gender", "value_set": ["x"], "result_format": "COMPLETE"},
        },
    )
    (suite,) = load_hand_suites(gx_dir)["daily_active_users"]
    exps = hand_expectations(suite)
    assert len(exps) == len(suite.expectations) == 3
    assert all(e.result_format == RESULT_FORMAT for e in exps)


def test_hand_expectation_with_bad_arguments_names_the_file(tmp_path: Path) -> None:
    from tokumei.expectations.runner import hand_expectations

    gx_dir = _copy_gx(tmp_path)
    _add_expectation(
        gx_dir, f"{HAND}.json", {"type": "expect_column_values_to_be_in_set", "kwargs": {}}
    )
    (suite,) = load_hand_suites(gx_dir)["daily_active_users"]
    with pytest.raises(SuiteFileError, match=rf"{HAND}\.json: expectation 3 "):
        hand_expectations(suite)
