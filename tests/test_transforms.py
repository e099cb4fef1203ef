"""Unit tests of the transforms and privacy steps: readers, rights, pseudonyms, statistics."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from pathlib import Path

import polars as pl
import pytest

from tokumei.anonymize.policy import (
    PolicyError,
    UnclassifiedColumnError,
    default_policy_dir,
    load_policy,
)
from tokumei.anonymize.pseudonymize import WeakKeyError, pseudonymize
from tokumei.anonymize.rights import allowed_users, excluded_by_request
from tokumei.ingest.sources import read_landing_file, type_records
from tokumei.stats import tables as stats

POLICY = load_policy(default_policy_dir())


def _write(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")
    return path


def test_reader_types_good_lines_and_quarantines_each_bad_kind(tmp_path: Path) -> None:
    good = {
        "ts": "2026-11-24T10:00:00+09:00",
        "event": "page_view",
        "cookie_id": "c1",
        "user_id": 42,
        "lat": 35.6,
        "amount_jpy": "1200",
    }
    lines = [
        json.dumps(good).encode(),
        b"",  # blank lines are not records
        b"{broken",
        b"[1, 2]",
        b'{"ts": "2026-02-30T10:00:00+09:00", "event": "click", "cookie_id": "c"}',
        b'{"ts": "2026-11-24T10:00:00", "event": "click", "cookie_id": "c"}',  # no offset
        b'{"ts": "2026-11-24T10:00:00+09:00", "event": "teleport", "cookie_id": "c"}',
        b'{"ts": "2026-11-24T10:00:00+09:00", "event": "click"}',
        b'{"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": "c", "lat": 123}',
        b'{"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": ["c"]}',
        b'{"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": "\xff"}',
    ]
    path = _write(tmp_path / "events" / "date=2026-11-24" / "p.jsonl.gz", lines)
    ok, bad = read_landing_file(path, POLICY.source("events"))
    assert ok.height == 1
    row = ok.row(0, named=True)
    assert row["user_id"] == "42" and row["amount_jpy"] == 1200
    assert str(row["ts"]) == "2026-11-24 01:00:00+00:00"
    assert bad["reason"].to_list() == [
        "malformed JSON",
        "not a JSON object",
        "field ts: not a valid timestamp",
        "field ts: not a valid timestamp",
        "field event: value not allowed",
        "missing required field cookie_id",
        "field lat: above maximum",
        "field cookie_id: wrong type",
        "invalid UTF-8",
    ]
    assert bad["line"].to_list() == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert bad["raw"][-1] == lines[-1]  # kept byte for byte


def test_unknown_landing_field_stops_with_its_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", [b'{"cookie_id": "c", "fingerprint": "f"}'])
    with pytest.raises(UnclassifiedColumnError, match="fingerprint"):
        read_landing_file(path, POLICY.source("cookies"))


def test_csv_and_parquet_follow_the_same_rules(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("device_id,ts,weight_kg\nd1,2026-11-24T07:00:00+09:00,60.5\nd2,bad,61\n")
    ok, bad = read_landing_file(csv, POLICY.source("measurements"))
    assert ok["weight_kg"].to_list() == [60.5] and bad["reason"].to_list() == [
        "field ts: not a valid timestamp"
    ]
    pq = tmp_path / "d.parquet"
    pl.DataFrame({"device_id": ["a", None]}).write_parquet(pq)
    ok, bad = read_landing_file(pq, POLICY.source("devices"))
    assert ok.height == 1 and bad["reason"].to_list() == ["missing required field device_id"]


def test_db_rows_accept_naive_utc_timestamps() -> None:
    raw = pl.DataFrame(
        {
            "user_id": ["u"],
            "purpose": ["analytics"],
            "granted": ["1"],
            "updated_at": ["2026-01-01 00:00:00"],
        }
    )
    ok, bad = type_records(raw, POLICY.tables["consents"], "consents", require_offset=False)
    assert ok["granted"].to_list() == [True] and bad.height == 0


def test_policy_errors_name_the_file(tmp_path: Path) -> None:
    for f in default_policy_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    ev = tmp_path / "events.yaml"
    ev.write_text(
        ev.read_text(encoding="utf-8").replace("role: insensitive", "role: secret", 1),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match="events.yaml"):
        load_policy(tmp_path)


def test_every_landing_column_of_the_contract_is_classified() -> None:
    contract = {
        "events": "ts event cookie_id session_id user_id ip user_agent url referrer search_query "
        "inquiry_text lat lon device_id app_version amount_jpy",
        "devices": "device_id user_id model os os_version carrier ad_id mac serial ip first_seen",
        "measurements": "device_id user_id ts weight_kg body_fat_pct",
        "cookies": "cookie_id user_id first_seen last_seen consent_analytics consent_ads",
    }
    for source, cols in contract.items():
        assert set(POLICY.source(source).columns) == set(cols.split()), source


def test_pseudonyms_are_keyed_hmac_with_domains() -> None:
    key = "k-0123456789abcdef0123456789abcdef-key"  # strong enough for check_key
    df = pl.DataFrame({"v": ["42", None]})
    user = df.select(pseudonymize(pl.col("v"), key, "user"))["v"].to_list()
    cookie = df.select(pseudonymize(pl.col("v"), key, "cookie"))["v"].to_list()
    assert user[0] == hmac.new(key.encode(), b"user:42", hashlib.sha256).hexdigest()
    assert user[1] is None and cookie[0] != user[0]
    with pytest.raises(WeakKeyError):
        pseudonymize(pl.col("v"), "short", "user")


def test_rights_fail_closed() -> None:
    consents = pl.LazyFrame(
        {
            "user_id": ["a", "b", "c", "c", "d"],
            "purpose": ["analytics", "analytics", "analytics", "analytics", "ads"],
            "granted": [True, False, False, True, True],
            "updated_at": pl.Series(
                ["2026-01-01", "2026-01-01", "2026-01-01", "2026-02-01", "2026-01-01"]
            ).str.to_datetime(),
        }
    )
    requests = pl.LazyFrame(
        {
            "user_id": ["a", "c"],
            "kind": ["opt_out_analytics", "deletion"],
            "status": ["done", "rejected"],
        }
    )
    assert sorted(excluded_by_request(requests).collect()["user_id"]) == ["a"]
    # a: opted out; b: refused; c: latest consent granted, rejected request; d: no analytics row
    assert allowed_users(consents, requests).collect()["user_id"].to_list() == ["c"]


def test_statistics_count_distinct_persons_and_suppress_small_cells() -> None:
    events = pl.LazyFrame(
        {
            "person": [f"p{i}" for i in range(12)] * 3 + ["q1", "q2"],
            "event": ["page_view"] * 38,
            "url_template": ["a.jp/items/:id"] * 36 + ["a.jp/rare", "a.jp/rare"],
            "device_class": ["mobile"] * 38,
        }
    )
    persons = pl.LazyFrame(
        {
            "person": [f"p{i}" for i in range(12)],
            "prefecture": ["東京都"] * 12,
            "age_band": ["30-34"] * 12,
            "gender": ["female"] * 12,
        }
    )
    dau = stats.daily_active_users(events, persons, "2026-11-24", 10).collect()
    # every cell of the public grid is a row; only the one cell of 12 persons is published
    published = dau.filter(pl.col("persons").is_not_null())
    assert published.select("prefecture", "age_band", "gender", "persons").rows() == [
        ("東京都", "30-34", "female", 12)
    ]
    assert dau.filter(pl.col("persons").is_null())["suppressed"].all()
    unknown = dau.filter(pl.col("prefecture") == "unknown")  # q1, q2: no demographics
    assert unknown.height > 1 and unknown["persons"].null_count() == unknown.height
    pv = stats.page_views(events, "2026-11-24", k=10, min_cell=10).collect()
    assert set(pv["url_template"]) == {"a.jp/items/:id", "other"}  # rare template folded
    items = pv.filter(pl.col("url_template") == "a.jp/items/:id")
    assert items.filter(pl.col("device_class") == "mobile")["persons"].to_list() == [12]
    # the other device classes of the grid are rows too, suppressed zeros
    assert items.height > 1 and items.filter(pl.col("device_class") != "mobile")["suppressed"].all()
