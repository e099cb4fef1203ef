"""Shared fixtures: a hand-written landing zone (a producer that is not our generator)."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from hypothesis import settings

# CI runs the same hypothesis examples every time (a red CI must be reproducible and bisectable);
# local runs explore new random examples. Deadlines are off: the 2-core machines are shared, and
# a slow example is not a wrong one.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DAY = "2026-11-24"
TEST_KEY = "test-key-0123456789abcdef0123456789abcdef"

# Raw values planted in the landing data. None may appear in any published file, report or log.
PLANTED = {
    "email": "hanako.yamada@example.co.jp",
    "email2": "leak.test@example.com",
    "phone": "090-1234-5678",
    "phone_fw": "０８０－９８７６－５４３２",
    "my_number": "123456789018",
    "card": "4111111111111111",
    "name": "山田花子",
    "address": "東京都港区芝公園4-2-8",
    "user_id": "user-0007",
    "cookie_id": "cookie-zz-0042",
    "device_id": "dev-abc-0003",
    "ip": "203.0.113.77",
    "mac": "00:1A:2B:3C:4D:5E",
}


def _users() -> list[dict]:
    users = []
    for i in range(40):
        tokyo = i < 26
        users.append(
            {
                "user_id": f"user-{i:04d}",
                "email": f"person{i}@example.jp" if i != 7 else PLANTED["email"],
                "username": f"nick{i}",
                "full_name": PLANTED["name"] if i == 7 else f"利用者{i}",
                "full_name_kana": "ヤマダハナコ",
                "birth_date": "1994-03-01" if tokyo else f"19{50 + i}-06-15",
                "gender": "female" if tokyo else ("male" if i % 2 else "other"),
                "occupation": "会社員",
                "postal_code": "105-0011" if tokyo else "530-0001",
                "prefecture": "東京都" if tokyo else "大阪府",
                "address": PLANTED["address"] if i == 7 else "どこか1-2-3",
                "phone": PLANTED["phone"] if i == 7 else f"03-0000-{i:04d}",
                "my_number": PLANTED["my_number"] if i == 7 else None,
                "card_number": PLANTED["card"] if i == 7 else None,
                "created_at": "2025-01-01 00:00:00",
            }
        )
    return users


def write_handmade_landing(root: Path, day: str = DAY) -> Path:
    """A landing zone written with json/csv/sqlite by hand, following docs/architecture.md §3 only."""
    root.mkdir(parents=True, exist_ok=True)
    db = root / "ops.db"
    con = sqlite3.connect(db)
    users = _users()
    cols = list(users[0])
    con.execute(f"CREATE TABLE users ({', '.join(cols)})")
    con.executemany(
        f"INSERT INTO users VALUES ({', '.join('?' * len(cols))})",
        [tuple(u.values()) for u in users],
    )
    con.execute("CREATE TABLE consents (user_id, purpose, granted, updated_at)")
    con.executemany(
        "INSERT INTO consents VALUES (?,?,?,?)",
        [
            (u["user_id"], "analytics", 0 if i in (30, 31) else 1, "2026-01-01 00:00:00")
            for i, u in enumerate(users)
        ],
    )
    con.execute("CREATE TABLE rights_requests (request_id, user_id, kind, requested_at, status)")
    con.executemany(
        "INSERT INTO rights_requests VALUES (?,?,?,?,?)",
        [
            (1, "user-0032", "deletion", "2026-11-01 00:00:00", "pending"),
            (2, "user-0033", "opt_out_analytics", "2026-11-02 00:00:00", "done"),
        ],
    )
    con.commit()
    con.close()

    ev_dir = root / "events" / f"date={day}"
    ev_dir.mkdir(parents=True)
    lines: list[str] = []
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    for i, u in enumerate(users):
        for h in range(3):
            # two product views, then the cart: every person has the two templates the
            # record-level release's l-diversity needs, so that release is not empty
            page = f"items/{1000 + i}" if h < 2 else "cart"
            lines.append(
                json.dumps(
                    {
                        "ts": f"{day}T{10 + h:02d}:15:00+09:00",
                        "event": "page_view",
                        "cookie_id": f"cookie-{i:04d}" if i != 7 else PLANTED["cookie_id"],
                        "user_id": u["user_id"],
                        "session_id": f"s-{i}-{h}",
                        "ip": PLANTED["ip"] if i == 7 else f"198.51.100.{i}",
                        "user_agent": ua,
                        "url": f"https://shop.example.jp/{page}?email={PLANTED['email2']}",
                        "referrer": "https://www.google.co.jp/search?q=x",
                        "lat": 35.66,
                        "lon": 139.75,
                        "device_id": f"dev-{i}",
                        "app_version": "3.2.1",
                    },
                    ensure_ascii=False,
                )
            )
        lines.append(
            json.dumps(
                {
                    "ts": f"{day}T21:00:00+09:00",
                    "event": "search",
                    "cookie_id": f"cookie-{i:04d}",
                    "user_id": u["user_id"],
                    "search_query": f"連絡は{PLANTED['phone_fw']}まで"
                    if i == 3
                    else "ワイヤレスイヤホン",
                },
                ensure_ascii=False,
            )
        )
    lines.append(
        json.dumps(
            {
                "ts": f"{day}T22:00:00+09:00",
                "event": "inquiry",
                "cookie_id": "cookie-0005",
                "user_id": "user-0005",
                "inquiry_text": f"マイナンバー{PLANTED['my_number']}、カード{PLANTED['card']}、"
                f"メール{PLANTED['email2']}です",
            },
            ensure_ascii=False,
        )
    )
    # logged-out traffic: 12 cookies with banner consent, 2 without
    for j in range(14):
        lines.append(
            json.dumps(
                {
                    "ts": f"{day}T09:00:00+09:00",
                    "event": "page_view",
                    "cookie_id": f"anon-{j}",
                    "url": "https://shop.example.jp/",
                }
            )
        )
    # an event of another day (dropped by rule) and malformed lines
    lines.append(
        json.dumps(
            {
                "ts": "2026-11-20T09:00:00+09:00",
                "event": "page_view",
                "cookie_id": "cookie-0001",
                "user_id": "user-0001",
            }
        )
    )
    lines += [
        '{"ts": "2026-11-24T25:61:00+09:00", "event": "click", "cookie_id": "c"}',
        "{not json",
        '{"event": "click", "cookie_id": "c-no-ts", "ts": null}',
        '{"ts": "2026-11-24T10:00:00+09:00", "event": "purchase", "cookie_id": "c", '
        '"amount_jpy": "abc"}',
    ]
    with gzip.open(ev_dir / "part-0.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(ev_dir / "part-1.jsonl", "wb") as fh:
        fh.write(
            b'{"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": "\xff\xfe"}\n'
        )

    ck_dir = root / "cookies" / f"date={day}"
    ck_dir.mkdir(parents=True)
    cookies = [
        {
            "cookie_id": f"cookie-{i:04d}" if i != 7 else PLANTED["cookie_id"],
            "user_id": f"user-{i:04d}",
            "first_seen": f"{day}T00:00:00+09:00",
            "last_seen": f"{day}T23:00:00+09:00",
            "consent_analytics": True,
            "consent_ads": False,
        }
        for i in range(40)
    ]
    cookies += [
        {
            "cookie_id": f"anon-{j}",
            "user_id": None,
            "consent_analytics": j < 12,
            "consent_ads": False,
        }
        for j in range(14)
    ]
    (ck_dir / "part-0.jsonl").write_text("\n".join(json.dumps(c) for c in cookies) + "\n")

    dv_dir = root / "devices" / f"date={day}"
    dv_dir.mkdir(parents=True)
    pl.DataFrame(
        {
            "device_id": [f"scale-{i}" if i != 7 else PLANTED["device_id"] for i in range(40)],
            "user_id": [f"user-{i:04d}" for i in range(40)],
            "model": ["HealthScale X"] * 40,
            "os": ["rtos"] * 40,
            "os_version": ["1.0"] * 40,
            "carrier": [None] * 40,
            "ad_id": [None] * 40,
            "mac": [PLANTED["mac"] if i == 7 else f"00:00:00:00:00:{i:02x}" for i in range(40)],
            "serial": [f"SN{i:06d}" for i in range(40)],
            "ip": [None] * 40,
            "first_seen": [f"{day}T00:00:00+09:00"] * 40,
        }
    ).write_parquet(dv_dir / "part-0.parquet")

    ms_dir = root / "measurements" / f"date={day}"
    ms_dir.mkdir(parents=True)
    rows = ["device_id,user_id,ts,weight_kg,body_fat_pct"]
    for i in range(40):
        dev = f"scale-{i}" if i != 7 else PLANTED["device_id"]
        rows.append(f"{dev},user-{i:04d},{day}T07:00:00+09:00,{50 + i * 0.5},{20 + i * 0.1}")
    rows.append(f"scale-1,user-0001,{day}T07:30:00+09:00,-5,20")  # impossible weight
    (ms_dir / "part-0.csv").write_text("\n".join(rows) + "\n")
    seal_landing(root, day)
    return root


def seal_landing(root: Path, day: str = DAY) -> None:
    """Write the completeness markers of ``day`` as a producer does when it has finished
    (docs/landing.md): a test that adds or changes a landing file afterwards calls it again."""
    from tokumei.anonymize.policy import LANDING_SOURCES
    from tokumei.ingest.landing import seal_day

    seal_day(root, day, LANDING_SOURCES, producer="tests")


@pytest.fixture
def handmade_landing(tmp_path: Path) -> Path:
    return write_handmade_landing(tmp_path / "landing")


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    yield TEST_KEY


def all_text_under(*roots: Path) -> Iterator[tuple[Path, str]]:
    """Every file under ``roots`` as text: Parquet decoded to its values (pages are compressed,
    so grepping bytes would prove nothing), everything else decoded leniently."""
    for root in roots:
        for p in root.rglob("*"):
            if not p.is_file():
                continue
            if p.suffix == ".parquet":
                df = pl.read_parquet(p)
                text = " ".join(str(v) for col in df.iter_columns() for v in col.to_list())
                yield p, " ".join(df.columns) + " " + text
            else:
                yield p, p.read_bytes().decode("utf-8", errors="replace")


DAGS = Path(__file__).resolve().parent.parent / "dags"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for an Airflow subprocess with its own home (SQLite metadata DB) and our DAGs."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        GX_ANALYTICS_ENABLED="false",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def moto_s3(access_key_id: str, secret: str) -> Iterator[tuple[str, pytest.MonkeyPatch]]:
    """A moto S3 server on a free port of 127.0.0.1, credentials only in the standard AWS
    variables, the pseudonym key set; yields (endpoint, monkeypatch), both undone on exit."""
    from moto.server import ThreadedMotoServer

    from tokumei.infra import objectstore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    mp = pytest.MonkeyPatch()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", access_key_id)
        mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv(objectstore.ENDPOINT_ENV, endpoint)
        mp.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
        yield endpoint, mp
    finally:
        mp.undo()
        server.stop()


def load_bench(name: str) -> ModuleType:
    """A script of ``bench/`` as a module, for tests that reuse its data builders."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
