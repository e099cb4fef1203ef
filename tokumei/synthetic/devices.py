"""Agents (browser/app installations, each with one cookie) and the devices the app reports.

An *agent* is what the web server sees: a cookie, an IP, a user agent. Users own one to three
agents (phone, PC, tablet-ish second phone); logged-out visitors and bots are agents with no
user. Mobile agents with the app installed are also *devices*: the app SDK reports model, OS,
carrier, advertising ID, MAC and serial, exported daily under ``devices/``. Scales that feed
``measurements/`` are devices without an agent.

Model popularity is skewed like the Japanese market (iPhone first), and a handful of rare models
are given to one or two persons each: a device model is a quasi-identifier and the anonymizer
must fold such models into ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from tokumei.synthetic.common import (
    ALNUM_UPPER,
    HEX,
    char_matrix,
    day_wall_ms,
    ipv4_series,
    ipv6_series,
    matrix_to_series,
    rng_for,
    ts_strings,
    uuid_series,
    weighted_choice,
)
from tokumei.synthetic.people import Population

IOS, ANDROID, WINDOWS, MAC, BOT = 0, 1, 2, 3, 4

IOS_MODELS = (("iPhone15,4", 14), ("iPhone14,7", 12), ("iPhone14,5", 12), ("iPhone14,6", 9),
              ("iPhone16,1", 8), ("iPhone16,2", 6), ("iPhone13,2", 8), ("iPhone12,8", 5),
              ("iPhone17,3", 6))
IOS_VERSIONS = (("17.5.1", 30), ("17.4.1", 20), ("17.6", 15), ("16.7.8", 10), ("18.0", 15),
                ("15.8.2", 3))
ANDROID_MODELS = (("SC-51D", 10), ("SCG19", 6), ("SO-51D", 6), ("SH-53D", 9), ("SHG11", 6),
                  ("Pixel 8", 8), ("Pixel 7a", 8), ("F-52B", 3), ("A302SH", 5), ("OPG04", 3),
                  ("XQ-DQ44", 3), ("SOG12", 3), ("Redmi Note 13 Pro 5G", 2))
ANDROID_VERSIONS = (("14", 45), ("13", 25), ("12", 12), ("15", 10), ("11", 8))
# BALMUDA Phone, TORQUE 5G, Xperia PRO-I, Rakuten Hand 5G, Fairphone 5, Nothing Phone (2a)
RARE_MODELS = ("X01A", "KYG01", "XQ-BE42", "P780", "FP5", "A142")
SCALE_MODELS = (("HBF-702T", 40), ("HBF-228T", 25), ("RD-917L", 20), ("BC-768", 10),
                ("HBF-375", 5))
CARRIERS = (("docomo", 35), ("au", 27), ("SoftBank", 22), ("楽天モバイル", 8), (None, 8))
APP_VERSIONS = (("5.12.0", 45), ("5.11.2", 30), ("5.10.1", 15), ("4.9.8", 10))
CHROME = ("124.0.6367.82", "125.0.6422.113", "126.0.6478.71", "123.0.6312.118")
EDGE = ("124.0.2478.80", "125.0.2535.67")
BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
)
ANON_SHARE = 0.10  # share of all events from agents that never log in


def _pick(rng: np.random.Generator, table: tuple[tuple[str | None, float], ...], n: int) -> list:
    items = [t[0] for t in table]
    idx = weighted_choice(rng, np.array([t[1] for t in table], dtype=float), n)
    return [items[k] for k in idx]


def _mac(rng: np.random.Generator, n: int) -> pl.Series:
    hexes = char_matrix(rng, n, 12, HEX)
    out = np.full((n, 17), ord(":"), dtype=np.uint8)
    for k in range(6):
        out[:, 3 * k : 3 * k + 2] = hexes[:, 2 * k : 2 * k + 2]
    return matrix_to_series(out)


def _user_agent(kind: int, model: str, os_version: str, app: str | None, browser: int,
                ua_i: int) -> str:
    if kind == IOS:
        if app:
            return f"ShopApp/{app} (iPhone; iOS {os_version}; {model}) CFNetwork/1490.0.4"
        v = os_version.replace(".", "_")
        short = ".".join(os_version.split(".")[:2])
        return (f"Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{short} Mobile/15E148 Safari/604.1")
    if kind == ANDROID:
        if app:
            return f"ShopApp/{app} (Linux; Android {os_version}; {model}) okhttp/4.12.0"
        return (f"Mozilla/5.0 (Linux; Android {os_version}; {model}) AppleWebKit/537.36 "
                f"(KHTML, like Gecko) Chrome/{CHROME[ua_i % 4]} Mobile Safari/537.36")
    if kind == WINDOWS:
        major = CHROME[ua_i % 4].split(".")[0]
        ua = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              f"Chrome/{major}.0.0.0 Safari/537.36")
        return ua + f" Edg/{EDGE[ua_i % 2]}" if browser else ua
    if kind == MAC:
        if browser:
            major = CHROME[ua_i % 4].split(".")[0]
            return ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                    f"(KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36")
        return ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15")
    return BOT_UAS[ua_i % len(BOT_UAS)]


@dataclass
class Agents:
    """All agents; ``frame`` holds the per-event string columns gathered by agent index."""

    n: int
    user: np.ndarray
    kind: np.ndarray
    device: np.ndarray
    weight: np.ndarray
    first_seen_ms: np.ndarray
    frame: pl.DataFrame  # cookie_id, ip, user_agent, device_id, app_version
    cookie_consent: pl.DataFrame  # consent_analytics, consent_ads (nullable bool)


@dataclass
class Devices:
    """Device rows in contract order (``frame``) plus who owns them and whether it is a scale."""

    frame: pl.DataFrame
    user: np.ndarray
    is_scale: np.ndarray


def build_agents(seed: int, pop: Population, start: date) -> tuple[Agents, Devices]:
    """Agents and devices for ``pop``; deterministic for ``(seed, pop.n, start)``."""
    rng = rng_for(seed, "agents", pop.n)
    n_users = pop.n
    per_user = weighted_choice(rng, np.array([55.0, 35.0, 10.0]), n_users) + 1
    a_user = np.repeat(np.arange(n_users), per_user)
    first = np.ones(len(a_user), dtype=bool)
    first[1:] = a_user[1:] != a_user[:-1]
    n_anon = max(10, n_users // 3)
    n = len(a_user) + n_anon
    user = np.concatenate([a_user, np.full(n_anon, -1)])

    r = rng.random(n)
    mobile_p = np.where(np.arange(n) < len(a_user), np.where(first[np.minimum(
        np.arange(n), len(a_user) - 1)], 0.78, 0.40), 0.70)
    kind = np.where(r < mobile_p, np.where(rng.random(n) < 0.55, IOS, ANDROID),
                    np.where(rng.random(n) < 0.70, WINDOWS, MAC))
    anon = user < 0
    bots = anon & (rng.random(n) < 0.03)
    kind[bots] = BOT
    mobile = (kind == IOS) | (kind == ANDROID)
    is_app = mobile & (rng.random(n) < 0.55) & ~anon

    ios_models = _pick(rng, IOS_MODELS, n)
    android_models = _pick(rng, ANDROID_MODELS, n)
    ios_v = _pick(rng, IOS_VERSIONS, n)
    android_v = _pick(rng, ANDROID_VERSIONS, n)
    model: list[str | None] = [
        ios_models[i] if kind[i] == IOS else android_models[i] if kind[i] == ANDROID else None
        for i in range(n)
    ]
    os_version: list[str | None] = [
        ios_v[i] if kind[i] == IOS else android_v[i] if kind[i] == ANDROID else None
        for i in range(n)
    ]
    # rare models: each given to one or two persons' app-using Android (or any app) agents
    app_idx = np.flatnonzero(is_app)
    if len(app_idx):
        order = rng.permutation(app_idx)
        pos = 0
        for rare in RARE_MODELS:
            for _ in range(int(rng.integers(1, 3))):
                if pos >= len(order):
                    break
                a = order[pos]
                pos += 1
                kind[a] = ANDROID
                model[a] = rare
                os_version[a] = android_v[a]
                pop.activity[user[a]] = max(pop.activity[user[a]], 3.0)

    app_version = _pick(rng, APP_VERSIONS, n)
    app: list[str | None] = [app_version[i] if is_app[i] else None for i in range(n)]
    browser = rng.random(n) < 0.3
    ua_i = rng.integers(0, 1 << 20, n)
    uas = [_user_agent(int(kind[i]), model[i] or "", os_version[i] or "", app[i],
                       int(browser[i]), int(ua_i[i])) for i in range(n)]

    v6 = rng.random(n) < 0.06
    ip = pl.select(pl.when(pl.Series(v6)).then(ipv6_series(rng, n))
                   .otherwise(ipv4_series(rng, n))).to_series()
    cookie = uuid_series(rng, n)
    ios_dev = uuid_series(rng, n, upper=True)
    and_dev = matrix_to_series(char_matrix(rng, n, 16, HEX))
    kinds_s = pl.Series(kind)
    device_id = pl.select(
        pl.when(~pl.Series(is_app)).then(None)
        .when(kinds_s == IOS).then(ios_dev).otherwise(and_dev)
    ).to_series()

    # weights: users split their activity over their agents; anonymous agents share ANON_SHARE
    split = rng.gamma(2.0, 1.0, n)
    weight = np.empty(n)
    uw = split[: len(a_user)]
    per_user_sum = np.bincount(a_user, weights=uw, minlength=n_users)
    weight[: len(a_user)] = pop.activity[a_user] * uw / per_user_sum[a_user]
    aw = rng.lognormal(0, 1.0, n_anon) * np.where(bots[len(a_user):], 20.0, 1.0)
    user_total = weight[: len(a_user)].sum()
    weight[len(a_user):] = aw / aw.sum() * user_total * ANON_SHARE / (1 - ANON_SHARE)

    start_ms = day_wall_ms(start)
    created = np.where(user >= 0, pop.created_ms[np.maximum(user, 0)], start_ms - 180 * 86_400_000)
    first_seen = created + (rng.random(n) * (start_ms - created)).astype(np.int64)

    ca = np.where(user >= 0, pop.consent_analytics[np.maximum(user, 0)], rng.random(n) < 0.85)
    cads = np.where(user >= 0, pop.consent_ads[np.maximum(user, 0)], rng.random(n) < 0.5)
    unanswered = rng.random(n) < 0.04
    consent = pl.DataFrame({"consent_analytics": ca, "consent_ads": cads}).with_columns(
        pl.when(~pl.Series(unanswered)).then(pl.col(c)).alias(c)
        for c in ("consent_analytics", "consent_ads")
    )

    frame = pl.DataFrame({
        "cookie_id": cookie, "ip": ip, "user_agent": pl.Series(uas, dtype=pl.String),
        "device_id": device_id, "app_version": pl.Series(app, dtype=pl.String),
    })
    agents_device = np.full(n, -1, dtype=np.int64)
    agents_device[app_idx] = np.arange(len(app_idx))
    devices = _build_devices(rng, pop, kind, user, app_idx, model, os_version, frame, first_seen)
    agents = Agents(n=n, user=user, kind=kind, device=agents_device, weight=weight,
                    first_seen_ms=first_seen, frame=frame, cookie_consent=consent)
    return agents, devices


def _build_devices(
    rng: np.random.Generator, pop: Population, kind: np.ndarray, user: np.ndarray,
    app_idx: np.ndarray, model: list[str | None], os_version: list[str | None],
    agent_frame: pl.DataFrame, first_seen: np.ndarray,
) -> Devices:
    """App devices (one per app agent) followed by body-composition scales."""
    m = len(app_idx)
    k = kind[app_idx]
    ios = pl.Series(k == IOS)
    ad_ios, ad_and = uuid_series(rng, m, upper=True), uuid_series(rng, m)
    limited = pl.Series(rng.random(m) < np.where(k == IOS, 0.35, 0.08))
    serial = pl.select(pl.when(ios).then("F" + matrix_to_series(char_matrix(rng, m, 11,
                                                                            ALNUM_UPPER)))
                       .otherwise("R5C" + matrix_to_series(char_matrix(rng, m, 8, ALNUM_UPPER)))
                       ).to_series()
    apps = pl.DataFrame({
        "device_id": agent_frame["device_id"].gather(app_idx),
        "user_id": pl.Series([pop.user_id[user[a]] for a in app_idx], dtype=pl.String),
        "model": pl.Series([model[a] for a in app_idx], dtype=pl.String),
        "os": pl.Series(np.where(k == IOS, "iOS", "Android").tolist(), dtype=pl.String),
        "os_version": pl.Series([os_version[a] for a in app_idx], dtype=pl.String),
        "carrier": pl.Series(_pick(rng, CARRIERS, m), dtype=pl.String),
        "ad_id": pl.select(pl.when(limited).then(None).when(ios).then(ad_ios)
                           .otherwise(ad_and)).to_series(),
        "mac": _mac(rng, m),
        "serial": serial,
        "ip": agent_frame["ip"].gather(app_idx),
        "first_seen": ts_strings(first_seen[app_idx]),
    })
    scale_users = np.flatnonzero(rng.random(pop.n) < 0.08)
    if len(scale_users) == 0 and pop.n:
        scale_users = np.array([0])
    s = len(scale_users)
    s_first = pop.created_ms[scale_users] + rng.integers(0, 86_400_000 * 30, s)
    scales = pl.DataFrame({
        "device_id": uuid_series(rng, s),
        "user_id": pl.Series([pop.user_id[u] for u in scale_users], dtype=pl.String),
        "model": pl.Series(_pick(rng, SCALE_MODELS, s), dtype=pl.String),
        "os": pl.Series([None] * s, dtype=pl.String),
        "os_version": pl.Series(["2.1.0"] * s, dtype=pl.String),
        "carrier": pl.Series([None] * s, dtype=pl.String),
        "ad_id": pl.Series([None] * s, dtype=pl.String),
        "mac": _mac(rng, s),
        "serial": "OM" + matrix_to_series(char_matrix(rng, s, 10, b"0123456789")),
        "ip": pl.Series([None] * s, dtype=pl.String),
        "first_seen": ts_strings(s_first),
    })
    frame = pl.concat([apps, scales], how="vertical")
    dev_user = np.concatenate([user[app_idx], scale_users]).astype(np.int64)
    is_scale = np.concatenate([np.zeros(m, bool), np.ones(s, bool)])
    return Devices(frame=frame, user=dev_user, is_scale=is_scale)


def devices_frame(devices: Devices, active: np.ndarray) -> pl.DataFrame:
    """The devices export of one day: every device seen that day (events or measurements)."""
    return devices.frame.filter(pl.Series(active))


def registry_values(agents: Agents, devices: Devices) -> list[str]:
    """Raw linking keys of agents and devices for the leak-test registry."""
    out: list[str] = agents.frame["cookie_id"].to_list()
    for col in ("device_id", "ad_id", "mac", "serial"):
        out.extend(v for v in devices.frame[col].to_list() if v)
    return out
