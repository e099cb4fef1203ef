"""The native one-parse JSON Lines pass stands in for the DuckDB query without changing a result.

``tokumei.ingest.jsonl_native`` accepts only the lines whose verdict and values it knows to be
the query's and leaves every other line to the query (docs/adr/0009-native-jsonl-reader.md).
These tests read the same files with and without it (``TOKUMEI_NATIVE_JSONL=0``) and demand
the same typed rows, in the same order, and the same quarantine: on hand-written hostile lines,
and on random byte-level mutations of valid lines.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokumei.anonymize.policy import (
    ColumnPolicy,
    SourcePolicy,
    UnclassifiedColumnError,
    default_policy_dir,
    load_policy,
)
from tokumei.ingest import jsonl_native, sources
from tokumei.ingest.sources import read_landing_file

EVENTS = load_policy(default_policy_dir()).source("events")
#: The events policy with a special-care key: classified (allowed in a line), never read.
WITH_SPECIAL = EVENTS.model_copy(
    update={
        "columns": {**EVENTS.columns, "diagnosis": ColumnPolicy(type="string", role="special_care")}
    }
)

BASE = {
    "ts": "2026-11-24T10:00:00+09:00",
    "event": "page_view",
    "cookie_id": "c-1",
    "user_id": "u-1",
    "url": "https://shop.example.jp/items/1",
    "lat": 35.68,
    "lon": 139.76,
    "amount_jpy": 1200,
}


def _line(**changes: object) -> bytes:
    row = {**BASE, **changes}
    return json.dumps({k: v for k, v in row.items() if v is not ...}, ensure_ascii=False).encode()


HOSTILE = [
    _line(),
    _line(user_id=None, search_query="東京 渋谷 ランチ", inquiry_text="配送について\n再送"),
    _line(user_id=123),  # a number where text belongs
    _line(user_id=True),
    _line(amount_jpy=12.5),
    _line(amount_jpy=1e3),
    _line(amount_jpy="1500"),  # text where a number belongs
    _line(amount_jpy=-5),
    _line(amount_jpy=0),
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","amount_jpy":-0}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","amount_jpy":99999999999999999999}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","amount_jpy":18446744073709551615}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","lat":35,"lon":1E+2}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","lat":3.5e1,"lon":-0.0}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","lat":1e400}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","lat":NaN}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"c","lat":0.1000000000000000055511151231257827}',
    _line(lat=True),
    _line(event="unknown_event"),
    _line(event=5),
    _line(ts=12345),
    _line(ts="2026-11-24 10:00:00"),  # no offset
    _line(ts="not a time"),
    _line(cookie_id={"x": 1}),
    _line(cookie_id=[1, 2]),
    _line(cookie_id=...),  # missing required
    b"{}",
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"a","cookie_id":"b"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"a","cookie_id":"a"}',
    b'{"t\\u0073":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"esc-key"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\\u0041\\"\\\\\\/\\n\\t"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\\ud83d\\ude00"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\\ud800"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"a\\u0000b"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\xff"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\xc0\xaf"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\xed\xa0\x80"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\xf4\x90\x80\x80"}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"\xf0\x9f\x98\x80 \xe6\x97\xa5"}',
    b'\xef\xbb\xbf{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"bom"}',
    b' \t{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"ws"}  \r',
    b"",
    b"   ",
    b"[1, 2]",
    b'"text"',
    b"42",
    b"null",
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"trunc"',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"comma",}',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"x"} // note',
    b'{"ts":"2026-11-24T10:00:00+09:00","event":"click","cookie_id":"x"} {"a":1}',
    _line(referrer="x" * 700_000),  # larger than the C pass's parse pool
]


def _read(path: Path, policy: SourcePolicy, native: bool) -> object:
    """(good, bad) of ``path``, with the C pass or with the DuckDB query alone; the error when
    the file is stopped."""
    with pytest.MonkeyPatch.context() as mp:
        if not native:
            mp.setenv("TOKUMEI_NATIVE_JSONL", "0")
        jsonl_native._library.cache_clear()
        try:
            assert jsonl_native.available() is native
            return read_landing_file(path, policy)
        except UnclassifiedColumnError as exc:
            return exc
        finally:
            jsonl_native._library.cache_clear()


def _both(path: Path, policy: SourcePolicy) -> tuple[tuple[pl.DataFrame, pl.DataFrame], ...]:
    """(good, bad) of ``path`` with the C pass, then with the DuckDB query alone."""
    native, query = _read(path, policy, True), _read(path, policy, False)
    assert isinstance(native, tuple) and isinstance(query, tuple)
    return native, query


def _write(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")
    return path


def test_the_native_pass_is_built_by_make_venv() -> None:
    # CI builds it with `make venv`; without it every landing file would take the slow path
    assert jsonl_native.LIBRARY.exists()
    assert jsonl_native.available()


@pytest.mark.parametrize("chunk", [None, 200, 5000])
def test_hostile_lines_give_the_query_s_rows_and_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk is not None:
        monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
    path = _write(tmp_path / "p.jsonl.gz", HOSTILE)
    (good, bad), (good_q, bad_q) = _both(path, EVENTS)
    assert good.equals(good_q)
    assert bad.equals(bad_q)
    assert good.height >= 10 and bad.height >= 20  # both kinds are really exercised


def test_special_care_keys_are_allowed_and_never_read(tmp_path: Path) -> None:
    lines = [
        _line(diagnosis="secret"),
        _line(diagnosis={"nested": ["ok for a key never read"]}),
        _line(diagnosis=7),
        _line(diagnosis="x", cookie_id=[1]),
    ]
    path = _write(tmp_path / "p.jsonl.gz", lines)
    (good, bad), (good_q, bad_q) = _both(path, WITH_SPECIAL)
    assert good.equals(good_q) and bad.equals(bad_q)
    assert "diagnosis" not in good.columns
    assert good.height == 3 and bad["reason"].to_list() == ["field cookie_id: wrong type"]


def test_an_unknown_key_stops_the_file_either_way(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl.gz", [_line(), _line(email="a@example.com")])
    for native in (True, False):
        stopped = _read(path, EVENTS, native)
        assert isinstance(stopped, UnclassifiedColumnError) and "email" in str(stopped)


def test_the_c_pass_leaves_exactly_the_doubtful_lines_to_the_query() -> None:
    lines = [
        _line(),  # 0 accepted
        _line(user_id=123),  # 1 number in text
        b'{"ts":"t","event":"click","cookie_id":"a","cookie_id":"b"}',  # 2 duplicate key
        _line(amount_jpy=5, lat=1),  # 3 accepted
        b"{",  # 4 not JSON
        _line(cookie_id={"x": 1}),  # 5 nested
        b"",  # 6 empty
        _line(search_query="日本語"),  # 7 accepted
    ]
    data = b"\n".join(lines)
    sizes = np.array([len(x) for x in lines], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype(np.int64)
    keys = jsonl_native.Keys.of(EVENTS)
    assert keys is not None
    parsed = jsonl_native.parse(memoryview(data), starts, sizes, 10, keys)
    assert parsed.rest.tolist() == [1, 2, 4, 5, 6]
    assert parsed.table["_line"].to_pylist() == [10, 13, 17]
    names = list(EVENTS.readable().columns)
    sq = parsed.table[f"_v{names.index('search_query')}"].to_pylist()
    assert sq == [None, None, "日本語"]
    amount = parsed.table[f"_v{names.index('amount_jpy')}"].to_pylist()
    assert amount == ["1200", "5", "1200"]
    assert parsed.table[f"_v{names.index('lat')}"].to_pylist() == ["35.68", "1", "35.68"]


def test_a_policy_key_that_is_not_a_plain_name_keeps_the_query() -> None:
    odd = EVENTS.model_copy(
        update={
            "columns": {**EVENTS.columns, "a.b": ColumnPolicy(type="string", role="insensitive")}
        }
    )
    assert jsonl_native.Keys.of(odd) is None
    assert jsonl_native.Keys.of(EVENTS) is not None


_MUTATION = st.tuples(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(
        [
            b"",
            b'"',
            b"\\",
            b"{",
            b"}",
            b",",
            b":",
            b"\xff",
            b"\xe6",
            b"1",
            b"e",
            b" ",
            b"[",
            b"\x00",
            b"u",
        ]
    ),
    st.integers(min_value=0, max_value=3),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(_MUTATION, max_size=3), min_size=1, max_size=25))
def test_mutated_lines_give_the_query_s_result(
    tmp_path: Path, edits: list[list[tuple[int, bytes, int]]]
) -> None:
    base = [
        _line(),
        _line(user_id=None, search_query="渋谷 ランチ", lat=35.1, amount_jpy=...),
        _line(inquiry_text='he said "hi"\\ok', amount_jpy=0),
    ]
    lines = []
    for i, line_edits in enumerate(edits):
        line = bytearray(base[i % len(base)])
        for pos, insert, cut in line_edits:  # replace `cut` bytes at `pos` with `insert`
            p = pos % (len(line) + 1)
            line[p : p + cut] = insert
        lines.append(bytes(line))
    path = _write(tmp_path / "m.jsonl.gz", lines)
    native, query = _read(path, EVENTS, True), _read(path, EVENTS, False)
    if not isinstance(query, tuple):  # a mutated key stopped the file: it must stop both ways
        assert type(native) is type(query) and str(native) == str(query)
        return
    assert isinstance(native, tuple)
    assert native[0].equals(query[0])
    assert native[1].equals(query[1])


def test_a_policy_without_text_columns(tmp_path: Path) -> None:
    numbers = EVENTS.model_copy(
        update={"columns": {n: EVENTS.columns[n] for n in ("ts", "lat", "lon", "amount_jpy")}}
    )
    lines = [
        b'{"ts":"2026-11-24T10:00:00+09:00","lat":35.6,"lon":139.7,"amount_jpy":10}',
        b'{"ts":"2026-11-24T10:00:00+09:00","amount_jpy":-1}',
        b'{"ts":"2026-11-24T10:00:00+09:00","amount_jpy":"7"}',
        b'{"ts":1}',
    ]
    path = _write(tmp_path / "n.jsonl.gz", lines)
    (good, bad), (good_q, bad_q) = _both(path, numbers)
    assert good.equals(good_q) and bad.equals(bad_q)
    assert good["amount_jpy"].to_list() == [10, 7]
    assert bad["reason"].to_list() == [
        "field amount_jpy: below minimum",
        "field ts: not a valid timestamp",
    ]


CSRC = Path(__file__).resolve().parents[1] / "csrc"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_c_pass_is_clean_under_address_and_undefined_behaviour_sanitizers(
    tmp_path: Path,
) -> None:
    # outside Python (the allocators of Polars and DuckDB do not mix with ASan's): the
    # stand-alone driver, on the hostile lines and 3,000 byte-mutated ones, every line in
    # one call; any out-of-bounds access, leak or undefined behaviour exits non-zero
    exe = tmp_path / "harness"
    sources = [
        CSRC / "jsonl" / "harness.c",
        CSRC / "jsonl" / "jsonl.c",
        CSRC / "yyjson" / "yyjson.c",
    ]
    flags = ["-O0", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run(["cc", *flags, "-o", str(exe), *map(str, sources)], check=True)
    rng = random.Random(0)
    bases = [x for x in HOSTILE if len(x) < 10_000]
    lines = list(HOSTILE) + [_line(diagnosis={"a": [1]}), _line(diagnosis="x")]
    for _ in range(3_000):
        line = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            p = rng.randrange(len(line) + 1)
            line[p : p + rng.randint(0, 3)] = rng.choice(
                [b"", b'"', b"\\", b"{", b"\xff", b"\x00", b"[1"]
            )
        lines.append(bytes(line).replace(b"\n", b" "))
    data = tmp_path / "lines"
    data.write_bytes(b"\n".join(lines) + b"\n")
    keys = jsonl_native.Keys.of(WITH_SPECIAL)
    assert keys is not None
    args = [f"{n}:{k}" for n, k in zip(keys.names, keys.kinds, strict=True)]
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    run = subprocess.run([str(exe), str(data), *args], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    total, accepted = (int(x) for x in run.stdout.split()[1::2])
    assert total == len(lines) and 10 < accepted < total
