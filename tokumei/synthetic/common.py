"""Shared helpers of the synthetic generator: seeded RNG streams, vectorized IDs, JST time.

Determinism rests on one rule: every random draw comes from a numpy ``Generator`` derived from
``(seed, stream, day, chunk)`` through ``SeedSequence``. Streams never share state, so changing
the chunk size of one source or adding a column to another does not shift any other file, and
two runs with the same seed write the same bytes. Python's ``random`` and Faker's RNG are never
used (Faker contributes its locale word lists only).

IDs and hex strings are built as ``(n, width)`` uint8 arrays viewed as fixed-width bytes, so a
million UUIDs cost one numpy pass instead of a million ``uuid4()`` calls.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

JST = timezone(timedelta(hours=9), "JST")
BASE_URL = "https://shop.example.jp"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3f+09:00"
MS_PER_DAY = 86_400_000

STREAMS: dict[str, int] = {
    "people": 1,
    "agents": 2,
    "events": 3,
    "measurements": 4,
    "devices": 5,
    "cookies": 6,
    "writer": 7,
    "opdb": 8,
    "strangers": 9,
}

HEX = b"0123456789abcdef"
HEX_UPPER = b"0123456789ABCDEF"
ALNUM_UPPER = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
ALNUM = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Japanese prefectures: name, population (millions, 2020 census, rounded) and the capital's
# coordinates. Population weights where users live; coordinates seed their home location.
PREFECTURES: tuple[tuple[str, float, float, float], ...] = (
    ("北海道", 5.22, 43.064, 141.347), ("青森県", 1.24, 40.824, 140.740),
    ("岩手県", 1.21, 39.704, 141.153), ("宮城県", 2.30, 38.269, 140.872),
    ("秋田県", 0.96, 39.719, 140.102), ("山形県", 1.07, 38.240, 140.363),
    ("福島県", 1.83, 37.750, 140.468), ("茨城県", 2.87, 36.342, 140.447),
    ("栃木県", 1.93, 36.566, 139.884), ("群馬県", 1.94, 36.391, 139.061),
    ("埼玉県", 7.34, 35.857, 139.649), ("千葉県", 6.28, 35.605, 140.123),
    ("東京都", 14.05, 35.690, 139.692), ("神奈川県", 9.24, 35.448, 139.643),
    ("新潟県", 2.20, 37.902, 139.023), ("富山県", 1.03, 36.695, 137.211),
    ("石川県", 1.13, 36.595, 136.626), ("福井県", 0.77, 36.065, 136.222),
    ("山梨県", 0.81, 35.664, 138.568), ("長野県", 2.05, 36.651, 138.181),
    ("岐阜県", 1.98, 35.391, 136.722), ("静岡県", 3.63, 34.977, 138.383),
    ("愛知県", 7.54, 35.180, 136.907), ("三重県", 1.77, 34.730, 136.509),
    ("滋賀県", 1.41, 35.004, 135.868), ("京都府", 2.58, 35.021, 135.756),
    ("大阪府", 8.84, 34.686, 135.520), ("兵庫県", 5.47, 34.691, 135.183),
    ("奈良県", 1.32, 34.685, 135.833), ("和歌山県", 0.92, 34.226, 135.168),
    ("鳥取県", 0.55, 35.504, 134.238), ("島根県", 0.67, 35.472, 133.051),
    ("岡山県", 1.89, 34.662, 133.935), ("広島県", 2.80, 34.396, 132.459),
    ("山口県", 1.34, 34.186, 131.471), ("徳島県", 0.72, 34.066, 134.559),
    ("香川県", 0.95, 34.340, 134.043), ("愛媛県", 1.33, 33.842, 132.766),
    ("高知県", 0.69, 33.560, 133.531), ("福岡県", 5.14, 33.607, 130.418),
    ("佐賀県", 0.81, 33.249, 130.299), ("長崎県", 1.31, 32.745, 129.874),
    ("熊本県", 1.74, 32.790, 130.742), ("大分県", 1.12, 33.238, 131.613),
    ("宮崎県", 1.07, 31.911, 131.424), ("鹿児島県", 1.59, 31.560, 130.558),
    ("沖縄県", 1.47, 26.212, 127.681),
)


def rng_for(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """An independent, reproducible RNG for one (stream, day, chunk, ...) cell of the output."""
    return np.random.default_rng(np.random.SeedSequence([seed, STREAMS[stream], *keys]))


def char_matrix(rng: np.random.Generator, n: int, width: int, alphabet: bytes) -> np.ndarray:
    """``(n, width)`` uint8 matrix of random characters from ``alphabet``."""
    alpha = np.frombuffer(alphabet, dtype=np.uint8)
    return alpha[rng.integers(0, len(alpha), size=(n, width))]


def matrix_to_series(mat: np.ndarray, name: str = "") -> pl.Series:
    """Turn an ``(n, width)`` uint8 character matrix into a String series without a Python loop."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, width = mat.shape
    if n == 0:
        return pl.Series(name, [], dtype=pl.String)
    return pl.Series(name, mat.view(f"S{width}").ravel()).cast(pl.String)


def rand_strings(
    rng: np.random.Generator, n: int, width: int, alphabet: bytes, prefix: str = "", name: str = ""
) -> pl.Series:
    """``n`` random fixed-width strings, optionally prefixed."""
    s = matrix_to_series(char_matrix(rng, n, width, alphabet), name)
    return (prefix + s) if prefix else s


def uuid_series(rng: np.random.Generator, n: int, upper: bool = False, name: str = "") -> pl.Series:
    """Random version-4 UUID strings (``8-4-4-4-12``), lower case unless ``upper``."""
    alphabet = HEX_UPPER if upper else HEX
    hexes = char_matrix(rng, n, 32, alphabet)
    hexes[:, 12] = ord("4")
    variant = np.frombuffer(alphabet[8:12], dtype=np.uint8)
    hexes[:, 16] = variant[rng.integers(0, 4, size=n)]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    src = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)]
    dst = [0, 9, 14, 19, 24]
    for (a, b), d in zip(src, dst, strict=True):
        out[:, d : d + (b - a)] = hexes[:, a:b]
    return matrix_to_series(out, name)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorized splitmix64 finalizer: a cheap, well-mixed, seedable hash of uint64 keys."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hex_of_u64(x: np.ndarray) -> np.ndarray:
    """``(n, 16)`` uint8 matrix of the lower-case hex digits of each uint64."""
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = (x.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    return np.frombuffer(HEX, dtype=np.uint8)[nibbles.astype(np.intp)]


def ts_strings(wall_ms: np.ndarray, name: str = "") -> pl.Series:
    """ISO 8601 strings with a ``+09:00`` offset from JST wall-clock milliseconds since 1970."""
    return (
        pl.Series(name, wall_ms.astype(np.int64))
        .cast(pl.Datetime("ms"))
        .dt.strftime(TS_FORMAT)
        .alias(name)
    )


def day_wall_ms(day: date) -> int:
    """JST wall-clock milliseconds of midnight starting ``day`` (naive epoch arithmetic)."""
    return (day - date(1970, 1, 1)).days * MS_PER_DAY


def wall_ms_to_datetime(ms: int) -> datetime:
    """Aware JST datetime for a JST wall-clock millisecond value (used for DB rows)."""
    naive = datetime(1970, 1, 1) + timedelta(milliseconds=int(ms))
    return naive.replace(tzinfo=JST)


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights`` (inverse CDF, O(n log k))."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def ipv4_series(rng: np.random.Generator, n: int, name: str = "") -> pl.Series:
    """Plausible public IPv4 addresses from blocks Japanese ISPs and carriers announce."""
    firsts = np.array([1, 27, 36, 49, 58, 60, 106, 110, 111, 114, 118, 119, 122, 126, 133, 153,
                       180, 182, 202, 210, 219, 220, 221])
    octets = [firsts[rng.integers(0, len(firsts), n)], rng.integers(0, 256, n),
              rng.integers(0, 256, n), rng.integers(1, 255, n)]
    df = pl.DataFrame({f"o{i}": o for i, o in enumerate(octets)})
    return df.select(pl.concat_str([pl.col(f"o{i}") for i in range(4)], separator=".")).to_series(
    ).alias(name)


def ipv6_series(rng: np.random.Generator, n: int, name: str = "") -> pl.Series:
    """Plausible IPv6 addresses under prefixes of large Japanese ISPs."""
    prefixes = pl.Series(["2400:4050:", "240b:10:", "2001:268:", "2404:7a80:"])
    groups = [
        matrix_to_series(char_matrix(rng, n, 4, HEX)).str.strip_chars_start("0").replace("", "0")
        for _ in range(6)
    ]
    pre = prefixes.gather(rng.integers(0, len(prefixes), n))
    df = pl.DataFrame({"p": pre, **{f"g{i}": g for i, g in enumerate(groups)}})
    return df.select(
        pl.concat_str([pl.col("p"), pl.concat_str([pl.col(f"g{i}") for i in range(6)],
                                                  separator=":")])
    ).to_series().alias(name)
