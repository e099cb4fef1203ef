"""Built-in hierarchies: unit examples and hypothesis properties (docs/architecture.md §4)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokumei.anonymize.hierarchies import (
    BUILTIN,
    AgeHierarchy,
    IpHierarchy,
    MeshHierarchy,
    PostalCodeHierarchy,
    PrefectureHierarchy,
    TimeHierarchy,
    UrlHierarchy,
    UserAgentHierarchy,
    _ip_prefix,
    builtin,
    rare_to_other,
    to_mesh_1km,
    url_template,
)
from tokumei.anonymize.hierarchy import Hierarchy

AGE = AgeHierarchy()


def gen(h: Hierarchy, values: list, level: int, dtype: pl.DataType | None = None) -> list:
    s = pl.Series("v", values, dtype=dtype)
    return pl.DataFrame({"v": s}).select(h.expr(pl.col("v"), level)).to_series().to_list()


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_implements_the_protocol(name: str) -> None:
    h = builtin(name)
    assert isinstance(h, Hierarchy)
    assert h.levels >= 2
    with pytest.raises(ValueError, match="levels 0.."):
        h.expr(pl.col("x"), h.levels)


def test_unknown_hierarchy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="known|built-in"):
        builtin("shoe_size")


def test_age_examples() -> None:
    assert gen(AGE, [23, 37, 89, 90, 104, None], 0) == ["23", "37", "89", "90+", "90+", None]
    assert gen(AGE, [23, 37, 89, 90, 104], 1) == ["20-24", "35-39", "85-89", "90+", "90+"]
    assert gen(AGE, [23, 37, 89, 90], 2) == ["20-29", "30-39", "80-89", "90+"]
    assert gen(AGE, [23, 95], 3) == ["*", "*"]


ages = st.lists(st.integers(min_value=0, max_value=130), min_size=1, max_size=60)


def _band_bounds(v: str) -> tuple[int, int]:
    if v == "90+":
        return 90, 10_000
    if "-" in v:
        lo, hi = v.split("-")
        return int(lo), int(hi)
    return int(v), int(v)


@given(ages, st.integers(min_value=0, max_value=2))
def test_age_never_finer_than_asked_and_contains_the_value(values: list[int], level: int) -> None:
    width = {0: 1, 1: 5, 2: 10}[level]
    for age, band in zip(values, gen(AGE, values, level), strict=True):
        lo, hi = _band_bounds(band)
        assert lo <= age <= hi  # the band holds the true age
        if band != "90+":
            assert hi - lo + 1 == width  # exactly as coarse as asked, never finer
            assert lo % width == 0


@given(ages)
def test_age_is_top_coded_at_every_level(values: list[int]) -> None:
    for level in range(AGE.levels - 1):
        for age, band in zip(values, gen(AGE, values, level), strict=True):
            if age >= 90:
                assert band == "90+"
            else:
                assert "90" not in band.split("-")[0] or age >= 90


def _monotone(h: Hierarchy, values: list, dtype: pl.DataType | None = None) -> None:
    by_level = [gen(h, values, lv, dtype) for lv in range(h.levels)]
    for i in range(h.levels):
        for j in range(i + 1, h.levels):
            seen: dict = {}
            for a, b in zip(by_level[i], by_level[j], strict=True):
                if a is None:
                    continue
                assert seen.setdefault(a, b) == b, f"{h.name}: level {i} value maps to two at {j}"


@given(ages)
def test_age_monotone(values: list[int]) -> None:
    _monotone(AGE, values)


@given(
    st.lists(
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_time_monotone_and_in_jst(values: list[datetime]) -> None:
    aware = [v.replace(tzinfo=UTC) for v in values]
    _monotone(TimeHierarchy(), aware, pl.Datetime("us", "UTC"))
    days = gen(TimeHierarchy(), aware, 2, pl.Datetime("us", "UTC"))
    for v, d in zip(aware, days, strict=True):
        assert d == (v + timedelta(hours=9)).strftime("%Y-%m-%d")


@given(st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=40))
def test_ip_monotone_and_prefixes(values: list[str]) -> None:
    _monotone(IpHierarchy(), values)
    for ip, p24 in zip(values, gen(IpHierarchy(), values, 1), strict=True):
        assert p24.endswith("/24") and p24.split(".")[:3] == ip.split(".")[:3]


_ip_like = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    # IPv6 written out: with leading zeros, without, upper case (the fast path takes some)
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: ":".join(f"{int(g, 16):x}" for g in a.exploded.split(":"))),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.lists(
        st.sampled_from(["0", "00", "1", "a0", "ffff", "0db8", "12345", "g"]),
        min_size=7,
        max_size=9,
    ).map(":".join),
    # near misses: leading zeros, octets > 255, blanks, too few/many octets, full-width digits
    st.lists(
        st.from_regex(r"\A(?:0[0-9]{1,2}|[0-9]{1,3}|25[6-9]|[0-9]{4})\Z"), min_size=3, max_size=5
    ).map(".".join),
    st.ip_addresses(v=4).map(lambda a: f" {a}\t"),
    st.text(alphabet="0123456789.:abcdef ０１", max_size=20),
)


@given(st.lists(_ip_like, min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_ip_vectorized_equals_ipaddress(values: list[str]) -> None:
    """The Rust fast paths (canonical IPv4, IPv6 in 8 groups) give ``ipaddress``'s answer for
    every value."""
    for level, (v4, v6) in ((1, (24, 48)), (2, (16, 32))):
        expected = [_ip_prefix(v, v4, v6) for v in values]
        assert gen(IpHierarchy(), values, level) == expected
    assert gen(IpHierarchy(), [*values, None], 1)[-1] is None


@given(st.lists(st.from_regex(r"\A[0-9]{3}-?[0-9]{4}\Z"), min_size=1, max_size=30))
@settings(max_examples=30, deadline=None)
def test_postal_monotone(values: list[str]) -> None:
    _monotone(PostalCodeHierarchy(), values)


def test_postal_examples() -> None:
    h = PostalCodeHierarchy()
    vals = ["〒100-0001", "５３０−０００１", "0600000", "12"]
    assert gen(h, vals, 0) == ["1000001", "5300001", "0600000", None]
    assert gen(h, vals, 1) == ["100", "530", "060", None]
    assert gen(h, vals, 2) == ["東京都", "大阪府", "北海道", None]
    assert gen(h, vals, 3) == ["関東", "近畿", "北海道", None]


def test_prefecture_to_region() -> None:
    assert gen(PrefectureHierarchy(), ["沖縄県", "京都府", "Atlantis"], 1) == [
        "九州・沖縄",
        "近畿",
        "unknown",
    ]


def test_mesh_nests_and_outside_japan_is_null() -> None:
    df = pl.DataFrame({"lat": [35.6812, 34.7025, 10.0], "lon": [139.7671, 135.4959, 1.0]})
    codes = df.select(to_mesh_1km(pl.col("lat"), pl.col("lon"))).to_series().to_list()
    assert codes[0] == "53394611" and codes[2] is None
    assert gen(MeshHierarchy(), codes, 1) == ["533946", "523503", None]
    assert gen(MeshHierarchy(), codes, 2) == ["5339", "5235", None]
    _monotone(MeshHierarchy(), codes)


def test_mesh_of_a_batch_with_one_located_row() -> None:
    # jismesh treated a 1-element array as a scalar (numpy.asscalar, removed): generalize
    # crashed on a partition whose events had exactly one location
    df = pl.DataFrame({"lat": [35.6812, None, 10.0], "lon": [139.7671, None, 1.0]})
    codes = df.select(to_mesh_1km(pl.col("lat"), pl.col("lon"))).to_series().to_list()
    assert codes == ["53394611", None, None]


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("https://shop.example.jp/items/12345?ref=mail&email=a@b.jp", "shop.example.jp/items/:id"),
        ("https://Shop.Example.jp/u/taro@example.com/orders", "shop.example.jp/u/:id/orders"),
        ("https://a.jp/o/550e8400-e29b-41d4-a716-446655440000/", "a.jp/o/:id"),
        ("https://a.jp/t/deadbeefcafe", "a.jp/t/:id"),
        ("https://a.jp/tel/090-1234-5678", "a.jp/tel/:id"),
        ("https://user:pw@a.jp:8443/x#frag", "a.jp/x"),
        ("https://a.jp", "a.jp/"),
        ("/relative/42/path", "/relative/:id/path"),
        # short-link slugs and share tokens are one link each; page names are words
        ("https://t.co/kLwS7fJ1Mb", "t.co/:id"),
        ("https://t.co/AbCdEfGhIj", "t.co/:id"),
        ("https://a.jp/s/x7_k2-QpZ9", "a.jp/s/:id"),
        ("https://a.jp/category/outdoor-camping", "a.jp/category/outdoor-camping"),
        ("https://a.jp/MyPage/mp3", "a.jp/MyPage/mp3"),
    ],
)
def test_url_template(url: str, template: str) -> None:
    out = pl.DataFrame({"u": [url]}).select(url_template(pl.col("u"))).item()
    assert out == template


@settings(max_examples=40)
@given(
    st.lists(
        st.from_regex(r"\Ahttps://[a-c]\.jp(/[a-z0-9@.-]{1,12}){0,4}(\?[a-z=&0-9]{0,10})?\Z"),
        min_size=1,
        max_size=30,
    )
)
def test_url_templates_never_carry_digit_runs_or_queries(urls: list[str]) -> None:
    _monotone(UrlHierarchy(), urls)
    for t in gen(UrlHierarchy(), urls, 1):
        assert "?" not in t and "@" not in t
        for segment in t.split("/")[1:]:  # the host may carry digits; path segments may not
            assert len(re.findall(r"[0-9]", segment)) < 3, t


def test_user_agent_families() -> None:
    uas = [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ]
    assert gen(UserAgentHierarchy(), uas, 2) == ["mobile", "desktop", "bot"]
    assert gen(UserAgentHierarchy(), uas, 1)[1] == "Chrome/Windows/desktop"
    _monotone(UserAgentHierarchy(), uas)


def test_rare_to_other_counts_persons_not_rows() -> None:
    df = pl.DataFrame(
        {"model": ["A"] * 30 + ["B"] * 3, "p": [str(i) for i in range(10)] * 3 + ["x"] * 3}
    )
    out = df.select(rare_to_other(pl.col("model"), pl.col("p"), k=2)).to_series()
    assert set(out[:30]) == {"A"} and set(out[30:]) == {"other"}
