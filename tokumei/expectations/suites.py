"""The GX project in the repository (``gx/``): generated suites and the data-quality team's own.

Why two kinds of suite in one project (docs/adr/0006-gx-project-and-data-docs.md):

* **Generated** suites (``gx/expectations/<output>.json``, meta ``tokumei_generated: true``) are
  written by ``scripts/gen_gx_suites.py`` from the default policy's specs
  (:mod:`tokumei.expectations.specs`); a test keeps them in sync. At run time the generated
  suite is rebuilt from the run's policy (a policy with another ``min_cell`` or ``k`` must be
  checked with its own thresholds), so the committed JSON is the reviewable copy, not an input.
* **Hand-written** suites (any other ``gx/expectations/*.json``) belong to the data-quality team:
  adding an expectation is editing JSON. Each names the output it checks in its meta
  (``tokumei_output``) and runs in the same Checkpoint as that output's generated suite.

A hand-written expectation must stay value-free like the generated ones: only expectation
types whose result is a count, a share, a type or a column name are accepted
(:data:`VALUE_FREE_TYPES`; ``expect_column_max_to_be_between`` would print a cell value as its
observed value), and the runner forces the value-free result format on every expectation,
whatever the file says. A suite that breaks these rules stops the run with a
:class:`SuiteFileError` naming the file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tokumei.infra.errors import SafeMessage

logger = logging.getLogger(__name__)

GX_DIR_ENV: Final[str] = "TOKUMEI_GX_DIR"
"""Where the GX project is when tokumei does not run from a checkout (deployments)."""

OUTPUT_META: Final[str] = "tokumei_output"
GENERATED_META: Final[str] = "tokumei_generated"

VALUE_FREE_TYPES: Final[frozenset[str]] = frozenset(
    {
        # table shape: counts and column names
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_be_between",
        # per-value checks: with partial_unexpected_count 0 only counts and shares are kept
        "expect_column_values_to_be_null",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_compound_columns_to_be_unique",
        "expect_select_column_values_to_be_unique_within_record",
        "expect_column_pair_values_to_be_equal",
        # tokumei's own (tokumei.expectations.custom): counts and column names only
        "expect_table_columns_to_exclude",
        "expect_qi_classes_to_have_at_least_k_persons",
        "expect_suppressed_share_to_be_at_most",
    }
)
"""Expectation types whose rendered result can hold no cell value under the runner's format."""


class SuiteFileError(SafeMessage, ValueError):
    """A suite file of the GX project cannot be run; the message names the file and why."""


@dataclass(frozen=True)
class HandSuite:
    """One hand-written suite: its name, the output it checks and its expectations (dicts)."""

    name: str
    output: str
    path: Path
    expectations: tuple[Mapping[str, Any], ...]
    notes: str | None = None


def repo_gx_dir() -> Path:
    """``gx/`` of the checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "gx"


def default_gx_dir() -> Path | None:
    """The GX project to load hand-written suites from: ``$TOKUMEI_GX_DIR`` (must exist), else
    the checkout's ``gx/`` if there is one, else none."""
    env = os.environ.get(GX_DIR_ENV)
    if env:
        path = Path(env)
        if not (path / "expectations").is_dir():
            raise SuiteFileError(f"{GX_DIR_ENV}={path}: no expectations/ folder there")
        return path
    repo = repo_gx_dir()
    if (repo / "expectations").is_dir():
        return repo
    # An installed package has no checkout beside it: say so, the team's suites are not run.
    logger.warning(
        "no GX project found (%s unset, no gx/ beside the package): hand-written suites are"
        " not run",
        GX_DIR_ENV,
    )
    return None


def suite_file_text(
    name: str, expectations: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]
) -> str:
    """The JSON text of a suite file, byte-stable for the same input (the sync test compares)."""
    doc = {
        "name": name,
        "meta": dict(meta),
        "notes": "Generated by scripts/gen_gx_suites.py from tokumei/expectations/specs.py: do"
        " not edit; add expectations to a hand-written suite (gx/README.md).",
        "expectations": [dict(e) for e in expectations],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _check_expectation(path: Path, i: int, exp: Any) -> Mapping[str, Any]:
    where = f"{path.name}: expectation {i + 1}"
    if not isinstance(exp, Mapping) or not isinstance(exp.get("type"), str):
        raise SuiteFileError(f"{where}: needs a 'type' (string) and 'kwargs' (object)")
    if not isinstance(exp.get("kwargs", {}), Mapping):
        raise SuiteFileError(f"{where}: 'kwargs' must be an object")
    if exp["type"] not in VALUE_FREE_TYPES:
        raise SuiteFileError(
            f"{where}: {exp['type']} is not one of the value-free expectation types"
            " (its result could show a cell value; see tokumei/expectations/suites.py)"
        )
    return exp


def load_hand_suites(gx_dir: Path, outputs: Sequence[str] = ()) -> dict[str, list[HandSuite]]:
    """Hand-written suites of ``gx_dir/expectations``, by the output they check.

    ``outputs`` are the run's output names: a hand-written suite may not take one as its own
    name (the generated suite has it).
    """
    by_output: dict[str, list[HandSuite]] = {}
    for path in sorted((Path(gx_dir) / "expectations").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SuiteFileError(f"{path.name}: not readable JSON ({type(exc).__name__})") from None
        if not isinstance(doc, Mapping):
            raise SuiteFileError(f"{path.name}: expected a JSON object")
        meta = doc.get("meta") or {}
        if meta.get(GENERATED_META):
            continue
        name, output = doc.get("name"), meta.get(OUTPUT_META)
        if not isinstance(name, str) or not name:
            raise SuiteFileError(f"{path.name}: the suite needs a 'name'")
        if not isinstance(output, str) or not output:
            raise SuiteFileError(f"{path.name}: meta.{OUTPUT_META} must name the output it checks")
        if name in outputs:
            raise SuiteFileError(f"{path.name}: suite name {name} is an output's generated suite")
        exps = doc.get("expectations")
        if not isinstance(exps, list) or not exps:
            raise SuiteFileError(f"{path.name}: 'expectations' must be a non-empty list")
        checked = tuple(_check_expectation(path, i, e) for i, e in enumerate(exps))
        notes = doc.get("notes") if isinstance(doc.get("notes"), str) else None
        by_output.setdefault(output, []).append(HandSuite(name, output, path, checked, notes))
    names = [s.name for suites in by_output.values() for s in suites]
    if len(set(names)) != len(names):
        raise SuiteFileError(f"{gx_dir}/expectations: two hand-written suites share a name")
    return by_output
