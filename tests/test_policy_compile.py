"""The policy compiler (tokumei/anonymize/compile.py): the YAML decides what generalize writes.

The reference below is the generalization that ``pipeline/steps.py`` hard-coded before the
compiler existed (each column's builtin hierarchy and output name, only the level read from the
policy); the compiled plan of the shipped policy must write exactly the same frame.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from tokumei.anonymize.compile import (
    PERSON,
    PERSON_SOURCES,
    PERSONS_SOURCE,
    compile_policy,
    compile_source,
)
from tokumei.anonymize.hierarchies import (
    builtin,
    map_distinct,
    to_mesh_1km,
    ua_device_class,
    ua_os,
)
from tokumei.anonymize.policy import Policy, PolicyError, default_policy_dir, load_policy

UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-X200) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    None,
]


def _events() -> pl.DataFrame:
    n = 40
    return pl.DataFrame(
        {
            PERSON: [f"p{i % 7}" for i in range(n)],
            "ts": [datetime(2026, 11, 24, i % 24, i, tzinfo=UTC) for i in range(n)],
            "event": ["page_view", "search"] * (n // 2),
            "cookie_id": [f"c{i}" for i in range(n)],
            "session_id": [f"s{i % 5}" for i in range(n)],
            "user_id": [f"u{i}" for i in range(n)],
            "ip": [f"203.0.{i}.{i + 1}" if i % 3 else "2001:db8::1" for i in range(n)],
            "user_agent": [UAS[i % len(UAS)] for i in range(n)],
            "url": [f"https://shop.example.jp/items/{1000 + i}?q=x" for i in range(n)],
            "referrer": [None if i % 2 else "https://www.google.com/search" for i in range(n)],
            "search_query": [f"shoes {i}" for i in range(n)],
            "inquiry_text": [None] * (n - 1) + ["山田です"],
            "lat": [35.68 + i / 100 if i % 4 else None for i in range(n)],
            "lon": [139.76 + i / 100 for i in range(n)],
            "device_id": [f"d{i}" for i in range(n)],
            "app_version": ["1.2.3"] * n,
            "amount_jpy": list(range(n)),
        }
    )


def _legacy_events(ev: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    level = {c: p.level or 0 for c, p in policy.sources["events"].columns.items()}
    mesh = builtin("mesh").expr(to_mesh_1km(pl.col("lat"), pl.col("lon")), level["lat"])
    return ev.select(
        PERSON,
        "event",
        builtin("time").expr(pl.col("ts"), level["ts"]).alias("time"),
        builtin("url").expr(pl.col("url"), level["url"]).alias("url_template"),
        builtin("url").expr(pl.col("referrer"), level["referrer"]).alias("referrer_template"),
        map_distinct(pl.col("user_agent"), ua_device_class).alias("device_class"),
        map_distinct(pl.col("user_agent"), ua_os).alias("os_family"),
        builtin("user_agent").expr(pl.col("user_agent"), level["user_agent"]).alias("ua_family"),
        builtin("ip").expr(pl.col("ip"), level["ip"]).alias("ip_prefix"),
        mesh.alias("mesh"),
        "search_query",
        "inquiry_text",
        "app_version",
        "amount_jpy",
        "session_id",
        "ts",
    )


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(default_policy_dir())


def test_compiled_events_plan_writes_what_the_hard_coded_step_wrote(policy: Policy) -> None:
    ev = _events().lazy()
    plan = compile_policy(policy, PERSON_SOURCES)["events"]
    got = ev.select(plan.select()).collect()
    want = _legacy_events(ev, policy).collect()
    assert sorted(got.columns) == sorted(want.columns)
    assert got.select(want.columns).equals(want)
    # the columns that carry information differ from their raw input (the test can fail)
    assert got["ip_prefix"].drop_nulls().str.ends_with("/16").any()
    assert set(got["device_class"].drop_nulls()) >= {"mobile", "desktop", "bot", "tablet"}


def test_compiled_measurements_plan_writes_what_the_hard_coded_step_wrote(
    policy: Policy,
) -> None:
    ms = pl.LazyFrame(
        {
            PERSON: ["a", "b"],
            "device_id": ["d1", "d2"],
            "ts": [datetime(2026, 11, 24, 23, 30, tzinfo=UTC)] * 2,
            "weight_kg": [60.5, 70.0],
            "body_fat_pct": [20.0, 25.0],
        }
    )
    level = policy.sources["measurements"].columns["ts"].level or 0
    want = ms.select(
        PERSON,
        builtin("time").expr(pl.col("ts"), level).alias("day"),
        "weight_kg",
        "body_fat_pct",
    ).collect()
    plan = compile_policy(policy, PERSON_SOURCES)["measurements"]
    assert ms.select(plan.select()).collect().equals(want)
    assert plan.scrub == ()


def test_scrub_plan_is_the_free_text_of_the_policy(policy: Policy) -> None:
    plan = compile_policy(policy, PERSON_SOURCES)["events"]
    plain, templates = plan.scrub
    assert plain.columns == ("search_query", "inquiry_text")
    assert plain.ner_columns == ("inquiry_text",) and plain.kept_entities == ()
    assert templates.columns == ("url_template", "referrer_template")
    assert templates.kept_entities == ("URL",) and templates.ner_columns == ()
    # ner: true on another column is a YAML change the plan follows
    sp = policy.sources["events"]
    cols = dict(sp.columns)
    cols["search_query"] = cols["search_query"].model_copy(update={"ner": True})
    plain2 = compile_source(sp.model_copy(update={"columns": cols})).scrub[0]
    assert plain2.ner_columns == ("search_query", "inquiry_text")


def _policy_dir(tmp_path: Path) -> Path:
    dst = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), dst)
    return dst


def _edit_events(directory: Path, **columns: dict) -> None:
    path = directory / "events.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, spec in columns.items():
        if spec is None:
            data["columns"].pop(name)
        else:
            data["columns"][name] = spec
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"proxy_ip": {"type": "string", "role": "quasi_identifier", "hierarchy": "ip"}},
            "'proxy_ip': is generalized but declares no hierarchy and output",
        ),
        (
            {
                "proxy_ip": {
                    "type": "string",
                    "role": "quasi_identifier",
                    "hierarchy": "ip",
                    "level": 1,
                    "output": "ip_prefix",
                }
            },
            "output column(s) ['ip_prefix'] declared twice",
        ),
        (
            {"search_query": {"type": "string", "role": "free_text", "internal": True}},
            "'search_query': internal is only for quasi-identifiers and linking keys",
        ),
        (
            {
                "lat": {
                    "type": "float",
                    "role": "quasi_identifier",
                    "hierarchy": "mesh",
                    "level": 1,
                    "output": "mesh",
                }
            },
            "'lat': hierarchy 'mesh' takes 2 column(s)",
        ),
        (
            {
                "lat": {
                    "type": "float",
                    "role": "quasi_identifier",
                    "hierarchy": "mesh",
                    "level": 1,
                    "output": "mesh",
                    "paired_with": "lon",
                    "outputs": [{"name": "lat_star", "hierarchy": "categorical", "level": 1}],
                }
            },
            "'lat': hierarchy 'categorical' takes 1 column(s)",
        ),
    ],
)
def test_policy_mistakes_stop_the_compile_naming_file_and_column(
    tmp_path: Path, columns: dict, message: str
) -> None:
    directory = _policy_dir(tmp_path)
    _edit_events(directory, **columns)
    with pytest.raises(PolicyError) as err:
        compile_policy(load_policy(directory), PERSON_SOURCES)
    assert "policies/events.yaml" in str(err.value)
    assert message in str(err.value)


def test_a_new_quasi_identifier_is_a_yaml_change(tmp_path: Path) -> None:
    directory = _policy_dir(tmp_path)
    spec = {
        "type": "string",
        "role": "quasi_identifier",
        "hierarchy": "ip",
        "level": 1,
        "output": "proxy_net",
    }
    _edit_events(directory, proxy_ip=spec)
    plan = compile_policy(load_policy(directory), PERSON_SOURCES)["events"]
    frame = _events().with_columns(pl.lit("198.51.100.23").alias("proxy_ip")).lazy()
    out = frame.select(plan.select()).collect()
    assert "proxy_ip" not in out.columns  # the raw value is not carried
    assert set(out["proxy_net"]) == {"198.51.100.0/24"}
    _edit_events(directory, proxy_ip={**spec, "level": 2})
    plan = compile_policy(load_policy(directory), PERSON_SOURCES)["events"]
    assert set(frame.select(plan.select()).collect()["proxy_net"]) == {"198.51.0.0/16"}


# --------------------------------------------------------------------------------------------
# users (operational DB): the same compiler, with derive / fallback / missing / output_type

RUN_DAY = date(2026, 2, 28)


def _users() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            PERSON: ["a", "b", "c", "d", "e", "f"],
            "birth_date": [
                date(1990, 2, 28),  # birthday on the run date: 36
                date(1990, 3, 1),  # the day after: still 35
                date(1988, 2, 29),  # leap-day birth on a non-leap year's Feb 28: 37
                date(1930, 1, 1),  # 96: band 90+, exact age kept internal
                None,
                date(2001, 12, 31),
            ],
            "gender": ["female", None, "male", "other", "female", None],
            "occupation": [None, "engineer", "x", None, "y", "z"],
            "postal_code": ["1000001", "0600000", None, "9000000", None, "bad"],
            "prefecture": [None, "北海道", "大阪府", None, None, None],
            "created_at": pl.Series(
                [
                    "2026-01-01T14:59:59Z",  # 23:59:59 JST: still Jan 1
                    "2026-01-01T15:00:00Z",  # 00:00 JST: Jan 2
                    None,
                    "2025-12-31T20:00:00Z",
                    "2026-02-27T00:00:00Z",
                    "2026-02-28T10:00:00Z",
                ]
            ).str.to_datetime(time_zone="UTC"),
        }
    )


def _legacy_users(users: pl.LazyFrame, age_level: int, pref_level: int) -> pl.LazyFrame:
    """What ``pipeline/steps.py`` hard-coded before ``users`` was compiled (session 7)."""
    on_day = RUN_DAY
    age = (
        pl.lit(on_day).dt.year()
        - pl.col("birth_date").dt.year()
        - (
            (pl.col("birth_date").dt.month() > on_day.month)
            | (
                (pl.col("birth_date").dt.month() == on_day.month)
                & (pl.col("birth_date").dt.day() > on_day.day)
            )
        ).cast(pl.Int32)
    )
    pref = pl.coalesce(
        builtin("prefecture").expr(pl.col("prefecture"), 0),
        builtin("postal_code").expr(pl.col("postal_code"), 2),
    )
    return users.select(
        PERSON,
        age.alias("age"),
        builtin("age").expr(age, age_level).alias("age_band"),
        pl.col("gender").fill_null("unknown"),
        builtin("prefecture").expr(pref, pref_level).alias("prefecture"),
        pl.col("occupation").fill_null("unknown"),
        pl.col("created_at").dt.convert_time_zone("Asia/Tokyo").dt.date().alias("signup_date"),
    )


def test_compiled_users_plan_writes_what_the_hard_coded_step_wrote(policy: Policy) -> None:
    plan = compile_policy(policy, (PERSONS_SOURCE,))[PERSONS_SOURCE]
    got = _users().select(plan.select(RUN_DAY)).collect()
    want = _legacy_users(_users(), 1, 0).collect()
    assert sorted(got.columns) == sorted(want.columns)
    assert got.select(want.columns).equals(want)
    assert got["age"].to_list()[:4] == [36, 35, 37, 96]
    assert got["age_band"].to_list()[3] == "90+"
    assert got["prefecture"].to_list()[:2] == ["東京都", "北海道"]  # postal fallback, then own
    assert got["signup_date"].to_list()[:2] == [date(2026, 1, 1), date(2026, 1, 2)]
    # no raw identifier or raw source value continues
    assert not {"birth_date", "postal_code", "created_at"} & set(got.columns)


def test_users_age_and_prefecture_levels_are_a_yaml_change(tmp_path: Path) -> None:
    directory = _policy_dir(tmp_path)
    path = directory / "users.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"]["birth_date"]["level"] = 2  # 10-year bands
    data["columns"]["prefecture"]["level"] = 1  # regions
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    plan = compile_policy(load_policy(directory), (PERSONS_SOURCE,))[PERSONS_SOURCE]
    got = _users().select(plan.select(RUN_DAY)).collect()
    assert got.equals(_legacy_users(_users(), 2, 1).collect().select(got.columns))
    assert got["age_band"].to_list()[0] == "30-39"
    assert got["prefecture"].to_list()[:2] == ["関東", "北海道"]


def test_a_derived_value_needs_the_run_date(policy: Policy) -> None:
    plan = compile_policy(policy, (PERSONS_SOURCE,))[PERSONS_SOURCE]
    with pytest.raises(ValueError, match="run's date"):
        _users().select(plan.select())


def test_a_fallback_must_name_a_generalized_column(tmp_path: Path) -> None:
    directory = _policy_dir(tmp_path)
    path = directory / "users.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"]["prefecture"]["fallback"] = "address"  # a direct identifier: no hierarchy
    data["columns"]["postal_code"]["output"] = "postal_area"  # no longer only a fallback
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="policies/users.yaml: column 'prefecture': fallback"):
        compile_policy(load_policy(directory), (PERSONS_SOURCE,))
