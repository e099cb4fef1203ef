"""Step processes of `tokumei run` (docs/architecture.md §2): reused while the day is small,
a fresh one once the day's data or the process grows; failures and die-with-parent unchanged."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tokumei.infra.processes import (
    MAX_RSS_MB_ENV,
    MAX_WORK_MB_ENV,
    StepProcess,
    keep_step_process,
    may_start_processes,
    resident_bytes,
)

MB = 2**20


def _pdeathsig() -> int:
    """The parent-death signal of the calling process (Linux ``PR_GET_PDEATHSIG``)."""
    sig = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)
    return sig.value


def _imported(module: str) -> bool:
    return module in sys.modules


def _fail() -> None:
    raise ValueError("a step failed")


def _mark_warm() -> None:
    os.environ["TOKUMEI_TEST_WARMED"] = "1"


def _was_warmed() -> bool:
    return os.environ.get("TOKUMEI_TEST_WARMED") == "1"


def test_a_small_day_keeps_its_step_process(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "part-0.parquet").write_bytes(b"x" * MB)
    assert keep_step_process(500 * MB, tmp_path)


def test_a_big_work_directory_gets_a_fresh_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_WORK_MB_ENV, "1")
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "part-0.parquet").write_bytes(b"x" * MB)
    assert keep_step_process(10 * MB, tmp_path)  # exactly at the limit: kept
    (tmp_path / "layer" / "part-1.parquet").write_bytes(b"x")
    assert not keep_step_process(10 * MB, tmp_path)


def test_a_big_process_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_RSS_MB_ENV, "100")
    assert keep_step_process(100 * MB, tmp_path)
    assert not keep_step_process(100 * MB + 1, tmp_path)


def test_defaults_keep_what_a_small_day_leaves_resident(tmp_path: Path) -> None:
    """A 500-person day ends near 1,030 MiB with every step's libraries and models loaded
    (bench/results/small_day.md); the default limit keeps it, a GiB-sized day does not."""
    assert keep_step_process(1030 * MB, tmp_path)
    assert not keep_step_process(2048 * MB, tmp_path)


def test_resident_bytes_is_this_process_now() -> None:
    before = resident_bytes()
    block = bytearray(64 * MB)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert resident_bytes() >= before + 60 * MB
    del block


def test_steps_share_a_process_while_it_is_kept() -> None:
    with StepProcess(lambda rss: True) as process:
        pids = {process.run(os.getpid) for _ in range(3)}
        assert process.started == 1
    assert len(pids) == 1 and os.getpid() not in pids


def test_each_step_gets_a_fresh_process_when_not_kept() -> None:
    seen: list[int] = []
    with StepProcess(lambda rss: seen.append(rss) or False) as process:
        pids = [process.run(os.getpid) for _ in range(3)]
        assert process.started == 3
    assert len(set(pids)) == 3 and os.getpid() not in pids
    assert all(rss > 10 * MB for rss in seen)  # the child's memory, measured after each call


def test_once_not_kept_the_next_process_starts_ahead_with_its_imports() -> None:
    """A big day (no call kept): while a step runs, the next step's process is started and
    imports what that step needs; the next call runs there. A small day starts none ahead."""
    with StepProcess(lambda rss: False) as process:
        first = process.run(os.getpid, ahead=("tokumei.infra.dated",))  # not known big yet
        assert process.started == 1
        second = process.run(os.getpid, ahead=("tokumei.infra.dated",))
        assert process.started == 3  # the second call's process, and the third's ahead
        assert process.run(_imported, "tokumei.infra.dated")
        assert process.started == 3  # the third call ran in the process started ahead
    assert len({first, second, os.getpid()}) == 3
    with StepProcess(lambda rss: True) as process:
        for _ in range(3):
            process.run(os.getpid, ahead=("tokumei.infra.dated",))
        assert process.started == 1


def _may_start(queue: Any) -> None:
    queue.put(may_start_processes())


def test_a_daemonic_process_runs_its_workers_in_threads() -> None:
    """A Celery prefork worker's task is daemonic and may not start processes: extract's DB
    reader and ingest's workers then fall back to threads (the Celery integration test runs
    the DAG that way)."""
    from multiprocessing import get_context

    assert may_start_processes()
    ctx = get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_may_start, args=(queue,), daemon=True)
    child.start()
    assert queue.get(timeout=60) is False
    child.join(timeout=60)


def test_prestarted_process_runs_the_first_step() -> None:
    with StepProcess(lambda rss: True) as process:
        process.prestart("tokumei.infra.errors")
        assert process.run(_imported, "tokumei.infra.errors")
        assert process.started == 1


def test_a_day_known_big_starts_the_second_step_s_process_during_the_first() -> None:
    """``expect_fresh`` (a big landing): no call is kept, whatever ``keep`` says, and the
    next call's process starts ahead from the first call on."""
    with StepProcess(lambda rss: True) as process:
        process.expect_fresh()
        first = process.run(os.getpid, ahead=("tokumei.infra.dated",))
        assert process.started == 2  # the first call's process and the second's, ahead
        assert process.run(_imported, "tokumei.infra.dated")
        assert process.run(os.getpid) != first
        assert process.started == 3


def test_a_reserved_call_runs_in_its_own_process_with_its_imports_done_ahead() -> None:
    """A small day's validate: its process starts (and imports GX) at the run's start, runs
    the one call named for it and ends; the other calls keep their reused step process."""
    with StepProcess(lambda rss: True) as process:
        process.reserve("validate", ("tokumei.infra.dated",))
        assert process.reserved("validate") and not process.reserved("publish")
        step = process.run(os.getpid, name="extract")
        assert not process.run(_imported, "tokumei.infra.dated", name="stats_map")
        assert process.run(_imported, "tokumei.infra.dated", name="validate")
        assert not process.reserved("validate")  # one call, then the process is gone
        assert process.run(os.getpid, name="publish") == step
        assert process.started == 2
    assert step != os.getpid()


def test_a_reserved_call_that_fails_comes_back_and_unused_reservations_end() -> None:
    with pytest.raises(ValueError, match="a step failed"), StepProcess(lambda rss: True) as p:
        p.reserve("validate", ())
        p.run(_fail, name="validate")
    assert not p.reserved("validate")
    with StepProcess(lambda rss: True) as p:
        p.reserve("validate", ("tokumei.infra.dated",))
    assert not p.reserved("validate")  # closed with the block, never run


def test_a_failure_comes_back_and_the_process_is_shut_down_with_the_block() -> None:
    with pytest.raises(ValueError, match="a step failed"), StepProcess(lambda rss: True) as p:
        p.run(_fail)
    assert p._pool is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_reused_step_process_still_dies_with_its_parent() -> None:
    with StepProcess(lambda rss: True) as process:
        assert process.run(_pdeathsig) == signal.SIGKILL
        assert process.run(_pdeathsig) == signal.SIGKILL


SCRIPT = """
import sys

from tokumei.infra.processes import StepProcess


def step() -> int:
    print("written by the step, not flushed", end="")
    print("and to stderr", end="", file=sys.stderr)
    return 7


if __name__ == "__main__":
    with StepProcess(lambda rss: True) as process:
        assert process.run(step) == 7
"""


def test_a_step_process_ends_without_teardown_but_flushes_its_output(tmp_path: Path) -> None:
    """It leaves through ``os._exit`` (the interpreter's teardown cost ~1 s after spaCy and
    GX), after flushing what a step printed."""
    import subprocess

    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "written by the step, not flushed"
    assert "and to stderr" in proc.stderr


def test_only_a_small_local_landing_gets_reserved_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_all`` reserves validate's process when the day's landing files are within the
    reuse limit; other days' files do not count, and an s3:// landing never reserves."""
    from tokumei.infra.settings import Settings
    from tokumei.pipeline.steps import landing_scale

    day = "2026-11-24"
    for d, size in ((day, MB), ("2026-11-23", 5 * MB)):
        folder = tmp_path / "events" / f"date={d}"
        folder.mkdir(parents=True)
        (folder / "part-00000.jsonl.gz").write_bytes(b"x" * size)
    settings = Settings(landing=tmp_path, db_url="sqlite://", out=tmp_path / "out")
    monkeypatch.setenv(MAX_WORK_MB_ENV, "2")
    assert landing_scale(settings, day) == "small"
    (tmp_path / "cookies" / f"date={day}").mkdir(parents=True)
    (tmp_path / "cookies" / f"date={day}" / "part-00000.jsonl.gz").write_bytes(b"x" * 2 * MB)
    assert landing_scale(settings, day) != "small"  # 3 MiB of the day's files, over 2
    monkeypatch.setenv(MAX_WORK_MB_ENV, "64")
    assert landing_scale(settings, day) == "small"
    s3 = Settings(tmp_path, "sqlite://", tmp_path, landing_url="s3://b/l")
    assert landing_scale(s3, day) is None


def test_a_landing_four_times_the_reuse_limit_is_a_big_day_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokumei.infra.settings import Settings
    from tokumei.pipeline.steps import landing_scale

    day = "2026-11-24"
    folder = tmp_path / "events" / f"date={day}"
    folder.mkdir(parents=True)
    settings = Settings(landing=tmp_path, db_url="sqlite://", out=tmp_path / "out")
    monkeypatch.setenv(MAX_WORK_MB_ENV, "1")
    (folder / "part-00000.jsonl.gz").write_bytes(b"x" * 2 * MB)
    assert landing_scale(settings, day) is None  # undecided: neither small nor big
    (folder / "part-00001.jsonl.gz").write_bytes(b"x" * 3 * MB)
    assert landing_scale(settings, day) == "big"  # 5 MiB > 4 x 1 MiB
    s3 = Settings(tmp_path, "sqlite://", tmp_path, landing_url="s3://b/l")
    assert landing_scale(s3, day) is None


def test_a_module_function_entry_is_called_after_its_import() -> None:
    """``"module:function"`` in a step's imports warms the process up (validate: GX's first
    validation, ``tokumei.expectations.runner.warm_up``)."""
    with StepProcess(lambda rss: True) as process:
        process.reserve("validate", ("tokumei.infra.dated", f"{__name__}:_mark_warm"))
        assert process.run(_was_warmed, name="validate")
