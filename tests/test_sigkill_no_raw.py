"""A SIGKILL at any step leaves no raw value outside ``quarantine/`` (issue 16).

``tokumei run`` is started on the hand-written landing (which plants identifiers and personal
data, ``conftest.PLANTED``), killed with SIGKILL (with every step process) while each step runs,
and everything it left under ``--out`` is searched for the planted values: Parquet cells, JSON,
HTML and logs alike. ``quarantine/`` keeps rejected lines as received by design (restricted, under
rights erasure) and is the only exception. Names are searched too: a name in free text is only
NER's to find, and NER runs in ``scrub``, so no layer before it may hold the free text unmasked
unless the name is one NER alone finds (this landing's name sits in DB columns, which are dropped).
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, PLANTED, TEST_KEY

from tokumei.pipeline.steps import STEPS

#: Planted values searched for (all of them: ids, contact data, numbers, name, address).
RAW = sorted(set(PLANTED.values()))


def _cells(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception:  # noqa: BLE001 - a file cut by the kill: read its bytes instead
            return [path.read_bytes().decode("utf-8", "replace")]
        return [
            v
            for c in frame.columns
            if frame[c].dtype == pl.String
            for v in frame[c].drop_nulls().to_list()
        ] + [path.read_bytes().decode("utf-8", "replace")]
    return [path.read_bytes().decode("utf-8", "replace")]


def raw_left(out: Path) -> list[str]:
    """``<file>: <which planted key>`` for every planted value found outside quarantine/."""
    names = {v: k for k, v in PLANTED.items()}
    found = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if not path.is_file() or rel.parts[0] == "quarantine":
            continue
        text = "\n".join(_cells(path))
        found += [f"{rel}: {names[v]}" for v in RAW if v in text]
    return found


def _kill_during(step: str, landing: Path, out: Path, delay: float) -> bool:
    """Run until ``step`` starts, wait ``delay`` s, SIGKILL the whole run; False if the run
    ended before."""
    env = {**os.environ, "TOKUMEI_PSEUDONYM_KEY": TEST_KEY, "TOKUMEI_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "tokumei.cli", "run", "--landing", str(landing)]
    cmd += ["--out", str(out), "--date", DAY]
    run = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    assert run.stderr is not None
    try:
        for raw in run.stderr:
            if f"▶ {step}".encode() in raw:
                time.sleep(delay)
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                return True
        return False
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


@pytest.mark.parametrize("step", [name for name, _ in STEPS])
def test_sigkill_during_each_step_leaves_nothing_raw(
    step: str, handmade_landing: Path, tmp_path: Path
) -> None:
    # the steps of this small landing take about a second each: killed early and late in it
    for delay in (0.2, 1.0):
        out = tmp_path / f"out-{delay}"
        assert _kill_during(step, handmade_landing, out, delay), f"the run never reached {step}"
        if delay < 1:  # the late kill may find the last steps done and cleaned up
            assert (out / "_work").is_dir(), "the kill left no work layer to search"
        assert raw_left(out) == []


def test_the_search_finds_raw_values(handmade_landing: Path, tmp_path: Path) -> None:
    """The search itself works: a copy of a landing file under out/ is found."""
    out = tmp_path / "out"
    (out / "_work" / "x").mkdir(parents=True)
    source = next((handmade_landing / "events").rglob("*.jsonl.gz"))
    (out / "_work" / "x" / "copy.jsonl").write_bytes(gzip.decompress(source.read_bytes()))
    frame = pl.DataFrame({"v": [f"mail {PLANTED['email']} here"]})
    frame.write_parquet(out / "_work" / "x" / "t.parquet")
    (out / "quarantine").mkdir()
    frame.write_parquet(out / "quarantine" / "kept-as-received.parquet")
    left = raw_left(out)
    assert "_work/x/t.parquet: email" in left
    assert "_work/x/copy.jsonl: cookie_id" in left
    assert not any(f.startswith("quarantine") for f in left)
