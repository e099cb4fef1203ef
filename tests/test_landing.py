"""The landing completeness contract (docs/landing.md): markers, their checks, value-free reasons."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tokumei.ingest.landing import (
    MARKER,
    Problem,
    check_day,
    day_folder,
    describe_file,
    seal_day,
    write_marker,
)

DAY = "2026-11-24"
SECRET = "hanako.yamada@example.co.jp"


def _day(tmp_path: Path) -> Path:
    folder = day_folder(tmp_path, "events", DAY)
    folder.mkdir(parents=True)
    with gzip.open(folder / "part-00000.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"email": SECRET}) + "\n" + json.dumps({"a": 1}) + "\n")
    (folder / "part-00001.jsonl").write_text('{"a": 2}\n{"a": 3}\n{"a": 4}')  # no last newline
    return folder


def _assert_value_free(reason: str | None) -> None:
    assert reason and SECRET not in reason and "\n" not in reason


def test_a_sealed_day_is_complete_with_its_line_counts(tmp_path: Path) -> None:
    folder = _day(tmp_path)
    write_marker(folder)
    status = check_day(tmp_path, "events", DAY)
    assert status.complete and status.reason is None and status.problem is None
    assert {f.name: f.lines for f in status.files} == {
        "part-00000.jsonl.gz": 2,
        "part-00001.jsonl": 3,
    }
    assert status.lines == 5


def test_no_folder_and_no_marker_are_incomplete(tmp_path: Path) -> None:
    assert check_day(tmp_path, "events", DAY).problem is Problem.NO_FOLDER
    _day(tmp_path)
    status = check_day(tmp_path, "events", DAY)
    assert not status.complete and status.problem is Problem.NO_MARKER
    assert f"events/date={DAY}" in (status.reason or "")


def test_a_listed_file_that_is_missing(tmp_path: Path) -> None:
    folder = _day(tmp_path)
    write_marker(folder)
    (folder / "part-00001.jsonl").unlink()
    status = check_day(tmp_path, "events", DAY)
    assert status.problem is Problem.MISSING_FILE
    assert f"events/date={DAY}/part-00001.jsonl" in (status.reason or "")
    _assert_value_free(status.reason)


def test_a_file_with_another_checksum(tmp_path: Path) -> None:
    folder = _day(tmp_path)
    write_marker(folder)
    (folder / "part-00001.jsonl").write_text('{"a": 2}\n{"a": 3}\n{"a": 5}')  # same size
    status = check_day(tmp_path, "events", DAY)
    assert status.problem is Problem.CHECKSUM and "part-00001.jsonl" in (status.reason or "")
    _assert_value_free(status.reason)


def test_a_marker_whose_line_count_differs(tmp_path: Path) -> None:
    folder = _day(tmp_path)
    entries = [describe_file(p) for p in sorted(folder.iterdir())]
    wrong = [entries[0], type(entries[1])(**{**entries[1].as_dict(), "lines": 4})]
    write_marker(folder, wrong)
    status = check_day(tmp_path, "events", DAY)
    assert status.problem is Problem.LINE_COUNT
    assert "3 lines" in (status.reason or "") and "lists 4" in (status.reason or "")


def test_a_file_written_after_the_marker_is_not_part_of_the_day(tmp_path: Path) -> None:
    folder = _day(tmp_path)
    write_marker(folder)
    (folder / "part-00002.jsonl").write_text('{"a": 9}\n')
    status = check_day(tmp_path, "events", DAY)
    assert status.problem is Problem.UNLISTED_FILE and "part-00002.jsonl" in (status.reason or "")


@pytest.mark.parametrize("content", [b"", None])
def test_an_empty_day_is_not_complete(tmp_path: Path, content: bytes | None) -> None:
    folder = day_folder(tmp_path, "events", DAY)
    if content is not None:
        folder.mkdir(parents=True)
        with gzip.open(folder / "part-00000.jsonl.gz", "wb") as fh:
            fh.write(content)
    seal_day(tmp_path, DAY, ["events"])  # a folder with no files at all is sealed empty too
    status = check_day(tmp_path, "events", DAY)
    assert status.problem is Problem.EMPTY and not status.complete


def test_a_broken_marker_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    folder = _day(tmp_path)
    (folder / MARKER).write_text("{not json")
    status = check_day(tmp_path, "events", DAY)
    assert status.problem is Problem.BAD_MARKER and MARKER in (status.reason or "")
    (folder / MARKER).write_text(json.dumps({"format": 1, "files": [{"name": "../x.jsonl"}]}))
    assert check_day(tmp_path, "events", DAY).problem is Problem.BAD_MARKER
