"""Measure what the GX layout choices cost (docs/adr/0008-gx-project.md).

Usage: ``uv run python bench/gx_docs_build.py [outputs=13]``. Validates ``outputs`` small
statistics frames (the pipeline validates 12 tables + the record-level release) and times:

* one Data Docs build for the run (what tokumei does) vs. one build per output Checkpoint
  (what an ``UpdateDataDocsAction`` in each output's Checkpoint does: the same
  ``build_data_docs`` call restricted to that Checkpoint's results and suites);
* creating a file-based context on a copy of ``gx/`` vs. an ephemeral one;
* the offline rewrite and the merge into the history site.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_expectations import stats_frame, stats_spec  # noqa: E402

import tokumei.expectations.runner as R  # noqa: E402

timings: dict[str, float] = {}


def _spy(context, docs_dir, history_dir):  # noqa: ANN001, ANN202
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    keys = context.validation_results_store.list_keys()
    t = time.perf_counter()
    for k in keys:
        suite = ExpectationSuiteIdentifier(name=k.expectation_suite_identifier.name)
        context.build_data_docs(site_names=[R.SITE_NAME], resource_identifiers=[k, suite])
    timings["per-checkpoint docs builds"] = time.perf_counter() - t
    t = time.perf_counter()
    context.build_data_docs(site_names=[R.SITE_NAME])
    timings["one docs build per run"] = time.perf_counter() - t
    t = time.perf_counter()
    out = _finish(context, docs_dir, history_dir)
    timings["offline rewrite + history merge"] = time.perf_counter() - t
    return out


_finish = R._finish_site


def main(n: int) -> None:
    import great_expectations as gx

    tmp = Path(tempfile.mkdtemp(prefix="gxbench"))
    names = [f"t{i:02d}" for i in range(n)]
    R._finish_site = _spy
    t = time.perf_counter()
    R.validate_outputs(
        {m: stats_frame() for m in names},
        {m: replace(stats_spec(), name=m) for m in names},
        tmp / "docs",
        "bench",
        history_dir=tmp / "history",
    )
    timings["validate_outputs total (with both docs variants)"] = time.perf_counter() - t
    shutil.copytree(ROOT / "gx", tmp / "proj" / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    t = time.perf_counter()
    ctx = gx.get_context(mode="file", project_root_dir=tmp / "proj")
    timings["file context on gx/"] = time.perf_counter() - t
    t = time.perf_counter()
    suites = ctx.suites.all()
    timings[f"file context: load {len(suites)} suites"] = time.perf_counter() - t
    t = time.perf_counter()
    gx.get_context(mode="ephemeral")
    timings["ephemeral context"] = time.perf_counter() - t
    print(f"| step ({n} outputs) | seconds |\n|---|---|")
    for k, v in timings.items():
        print(f"| {k} | {v:.2f} |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 13)
