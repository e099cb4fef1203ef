"""Failures are one line naming the step, the file and the cause in words, never a data value.

Before issue 17 a truncated gzip, a read-only --out or a full disk all printed
``builtins.OSError (details withheld…)``.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DAY, PLANTED, TEST_KEY, write_handmade_landing
from typer.testing import CliRunner

from tokumei.anonymize.policy import load_policy
from tokumei.cli import app
from tokumei.infra.errors import FileError, about_file, relative, safe_reason
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

EVENTS = f"events/date={DAY}/part-0.jsonl.gz"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return write_handmade_landing(tmp_path / "landing")


def _settings(landing: Path, out: Path) -> Settings:
    return Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out).resolved()


def test_truncated_gzip_names_the_file_and_the_cause(landing: Path, tmp_path: Path) -> None:
    from tokumei.ingest.sources import read_landing_file

    path = landing / EVENTS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    settings = _settings(landing, tmp_path / "out")
    policy = load_policy(settings.policy_dir)
    with pytest.raises(Exception) as err:  # noqa: PT011 - whatever the reader raises
        read_landing_file(path, policy.source("events"))
    reason = safe_reason(err.value, "extract", settings.error_roots())
    assert reason == f"extract: truncated gzip stream in {EVENTS}"


def test_about_file_turns_a_known_cause_into_a_file_error(landing: Path) -> None:
    path = landing / EVENTS
    data = gzip.compress(os.urandom(20000))
    path.write_bytes(data[: len(data) // 2])
    with (
        pytest.raises(FileError) as err,
        about_file(path, [(landing, "")]),
        gzip.open(path, "rb") as fh,
    ):
        fh.read()
    assert str(err.value) == f"truncated gzip stream in {EVENTS}"
    # an unknown cause keeps its type; the file travels with it, the message stays withheld
    with pytest.raises(KeyError) as err2, about_file(path, [(landing, "")]):
        raise KeyError(PLANTED["email"])
    reason = safe_reason(err2.value, "extract")
    assert EVENTS in reason and "details withheld" in reason
    assert PLANTED["email"] not in reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space left on device writing out/published/stats"),
        (errno.EACCES, "permission denied on out/published/stats"),
        (errno.EROFS, "read-only file system writing out/published/stats"),
        (errno.EDQUOT, "disk quota exceeded writing out/published/stats"),
    ],
)
def test_errno_in_words_with_the_file_relative_to_the_output(
    code: int, words: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    exc = OSError(code, os.strerror(code), str(out / "published" / "stats"))
    assert safe_reason(exc, "publish", [(out, "out")]) == f"publish: {words}"


def test_library_messages_map_to_words_without_their_text() -> None:
    """Polars and DuckDB put the OS error in their message (next to values, possibly): only
    our words are printed."""
    import polars as pl

    exc = pl.exceptions.ComputeError(f"{PLANTED['phone']}: No space left on device (os error 28)")
    assert safe_reason(exc, "scrub") == "scrub: no space left on device"
    unknown = safe_reason(ValueError(PLANTED["phone"]), "scrub")
    assert PLANTED["phone"] not in unknown and "details withheld" in unknown


def test_paths_are_shown_relative_to_the_innermost_root(tmp_path: Path) -> None:
    roots = [(tmp_path, ""), (tmp_path / "out", "out")]
    assert relative(tmp_path / "out" / "published", roots) == "out/published"
    assert relative(tmp_path / "events" / "a.jsonl", roots) == "events/a.jsonl"
    assert relative("/elsewhere/x", roots) == "/elsewhere/x"


@contextlib.contextmanager
def _tmpfs(where: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_read_only_out_is_one_line_naming_the_output(
    debug: bool, landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line; ``--debug`` adds the traceback before it."""
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    out = tmp_path / "out"
    if os.geteuid() == 0:  # root ignores permission bits: a read-only file system instead
        ctx: contextlib.AbstractContextManager[Path] = _tmpfs(out, "1m", read_only=True)
        want = "start: read-only file system writing out/_run.lock.guard"
    else:
        out.mkdir()
        out.chmod(0o555)
        ctx = contextlib.nullcontext(out)
        want = "start: permission denied on out/_run.lock.guard"
    with ctx:
        args = ["run", "--landing", str(landing), "--out", str(out), "--date", DAY]
        result = CliRunner().invoke(app, args + (["--debug"] if debug else []))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1] == f"✗ run failed: {want}", result.output
    assert ("Traceback" in result.output) is debug


@pytest.mark.skipif(os.geteuid() != 0, reason="a full disk is simulated with a tmpfs (root)")
def test_full_disk_names_the_step_and_the_cause(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    with _tmpfs(tmp_path / "out", "2m") as out:
        filler = out / "filler"
        with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 4096)
        size = filler.stat().st_size
        os.truncate(filler, size - 48 * 1024)  # room for start's small files, not the data
        with pytest.raises(steps.TokumeiError) as err:
            steps.run_all(_settings(landing, out), DAY)
        reason = str(err.value)
        # the first step that writes data (ingest: extract writes only small dimensions)
        assert reason.startswith("ingest: no space left on device writing out/"), reason
        work = out / "_work"
        assert not work.exists() or not any(work.iterdir())  # cleanup still ran


def test_library_tracebacks_are_dropped_from_the_log() -> None:
    """GX logged a traceback on a full disk; without --debug the log line stays, the
    traceback (whose text may quote data) goes."""
    import io
    import logging

    from tokumei.infra.errors import without_traceback

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(without_traceback)
    logger = logging.getLogger("great_expectations.test_only")
    logger.addHandler(handler)
    try:
        try:
            raise OSError(errno.ENOSPC, f"No space left on device: {PLANTED['email']}")
        except OSError:
            logger.exception("could not write Data Docs")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "could not write Data Docs" in text
    assert "Traceback" not in text and PLANTED["email"] not in text


def test_tokumei_run_names_step_file_and_cause_from_a_step_process(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default run (each step in its own process): a truncated gzip that its producer
    sealed as it is. The step process's reason crosses the process boundary with its step."""
    from conftest import seal_landing

    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    path = landing / EVENTS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    seal_landing(landing)
    args = ["run", "--landing", str(landing), "--out", str(tmp_path / "out"), "--date", DAY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1] == f"✗ run failed: ingest: truncated gzip stream in {EVENTS}", result.output
