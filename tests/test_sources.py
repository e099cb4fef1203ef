"""Edge cases of the chunked JSON Lines reader (issue 6): chunk borders, line ends, key checks.

The reader splits the decompressed bytes itself and types each chunk in one DuckDB query, so
these tests pin what must not change with the chunk size: line numbers, raw bytes kept byte
for byte, blank lines, and the first-failing-check reason of every line.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from tokumei.anonymize.policy import UnclassifiedColumnError, default_policy_dir, load_policy
from tokumei.ingest import sources
from tokumei.ingest.sources import read_landing_file

POLICY = load_policy(default_policy_dir())
COOKIES = POLICY.source("cookies")
EVENTS = POLICY.source("events")


def _event(i: int, **extra: object) -> bytes:
    row = {"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": f"c{i}", **extra}
    return json.dumps(row, ensure_ascii=False).encode()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


MIXED = [
    _event(1),
    b"",
    b'  {"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": "lead"}',
    _event(2, search_query="[not an array]", inquiry_text="{not an object} 日本語"),
    b'"a string"',
    b"null",
    b'{"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": {"x": 1}}',
    b'{"cookie_id": "rev", "event": "click", "ts": "2026-11-24T10:00:00+09:00"}',  # other order
    _event(3) + b"\r",  # CRLF: the \r is kept in the raw bytes and is JSON whitespace
    b"\xff\xfe{",
    _event(4, amount_jpy=-1),
    b"{",
    _event(5, lat="35.5", lon=139),
]


@pytest.mark.parametrize("chunk", [None, 7, 64, 300])
def test_results_do_not_depend_on_the_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk is not None:
        monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
    path = _write(tmp_path / "p.jsonl.gz", b"\n".join(MIXED))  # no trailing newline
    ok, bad = read_landing_file(path, EVENTS)
    assert ok["cookie_id"].to_list() == ["c1", "lead", "c2", "rev", "c3", "c5"]
    assert ok.filter(pl.col("cookie_id") == "c2")["search_query"].item() == "[not an array]"
    assert ok.filter(pl.col("cookie_id") == "c5")["lat"].item() == 35.5
    assert bad["line"].to_list() == [5, 6, 7, 10, 11, 12]
    assert bad["reason"].to_list() == [
        "not a JSON object",
        "not a JSON object",
        "field cookie_id: wrong type",
        "invalid UTF-8",
        "field amount_jpy: below minimum",
        "malformed JSON",
    ]
    assert bad["raw"].to_list() == [MIXED[i - 1] for i in bad["line"].to_list()]
    assert bad.schema == sources.empty_quarantine().schema
    assert ok.schema == sources.empty_frame(EVENTS).schema


def test_crlf_raw_line_is_kept_byte_for_byte(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.jsonl", b'{"cookie_id": "a"}\r\n[1]\r\n\r\n')
    ok, bad = read_landing_file(path, COOKIES)
    assert ok["cookie_id"].to_list() == ["a"]
    assert bad["raw"].to_list() == [b"[1]\r", b"\r"]
    assert bad["reason"].to_list() == ["not a JSON object", "malformed JSON"]


def test_unknown_key_in_a_late_chunk_stops_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "CHUNK_BYTES", 32)
    lines = [b'{"cookie_id": "c%d"}' % i for i in range(50)] + [b'{"zz": 1, "cookie_id": "x"}']
    path = _write(tmp_path / "c.jsonl", b"\n".join(lines) + b"\n")
    with pytest.raises(UnclassifiedColumnError, match="zz"):
        read_landing_file(path, COOKIES)


def test_empty_and_blank_files_have_the_typed_schema(tmp_path: Path) -> None:
    for name, data in (("e.jsonl", b""), ("b.jsonl.gz", b"\n\n\n")):
        ok, bad = read_landing_file(_write(tmp_path / name, data), COOKIES)
        assert ok.height == 0 and bad.height == 0
        assert ok.schema == sources.empty_frame(COOKIES).schema


def test_a_line_longer_than_a_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "CHUNK_BYTES", 16)
    long = json.dumps({"cookie_id": "x" * 200}).encode()
    path = _write(tmp_path / "l.jsonl", b'{"cookie_id": "a"}\n' + long + b"\n{\n")
    ok, bad = read_landing_file(path, COOKIES)
    assert ok["cookie_id"].to_list() == ["a", "x" * 200]
    assert bad["line"].to_list() == [3] and bad["raw"].to_list() == [b"{"]


def test_concatenated_gzip_members_are_one_file(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(
        gzip.compress(b'{"cookie_id": "a"}\n{"coo') + gzip.compress(b'kie_id": "b"}\n')
    )
    ok, bad = read_landing_file(path, COOKIES)
    assert ok["cookie_id"].to_list() == ["a", "b"] and bad.height == 0


MEASUREMENTS = POLICY.source("measurements")
CSV_HEADER = b"device_id,user_id,ts,weight_kg,body_fat_pct"
CSV_LINES = [
    b"scale-1,user-0001,2026-11-24T07:00:00+09:00,60.5,20.1",
    b"scale-2,user-0002,2026-11-24T07:00:00+09:00,61.5,20.2,extra",  # one field too many
    b'scale-3,"user-0003,2026-11-24T07:00:00+09:00,62.5,20.3',  # unterminated quote
    b'"scale-4","user-""0004""",2026-11-24T07:00:00+09:00,,20.4\r',  # quoting, empty, CRLF
    b"scale-5,user-0005,2026-11-24T07:00:00+09:00,63.5",  # one field missing
    b'scale-6,us"e"r,2026-11-24T07:00:00+09:00,64.5,20.6',  # stray quotes in a field
    b"scale-7,user-0007,2026-11-24T07:00:00+09:00,-5,20.7",  # typed check: below minimum
    b"scale-8,user-0008,2026-11-24T07:00:00+09:00,65.5,20.8",
]


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
@pytest.mark.parametrize("chunk", [None, 40])
def test_structurally_bad_csv_lines_are_quarantined_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, chunk: int | None
) -> None:
    if chunk:
        monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
    data = b"\xef\xbb\xbf" + CSV_HEADER + b"\n" + b"\n".join(CSV_LINES) + b"\n"
    good, bad = read_landing_file(_write(tmp_path / name, data), MEASUREMENTS)
    assert good["device_id"].to_list() == ["scale-1", "scale-4", "scale-8"]
    assert good["user_id"].to_list() == ["user-0001", 'user-"0004"', "user-0008"]
    assert good["weight_kg"].to_list() == [60.5, None, 65.5]
    assert dict(zip(bad["line"], bad["reason"], strict=True)) == {
        3: "CSV: more fields than the header",
        4: "CSV: unterminated quote",
        6: "CSV: fewer fields than the header",
        7: "CSV: stray quote inside a field",
        8: "field weight_kg: below minimum",
    }
    assert bad["raw"][0] == CSV_LINES[1]  # kept as received (no special-care column)
    assert json.loads(bad["raw"][4])["device_id"] == "scale-7"


def test_csv_columns_are_checked_against_the_policy(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", CSV_HEADER + b",shoe_size\n" + CSV_LINES[0] + b",27\n")
    with pytest.raises(UnclassifiedColumnError, match="shoe_size"):
        read_landing_file(path, MEASUREMENTS)


def test_a_gzip_of_several_members_is_read_whole(tmp_path: Path) -> None:
    """Exporters that append to a .gz write one member per append; every member counts."""
    path = tmp_path / "part.jsonl.gz"
    path.write_bytes(gzip.compress(_event(1) + b"\n") + gzip.compress(_event(2) + b"\n"))
    good, bad = read_landing_file(path, EVENTS)
    assert good["cookie_id"].to_list() == ["c1", "c2"] and bad.height == 0


def test_a_cut_gzip_stops_the_file_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "part-00007.jsonl.gz"
    whole = gzip.compress(b"\n".join(_event(i) for i in range(2000)) + b"\n")
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(OSError, match=r"^part-00007\.jsonl\.gz: truncated compressed stream$"):
        read_landing_file(path, EVENTS)
