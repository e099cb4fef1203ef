"""Usage events of one day, generated in time-ordered chunks with numpy and Polars.

A day is cut into ``K`` slices of equal probability mass under a diurnal profile (quiet at 4 am,
peaks at lunch and late evening). Chunk ``j`` draws its timestamps inside slice ``j`` only, so
chunks concatenate into a time-sorted day, each chunk is independent (its own RNG stream) and a
day of any size is produced with memory bounded by one chunk.

Who acts is drawn per event from agent weights (lognormal activity, a few power users, daily
noise); event type, URL, referrer, search query and location are vectorized. Only the rare rows
that carry planted PII or inquiry texts go through Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote_plus

import numpy as np
import polars as pl

from tokumei.synthetic.common import (
    ALNUM,
    BASE_URL,
    char_matrix,
    day_wall_ms,
    hex_of_u64,
    matrix_to_series,
    rng_for,
    splitmix64,
    ts_strings,
    uuid_series,
    weighted_choice,
)
from tokumei.synthetic.devices import BOT, Agents
from tokumei.synthetic.people import Population
from tokumei.synthetic.pii_plant import Planter

EVENT_TYPES = ("page_view", "search", "click", "signup", "purchase", "inquiry")
EVENT_WEIGHTS = np.array([59.0, 14.0, 22.0, 1.0, 3.0, 1.0])
PAGE_VIEW, SEARCH, CLICK, SIGNUP, PURCHASE, INQUIRY = range(6)
EVENT_COLUMNS = (
    "ts", "event", "cookie_id", "session_id", "user_id", "ip", "user_agent", "url", "referrer",
    "search_query", "inquiry_text", "lat", "lon", "device_id", "app_version", "amount_jpy",
)
HOURLY = np.array([2.0, 1.2, 0.7, 0.5, 0.4, 0.6, 1.5, 3.0, 4.0, 4.2, 4.5, 5.0, 6.5, 5.5, 4.8,
                   4.6, 4.7, 5.0, 5.6, 6.2, 7.0, 7.6, 7.0, 4.5])
LOGGED_OUT_SHARE = 0.11  # of events by agents that belong to users; plus anonymous agents
URL_PII_RATE = 0.004
REFERRER_PII_RATE = 0.002
SEARCH_PII_RATE = 0.01
LOCATION_SHARE = 0.6  # of app events that carry lat/lon
ID_POOL = 16_384

# path prefix, id kind (0 none, 1 numeric, 2 slug, 3 uuid, 4 hex), suffix, weight
PAGES = (
    ("/", 0, "", 14), ("/items/", 1, "", 40), ("/items/", 1, "/reviews", 8),
    ("/category/", 2, "", 12), ("/orders/", 3, "", 4), ("/users/", 4, "/profile", 3),
    ("/cart", 0, "", 7), ("/campaign/", 2, "", 6), ("/help/faq", 0, "", 3), ("/mypage", 0, "", 3),
)
QUERY_SUFFIXES = (("", 80), ("?ref=mail", 5), ("?ref=reco", 5),
                  ("?utm_source=line&utm_medium=social&utm_campaign=summer_sale", 5),
                  ("?utm_source=google&utm_medium=cpc&gclid=", 5))
SLUGS = ("fashion", "kaden", "food", "beauty", "sports", "outdoor", "kids", "books", "interior",
         "pet", "summer-sale-2024", "black-friday", "new-arrivals")
SEARCH_WORDS = (
    "ワイヤレスイヤホン", "スニーカー メンズ", "炊飯器 5合", "iphone 15 ケース", "日傘 レディース",
    "プロテイン", "ドライヤー", "電動歯ブラシ", "ランニングシューズ", "コーヒーメーカー",
    "ノートパソコン", "加湿器", "キャンプ 椅子", "水筒 子供", "リュック 通勤", "抱き枕",
    "tシャツ 無地", "ゲーミングマウス", "美容液", "おむつ", "お米 10kg", "ふるさと納税",
    "財布 メンズ",
    "モバイルバッテリー", "ハンドクリーム", "ヨガマット", "扇風機", "電気毛布", "ビジネスバッグ",
    "wireless earbuds", "running shoes", "usb-c cable", "coffee beans", "yoga mat",
    "gift for mom", "nintendo switch", "airpods pro",
)
SEARCH_MODIFIERS = ("", " 安い", " おすすめ", " 人気", " セール", " 送料無料", " ランキング", " 黒",
                    " 白", " 2024")
# null, internal, google, yahoo (with query), social, webmail
REFERRER_KINDS = np.array([35.0, 35.0, 12.0, 6.0, 7.0, 5.0])


def search_pool() -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Search phrases, their URL-encoded forms and Zipf-like popularity weights."""
    phrases = [w + m for w in SEARCH_WORDS for m in SEARCH_MODIFIERS]
    enc = [quote_plus(p) for p in phrases]
    weights = 1.0 / np.arange(1, len(phrases) + 1) ** 0.8
    order = np.random.default_rng(7).permutation(len(phrases))  # fixed, seed-independent ranks
    return pl.Series(phrases), pl.Series(enc), weights[order]


@dataclass
class World:
    """Everything event generation needs, built once per run."""

    seed: int
    pop: Population
    strangers: Population
    agents: Agents
    planter: Planter
    queries: pl.Series
    queries_enc: pl.Series
    query_weights: np.ndarray


@dataclass
class DayPlan:
    """How one day's events are split into chunks, and who is how active that day."""

    day: date
    day_index: int
    counts: list[int]
    cdf: np.ndarray


@dataclass
class DayState:
    """What the day's events touched: feeds the devices and cookies exports."""

    agent_last_seen: np.ndarray
    device_active: np.ndarray


def plan_day(world: World, day: date, day_index: int, events_per_user_day: float,
             chunk_size: int) -> DayPlan:
    """Total events (Poisson around users × rate, busier at weekends) and the chunk split."""
    rng = rng_for(world.seed, "events", day_index, 1 << 30)
    factor = 1.15 if day.weekday() >= 5 else 1.0
    total = int(rng.poisson(world.pop.n * events_per_user_day * factor))
    k = max(1, -(-total // chunk_size))
    counts = [total // k + (1 if j < total % k else 0) for j in range(k)]
    w = world.agents.weight * rng.gamma(2.0, 0.5, world.agents.n)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    return DayPlan(day=day, day_index=day_index, counts=counts, cdf=cdf)


def _offsets_ms(u: np.ndarray) -> np.ndarray:
    """Inverse CDF of the piecewise-constant hourly profile: uniform [0,1) → ms into the day."""
    p = HOURLY / HOURLY.sum()
    hcdf = np.concatenate([[0.0], np.cumsum(p)])
    h = np.clip(np.searchsorted(hcdf, u, side="right") - 1, 0, 23)
    frac = np.clip((u - hcdf[h]) / p[h], 0.0, 0.999999)
    return ((h + frac) * 3_600_000).astype(np.int64)


def event_chunk(world: World, plan: DayPlan, j: int, state: DayState) -> pl.DataFrame:
    """Chunk ``j`` of the day: a time-sorted DataFrame with the contract's event columns."""
    n = plan.counts[j]
    k = len(plan.counts)
    rng = rng_for(world.seed, "events", plan.day_index, j)
    agents, pop = world.agents, world.pop
    u = np.sort(rng.uniform(j / k, (j + 1) / k, n))
    wall = day_wall_ms(plan.day) + _offsets_ms(u)
    agent = np.minimum(np.searchsorted(plan.cdf, rng.random(n), side="right"), agents.n - 1)
    owner = agents.user[agent]
    user_idx = np.where((owner < 0) | (rng.random(n) < LOGGED_OUT_SHARE), -1, owner)
    etype = weighted_choice(rng, EVENT_WEIGHTS, n)
    etype[agents.kind[agent] == BOT] = PAGE_VIEW
    etype[(etype == PURCHASE) & (user_idx < 0)] = PAGE_VIEW
    dev = agents.device[agent]
    is_app = dev >= 0

    np.maximum.at(state.agent_last_seen, agent, wall)
    state.device_active[dev[is_app]] = True

    salt = np.uint64(world.seed * 1_000_003 + plan.day_index)
    h1 = splitmix64((agent.astype(np.uint64) << np.uint64(24)) ^ (wall // 1_800_000).astype(
        np.uint64) ^ salt)
    session = matrix_to_series(np.hstack([hex_of_u64(h1), hex_of_u64(splitmix64(h1))]))

    # URL ------------------------------------------------------------------------------------
    tcode = weighted_choice(rng, np.array([p[3] for p in PAGES], dtype=float), n)
    id_kind = np.array([p[1] for p in PAGES])[tcode]
    qcode = weighted_choice(rng, np.array([q[1] for q in QUERY_SUFFIXES], dtype=float), n)
    qidx = weighted_choice(rng, world.query_weights, n)
    et = pl.Series(etype)
    # random IDs only show up in a few percent of rows: draw a pool per chunk and sample from it
    # rather than n strings each (order IDs, gclids, t.co slugs repeat a little within a chunk)
    m = max(1, min(n, ID_POOL))
    frame = pl.DataFrame({
        "et": et,
        "idk": id_kind,
        "prefix": pl.Series([p[0] for p in PAGES]).gather(tcode),
        "suffix": pl.Series([p[2] for p in PAGES]).gather(tcode),
        "num": pl.Series(rng.integers(1000, 999_999, n)).cast(pl.String),
        "slug": pl.Series(SLUGS).gather(rng.integers(0, len(SLUGS), n)),
        "uuid": uuid_series(rng, m).gather(rng.integers(0, m, n)),
        "hex": matrix_to_series(hex_of_u64(rng.integers(0, 1 << 62, m, dtype=np.int64))[:, 4:])
        .gather(rng.integers(0, m, n)),
        "query": pl.Series([q[0] for q in QUERY_SUFFIXES]).gather(qcode),
        "gclid": matrix_to_series(char_matrix(rng, m, 24, ALNUM)).gather(rng.integers(0, m, n)),
        "qcode": qcode,
        "q": world.queries.gather(qidx),
        "q_enc": world.queries_enc.gather(qidx),
        "rkind": weighted_choice(rng, REFERRER_KINDS, n),
        "rq_enc": world.queries_enc.gather(weighted_choice(rng, world.query_weights, n)),
        "rnum": pl.Series(rng.integers(1000, 999_999, n)).cast(pl.String),
        "rsocial": rng.integers(0, 3, n),
        "tco": matrix_to_series(char_matrix(rng, m, 10, ALNUM)).gather(rng.integers(0, m, n)),
        "app": is_app,
    })
    id_expr = (pl.when(pl.col("idk") == 1).then(pl.col("num"))
               .when(pl.col("idk") == 2).then(pl.col("slug"))
               .when(pl.col("idk") == 3).then(pl.col("uuid"))
               .when(pl.col("idk") == 4).then(pl.col("hex")).otherwise(pl.lit("")))
    browse = pl.concat_str([pl.col("prefix"), id_expr, pl.col("suffix"), pl.col("query"),
                            pl.when(pl.col("qcode") == 4).then(pl.col("gclid")).otherwise(
                                pl.lit(""))])
    path = (pl.when(pl.col("et") == SEARCH).then(pl.lit("/search?q=") + pl.col("q_enc"))
            .when(pl.col("et") == PURCHASE).then(pl.lit("/checkout/complete?order=")
                                                 + pl.col("uuid"))
            .when(pl.col("et") == SIGNUP).then(pl.lit("/signup/complete"))
            .when(pl.col("et") == INQUIRY).then(pl.lit("/support/contact/complete"))
            .otherwise(browse))
    social = (pl.when(pl.col("rsocial") == 0).then(pl.lit("https://t.co/") + pl.col("tco"))
              .when(pl.col("rsocial") == 1).then(pl.lit("https://www.instagram.com/"))
              .otherwise(pl.lit("https://line.me/")))
    referrer = (pl.when(pl.col("app") | (pl.col("rkind") == 0)).then(pl.lit(None, pl.String))
                .when(pl.col("rkind") == 1).then(pl.lit(BASE_URL + "/items/") + pl.col("rnum"))
                .when(pl.col("rkind") == 2).then(pl.lit("https://www.google.co.jp/"))
                .when(pl.col("rkind") == 3).then(pl.lit("https://search.yahoo.co.jp/search?p=")
                                                  + pl.col("rq_enc"))
                .when(pl.col("rkind") == 4).then(social)
                .otherwise(pl.lit("https://mail.google.com/")))
    built = frame.select(
        url=pl.lit(BASE_URL) + path,
        referrer=referrer,
        search_query=pl.when(pl.col("et") == SEARCH).then(pl.col("q")),
    )
    url, ref, query = built["url"], built["referrer"], built["search_query"]
    inquiry = pl.Series("inquiry_text", [None] * n, dtype=pl.String)

    # planted PII and inquiry texts: the only per-row Python ------------------------------------
    url, ref, query, inquiry = _plant(world, rng, etype, owner, url, ref, query, inquiry)

    # location, purchase amounts ---------------------------------------------------------------
    located = is_app & (rng.random(n) < LOCATION_SHARE)
    who = np.maximum(owner, 0)
    lat = np.round(pop.home_lat[who] + rng.normal(0, 0.01, n), 6)
    lon = np.round(pop.home_lon[who] + rng.normal(0, 0.01, n), 6)
    amount = (np.maximum(100, np.round(rng.lognormal(np.log(3500), 0.9, n) / 10) * 10)
              .astype(np.int64))
    user_ids = pl.Series(pop.user_id, dtype=pl.String)
    gathered = agents.frame[agent]
    out = pl.DataFrame({
        "ts": ts_strings(wall),
        "event": pl.Series(EVENT_TYPES).gather(etype),
        "cookie_id": gathered["cookie_id"],
        "session_id": session,
        "user_id": user_ids.gather(pl.Series(np.maximum(user_idx, 0))),
        "ip": gathered["ip"],
        "user_agent": gathered["user_agent"],
        "url": url,
        "referrer": ref,
        "search_query": query,
        "inquiry_text": inquiry,
        "lat": lat,
        "lon": lon,
        "device_id": gathered["device_id"],
        "app_version": gathered["app_version"],
        "amount_jpy": amount,
    })
    return out.with_columns(
        pl.when(pl.Series(user_idx >= 0)).then(pl.col("user_id")).alias("user_id"),
        pl.when(pl.Series(located)).then(pl.col("lat")).alias("lat"),
        pl.when(pl.Series(located)).then(pl.col("lon")).alias("lon"),
        pl.when(pl.col("event") == "purchase").then(pl.col("amount_jpy")).alias("amount_jpy"),
    ).select(EVENT_COLUMNS)


def _plant(
    world: World, rng: np.random.Generator, etype: np.ndarray, owner: np.ndarray,
    url: pl.Series, ref: pl.Series, query: pl.Series, inquiry: pl.Series,
) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series]:
    """Overwrite the few rows that carry PII (and fill every inquiry text)."""
    n = len(etype)
    planter = world.planter
    n_strangers = world.strangers.n

    def person(i: int):  # noqa: ANN202 - local helper
        o = int(owner[i])
        if o >= 0:
            return world.pop.person(o)
        return world.strangers.person(int(rng.integers(0, n_strangers)))

    browse = (etype == PAGE_VIEW) | (etype == CLICK)
    url_rows = np.flatnonzero(browse & (rng.random(n) < URL_PII_RATE))
    if len(url_rows):
        url = url.scatter(url_rows, [BASE_URL + planter.url_path(person(i), rng)
                                     for i in url_rows])
    ref_rows = np.flatnonzero(rng.random(n) < REFERRER_PII_RATE)
    if len(ref_rows):
        ref = ref.scatter(ref_rows, [planter.referrer(person(i), rng) for i in ref_rows])
    q_rows = np.flatnonzero((etype == SEARCH) & (rng.random(n) < SEARCH_PII_RATE))
    if len(q_rows):
        texts: list[str] = []
        encoded_values: list[str] = []
        for i in q_rows:
            texts.append(planter.search(person(i), rng))
            encoded_values.extend(quote_plus(v) for v in planter.last_values)
        query = query.scatter(q_rows, texts)
        url = url.scatter(q_rows, [f"{BASE_URL}/search?q={quote_plus(t)}" for t in texts])
        # the URL carries the percent-encoded forms: they are leaks too
        planter.registry.add(encoded_values)
    inq_rows = np.flatnonzero(etype == INQUIRY)
    if len(inq_rows):
        inquiry = inquiry.scatter(inq_rows, [planter.inquiry(person(i), rng) for i in inq_rows])
    return url, ref, query, inquiry
