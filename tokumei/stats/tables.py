"""Statistics tables: counts of *distinct persons* per cell, with small-cell suppression.

Every function takes generalized LazyFrames (person key already pseudonymized, quasi-identifiers
already at their policy level) and returns a LazyFrame with the table's documented schema. The
person key is used for counting and never appears in the output.

Suppression here is primary (cells under ``min_cell`` persons): the count and every measure of
such a cell become null and ``suppressed`` is true, so analysts can tell "suppressed" from
"zero". ``protect_sessions`` adds the complements its 'all' rows need. Relations that tie cells
(within a table, across tables of a day, a period over its days, two partitions of the same
persons) are declared per table in ``TableSpec.relations``; the release protects and audits
all tables as one linear system built from those declarations
(``tokumei.stats.disclosure.release``, ADR 0001), and a table without a declaration cannot be
published. ``funnel`` suppresses each step column on its own.

``docs/data_dictionary.md`` is generated from :data:`TABLES` and :data:`COLUMN_DOCS`
(:func:`data_dictionary`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tokumei.anonymize.folding import DEFAULT_SPECIAL_CARE, SpecialCare, fold, values_to_fold
from tokumei.anonymize.policy import DisclosurePolicy
from tokumei.anonymize.streaming import per_batch
from tokumei.stats.bands import band
from tokumei.stats.categories import CATEGORY_VALUES, categorize
from tokumei.stats.disclosure.relations import (
    Aggregate,
    Equal,
    Order,
    Printed,
    Relation,
    SamePersons,
    WithinDay,
)
from tokumei.stats.disclosure.rounding import round_expr
from tokumei.stats.grids import DEVICE_CLASSES, complete, fold_device, grid
from tokumei.stats.periods import COHORT_WEEKS, MEASURES

PERSON = "person"

#: Session duration bands (max(ts) - min(ts) of a session's events), lower bound inclusive.
DURATION_BANDS: tuple[tuple[str, int], ...] = (
    ("<1m", 0),
    ("1-10m", 60),
    ("10-30m", 600),
    ("30m+", 1800),
)
ALL_DURATIONS = "all"

#: Purchase amount bands (JPY, lower bound inclusive).
PRICE_BANDS: tuple[tuple[str, int], ...] = (
    ("<1000", 0),
    ("1000-4999", 1000),
    ("5000-9999", 5000),
    ("10000-49999", 10000),
    ("50000+", 50000),
)

#: OS families published as themselves; every other family becomes ``other`` (a fixed list, so
#: a rare OS never names itself, not even in a suppressed row). No user agent → ``unknown``.
OS_FAMILIES: tuple[str, ...] = ("Android", "iOS", "Windows", "Mac OS X", "Linux", "Chrome OS")

SEARCH_KINDS: tuple[str, ...] = ("search", "inquiry")

#: Closed value sets of dimension columns (GX ``allowed`` sets and the data dictionary).
DIM_VALUES: dict[str, tuple[str, ...]] = {
    "duration_band": (ALL_DURATIONS, *(b for b, _ in DURATION_BANDS)),
    "price_band": tuple(b for b, _ in PRICE_BANDS),
    "os_family": (*OS_FAMILIES, "other", "unknown"),
    "device_class": DEVICE_CLASSES,
    "kind": SEARCH_KINDS,
    "category": CATEGORY_VALUES,
    "measure": tuple(MEASURES),
    "band": tuple(dict.fromkeys(b for _, bands in MEASURES.values() for b, _ in bands)),
    "weeks_since_signup": tuple(f"{w:02d}" for w in range(COHORT_WEEKS)),
}


@dataclass(frozen=True)
class TableSpec:
    """Schema documentation of one statistics table (used for GX suites and the data dictionary)."""

    name: str
    description: str
    dims: tuple[str, ...]
    counts: tuple[str, ...]
    measures: tuple[str, ...] = ()
    #: Measures that are integers (e.g. rounded yen); every other measure is a float.
    int_measures: tuple[str, ...] = ()
    #: Japanese one-line summary (items notice, data dictionary).
    description_ja: str = ""
    #: How often it is released: ``daily``, ``weekly`` (the run of each Sunday, JST) or
    #: ``monthly`` (the run of each month's last day); see ``tokumei.stats.periods``.
    release: str = "daily"
    #: What each count counts, (column, unit) pairs; a count not listed counts ``persons``.
    units: tuple[tuple[str, str], ...] = ()
    #: Magnitude measures and their kind (``mean``, ``median``, ``sum``), for the SDC model.
    magnitudes: tuple[tuple[str, str], ...] = ()
    #: Every linear relation the table holds (``tokumei.stats.disclosure.relations``); ``()``
    #: declares that it holds none, ``None`` (undeclared) makes publishing it fail.
    relations: tuple[Relation, ...] | None = None
    #: Whether release protection may suppress further cells of this table as complements.
    #: False for daily tables that period tables aggregate: an earlier day's release is fixed,
    #: so its suppressed cells must all be primary (the attacker is told they are < min_cell).
    complements: bool = True

    def unit(self, count: str) -> str:
        """What ``count`` counts: ``persons`` unless declared otherwise in ``units``."""
        return dict(self.units).get(count, "persons")

    @property
    def columns(self) -> tuple[str, ...]:
        """Published columns, in order."""
        return (*self.dims, *self.counts, *self.measures, "suppressed")

    def dtype(self, column: str) -> str:
        """Logical type of a published column: date, string, int, float or bool."""
        if column == "date":
            return "date"
        if column == "suppressed":
            return "bool"
        if column in self.dims:
            return "string"
        if column in self.counts or column in self.int_measures:
            return "int"
        if column in self.measures:
            return "float"
        raise KeyError(f"{self.name}: no column {column!r}")


#: Every persons cell of an event table (page views, sessions, searches, funnel, purchases)
#: counts persons with an event that day, whom daily_active_users counts once each under the
#: same pseudonym: the cell is at most the day's total of it (the release checks it on the
#: unsuppressed data, disclosure.release.violated, fail closed). Measurements come from the
#: scale, not from events: not declared.
#: The same tables' persons summed over their cells are at most the kept event rows (each
#: counted (person, cell) has an event of its own); sessions not: a session is in its band
#: row and in the 'all' row.
_ACTIVE = WithinDay("persons <= the day's active persons", "persons", "daily_active_users")

TABLES: dict[str, TableSpec] = {
    "daily_active_users": TableSpec(
        "daily_active_users",
        "Distinct persons with at least one event that JST day, by prefecture, 5-year age band "
        "and gender (logged-out cookies count as persons of unknown demographics).",
        ("date", "prefecture", "age_band", "gender"),
        ("persons",),
        description_ja="日本時間の当日に1回以上利用した人数（都道府県・5歳階級・性別別）。",
        relations=(Printed("sum(persons) <= events kept", "persons", "events"),),
        complements=False,
    ),
    "page_views": TableSpec(
        "page_views",
        "Distinct persons who viewed a page template that day, by URL path template (ids "
        "replaced by :id, query dropped; templates seen by fewer than k persons become 'other') "
        "and device class.",
        ("date", "url_template", "device_class"),
        ("persons",),
        description_ja="当日にページを閲覧した人数（パステンプレート・端末区分別）。",
        # funnel declares persons_page_view = union of these per device
        relations=(_ACTIVE, Printed("sum(persons) <= events kept", "persons", "events")),
    ),
    "measurements_summary": TableSpec(
        "measurements_summary",
        "Persons with a scale measurement that day and their weight mean and median (kg, one "
        "decimal; each person's daily mean counts once), by age band and gender. Every age "
        "band × gender is a row every day (see Public grids). Magnitude rules: each person's "
        "daily mean is winsorized before aggregation, i.e. clipped to bounds of the whole "
        "day's measured population (policy winsor_lower/winsor_upper percentiles, default 1st "
        "and 99th, with at least winsor_min_persons, default 10, persons at or beyond each "
        "bound, then rounded inward to winsor_step, default 5 kg, so that one person rarely "
        "moves them; no measure is published on a day with fewer than twice that many "
        "persons), so "
        "an outlier counts as the bound and persons × (mean − median) does not estimate it. "
        "The median is the mean of the central median_central (default 3; one more for an even "
        "count) values, published only for cells of at least median_min_persons (default 10) "
        "persons, so no single person's value is the median. Both measures are suppressed "
        "(suppressed true, persons still published) when the cell's sum is dominated: its "
        "dominance_n (default 2) largest values make more than dominance_k (default 80 %) of "
        "it, or the rest is less than p_percent (default 10 %) of the largest.",
        ("date", "age_band", "gender"),
        ("persons",),
        ("weight_mean_kg", "weight_median_kg"),
        description_ja="当日に体組成計で測定した人数と体重の平均値・中央値（5歳階級・性別別）。",
        magnitudes=(("weight_mean_kg", "mean"), ("weight_median_kg", "median")),
        relations=(Printed("sum(persons) <= measurements kept", "persons", "measurements"),),
    ),
    "sessions": TableSpec(
        "sessions",
        "Sessions that day, by device class, OS family and duration band. A session is a "
        "distinct (person, session pseudonym) pair; its duration is the time between its first "
        "and last event that day; its device class and OS family are those of its first event. "
        "One row per duration band (<1m, 1-10m, 10-30m, 30m+) plus an 'all' row: persons = "
        "distinct persons with at least one such session (a person can count in several band "
        "rows), sessions = number of such sessions (a session count, not a person count; it is "
        "at least persons). A row with fewer than min_cell persons is suppressed; further rows "
        "are suppressed as complements so that no suppressed row's sessions or persons can be "
        "narrowed below min_cell candidate values from its 'all' row and the published bands "
        "(checked by a linear-programming attacker; both counts of a row are suppressed "
        "together). OS families outside a fixed list become 'other'.",
        ("date", "device_class", "os_family", "duration_band"),
        ("persons", "sessions"),
        description_ja="当日のセッション数とセッションのあった人数（端末区分・OS・滞在時間帯別）。",
        units=(("sessions", "sessions"),),
        relations=(
            Aggregate(
                "sessions: all = sum(bands)",
                "sessions",
                "sum",
                ("device_class", "os_family"),
                total_rows=("duration_band", ALL_DURATIONS),
            ),
            Aggregate(
                "persons: band <= all <= sum(bands)",
                "persons",
                "union",
                ("device_class", "os_family"),
                total_rows=("duration_band", ALL_DURATIONS),
            ),
            Order("sessions >= persons", ("sessions", "persons")),
            _ACTIVE,
        ),
    ),
    "search_volume": TableSpec(
        "search_volume",
        "Distinct persons who searched (kind 'search') or sent an inquiry (kind 'inquiry') "
        "that day, by topic category. The category comes from keyword rules applied to the "
        "scrubbed text (tokumei/stats/categories.py, first match wins, 'other' when none); the "
        "text itself is never published. A person who searched two categories counts in both. "
        "Every category of a kind is suppressed when the day's distribution of that kind over "
        "categories is possibly homogeneous (see Attribute disclosure): 'all who searched "
        "today searched one topic' tells a searcher's topic.",
        ("date", "kind", "category"),
        ("persons",),
        description_ja="当日に検索・問い合わせをした人数（種別・話題カテゴリ別、本文は含まない）。",
        relations=(_ACTIVE, Printed("sum(persons) <= events kept", "persons", "events")),
    ),
    "funnel": TableSpec(
        "funnel",
        "Conversion funnel that day, by device class: distinct persons with a page_view on "
        "that device class; of those, persons who also signed up; of those, persons who also "
        "purchased (all three on the same JST day and device class, in any order). A person "
        "using two device classes counts in both rows. Each column is suppressed on its own "
        "when under min_cell persons (suppressed is true when any is): a suppressed later step "
        "is bounded only by the earlier step, which is acceptable because every published "
        "value is itself at least min_cell or null, and no margin is published.",
        ("date", "device_class"),
        ("persons_page_view", "persons_signup", "persons_purchase"),
        description_ja="当日のコンバージョン・ファネル：閲覧した人数、うち会員登録した人数、うち購入した人数（端末区分別）。",
        relations=(
            Order(
                "page_view >= signup >= purchase",
                ("persons_page_view", "persons_signup", "persons_purchase"),
            ),
            Aggregate(
                "page_view = union of page_views rows of the device",
                "persons_page_view",
                "union",
                ("device_class",),
                members="page_views",
                member_column="persons",
            ),
            WithinDay(_ACTIVE.label, "persons_page_view", "daily_active_users"),
            Printed("sum(page_view) <= events kept", "persons_page_view", "events"),
        ),
    ),
    "revenue": TableSpec(
        "revenue",
        "Purchases that day, by price band of the single purchase amount (JPY): distinct "
        "purchasing persons (a person with purchases in two bands counts in both) and the "
        "band's total amount rounded to the nearest 1,000 JPY. The total is suppressed "
        "together with its cell, and on its own (suppressed true, persons still published) "
        "when its largest purchasers dominate it: the dominance_n (default 2) largest "
        "per-person band sums make more than dominance_k (default 80 %) of it, or the rest is "
        "less than p_percent (default 10 %) of the largest (so the second largest purchaser "
        "cannot estimate the largest). Every band is suppressed when the day's distribution "
        "over bands is possibly homogeneous (see Attribute disclosure).",
        ("date", "price_band"),
        ("persons",),
        ("total_amount_jpy",),
        int_measures=("total_amount_jpy",),
        description_ja="当日に購入した人数と購入金額の合計（千円単位に丸め、1回の購入金額帯別）。",
        magnitudes=(("total_amount_jpy", "sum"),),
        relations=(_ACTIVE, Printed("sum(persons) <= events kept", "persons", "events")),
        complements=False,
    ),
    "weekly_active_users": TableSpec(
        "weekly_active_users",
        "Distinct persons with at least one event in the ISO week (Monday to Sunday, JST), by "
        "prefecture, 5-year age band and gender; a person counts once, with the attributes of "
        "their latest active day of the week. Released by the run of the week's Sunday (date = "
        "that Sunday) once every day of the week is in the retained activity layer. A cell is "
        "also suppressed (as a complement) when, together with the week's published "
        "daily_active_users, it would narrow a suppressed daily cell (tokumei/stats/disclosure/cross_release.py).",
        ("date", "week", "prefecture", "age_band", "gender"),
        ("persons",),
        description_ja="週（月曜〜日曜、日本時間）に1回以上利用した人数（都道府県・5歳階級・性別別）。",
        relations=(
            Aggregate(
                "week <= sum(days of daily_active_users)",
                "persons",
                "covers",
                ("prefecture", "age_band", "gender"),
                members="daily_active_users",
                member_column="persons",
                over_days=True,
            ),
        ),
        release="weekly",
    ),
    "monthly_active_users": TableSpec(
        "monthly_active_users",
        "Distinct persons with at least one event in the calendar month (JST), by prefecture, "
        "5-year age band and gender; a person counts once, with the attributes of their latest "
        "active day of the month. Released by the run of the month's last day once every day "
        "of the month is in the retained activity layer; complementary suppression against the "
        "month's daily_active_users and weekly_active_users releases as for the weekly table.",
        ("date", "month", "prefecture", "age_band", "gender"),
        ("persons",),
        description_ja="月間（日本時間）に1回以上利用した人数（都道府県・5歳階級・性別別）。",
        relations=(
            Aggregate(
                "month <= sum(days of daily_active_users)",
                "persons",
                "covers",
                ("prefecture", "age_band", "gender"),
                members="daily_active_users",
                member_column="persons",
                over_days=True,
            ),
        ),
        release="monthly",
    ),
    "retention_cohorts": TableSpec(
        "retention_cohorts",
        "Retention of registered persons by signup month: cohort_persons = persons (allowed "
        "today) who signed up in the month; persons = those of them with at least one event in "
        "days 7w to 7w+6 after their own signup date (w = weeks_since_signup, 00 to 11). Only "
        "final cells appear (every member has passed week w) whose days are all in the "
        "retained activity layer, so a later release repeats a cell rather than revising it. "
        "Released monthly; each count is suppressed on its own under min_cell.",
        ("date", "signup_month", "weeks_since_signup"),
        ("cohort_persons", "persons"),
        description_ja="登録月別コホートの継続利用：登録人数と、登録からw週目に利用した人数。",
        relations=(
            Order("cohort_persons >= persons", ("cohort_persons", "persons")),
            Equal("cohort_persons equal on every week", "cohort_persons", ("signup_month",)),
        ),
        release="monthly",
    ),
    "measurement_trends": TableSpec(
        "measurement_trends",
        "Persons with scale measurements in the calendar month, by age band, gender, measure "
        "(weight or body_fat) and band of the person's monthly mean (mean of their daily "
        "means). Bands are bottom- and top-coded (weight <40 … 100+ kg, body fat <10 … 40+ %). "
        "Every age band × gender × measure × band is a row. A (month, age band, gender) group "
        "is suppressed whole, both measures, when the band distribution of either measure is "
        "possibly homogeneous (see Attribute disclosure); both measures go because weight and "
        "body-fat bands partition the same persons.",
        ("date", "month", "age_band", "gender", "measure", "band"),
        ("persons",),
        description_ja="月間に体組成計で測定した人数（5歳階級・性別・測定項目・月平均値の階級別）。",
        relations=(
            SamePersons(
                "weight bands and body-fat bands: same persons",
                "persons",
                ("month", "age_band", "gender"),
                "measure",
                "band",
            ),
        ),
        release="monthly",
    ),
    "monthly_revenue": TableSpec(
        "monthly_revenue",
        "Purchases in the calendar month, by price band of the single purchase amount (JPY): "
        "distinct purchasing persons and the band's total amount rounded to 1,000 JPY. The "
        "total is suppressed with its cell, and also whenever a daily revenue release of the "
        "month suppressed that band (the month is the sum of its days, so publishing it would "
        "give a suppressed day back by subtraction), and when its largest purchasers dominate "
        "it (the rules of revenue, on per-person amounts of the month); then suppressed is "
        "true while persons is still published. Every band is suppressed when the month's "
        "distribution over bands is possibly homogeneous (see Attribute disclosure).",
        ("date", "month", "price_band"),
        ("persons",),
        ("total_amount_jpy",),
        int_measures=("total_amount_jpy",),
        description_ja="月間に購入した人数と購入金額の合計（千円単位に丸め、1回の購入金額帯別）。",
        magnitudes=(("total_amount_jpy", "sum"),),
        relations=(
            Aggregate(
                "month persons <= sum(days of revenue)",
                "persons",
                "covers",
                ("price_band",),
                members="revenue",
                member_column="persons",
                over_days=True,
            ),
            Aggregate(
                "month amount <= sum(days of revenue)",
                "total_amount_jpy",
                "covers",
                ("price_band",),
                members="revenue",
                member_column="total_amount_jpy",
                over_days=True,
            ),
        ),
        release="monthly",
    ),
}

#: One-line descriptions of every published column, (Japanese, English). The items notice and
#: the data dictionary both read this; a test checks every column of every table has one.
COLUMN_DOCS: dict[str, tuple[str, str]] = {
    "date": ("集計対象日（日本時間）", "reference date (JST)"),
    "prefecture": (
        "居住都道府県（登録住所の都道府県、不明は「unknown」）",
        "prefecture of residence (from the registered address; unknown if not known)",
    ),
    "age_band": (
        "集計対象日時点の年齢の5歳階級（90歳以上は「90+」）",
        "5-year age band on the reference date (90+ top-coded)",
    ),
    "gender": ("性別（不明は「unknown」）", "gender (unknown if not known)"),
    "url_template": (
        "閲覧ページのパステンプレート（ID部分は「:id」、クエリ削除、少数および要配慮個人情報を"
        "示すものは「other」）",
        "page path template (ids → :id, query dropped; templates of fewer than k persons "
        "and special-care templates (要配慮個人情報: clinic, disease, pregnancy, creed, ...; "
        "policy special_care_values) → other)",
    ),
    "device_class": (
        "端末区分（ユーザーエージェントから判定）",
        "device class (derived from the user agent)",
    ),
    "os_family": (
        "OSの系統（ユーザーエージェントから判定、主要なもの以外は「other」）",
        "OS family (from the user agent; families outside a fixed list → other)",
    ),
    "duration_band": (
        "セッションの滞在時間帯（最初と最後のイベントの間隔、「all」は全体）",
        "session duration band (first to last event; 'all' = every session)",
    ),
    "kind": ("種別（search＝検索、inquiry＝問い合わせ）", "kind: search or inquiry"),
    "category": (
        "話題カテゴリ（秘匿処理後の本文からキーワードで判定、本文は含まない）",
        "topic category (keyword rules on the scrubbed text; the text is not published)",
    ),
    "price_band": ("1回の購入金額の階級（円）", "price band of one purchase (JPY)"),
    "persons": ("該当する人数（重複を除いた人数）", "number of distinct persons in the cell"),
    "sessions": (
        "セッション数（人数ではない。人数が秘匿されると空欄）",
        "number of sessions (not persons; empty when the cell is suppressed)",
    ),
    "persons_page_view": ("ページを閲覧した人数", "distinct persons with a page view"),
    "persons_signup": (
        "ページを閲覧し、会員登録もした人数",
        "distinct persons with a page view and a signup",
    ),
    "persons_purchase": (
        "ページを閲覧し、会員登録と購入もした人数",
        "distinct persons with a page view, a signup and a purchase",
    ),
    "total_amount_jpy": (
        "購入金額の合計（円、千円単位に丸め、少数の購入者が大半を占める場合は空欄）",
        "total purchase amount (JPY, rounded to 1,000; empty when a few purchasers dominate it)",
    ),
    "weight_mean_kg": (
        "体重の平均値（kg、1人1日1値、当日の測定者全体の分位点で外れ値を丸めた値の平均）",
        "mean weight (kg, one daily mean per person, winsorized at the day's population bounds)",
    ),
    "weight_median_kg": (
        "体重の中央値（kg、中央の3値（偶数なら4値）の平均、一定人数以上のセルのみ）",
        "median weight (kg): mean of the central 3 (4 for an even count) winsorized daily "
        "means; only for cells of at least median_min_persons persons",
    ),
    "week": ("ISO週（例：2026-W48、月曜〜日曜）", "ISO week (e.g. 2026-W48, Monday to Sunday)"),
    "month": ("集計対象月（日本時間、YYYY-MM）", "calendar month (JST, YYYY-MM)"),
    "signup_month": ("会員登録月（日本時間、YYYY-MM）", "signup month (JST, YYYY-MM)"),
    "weeks_since_signup": (
        "登録日からの経過週（00＝登録週）",
        "weeks since the person's own signup date (00 = signup week)",
    ),
    "cohort_persons": (
        "その月に会員登録した人数",
        "distinct persons who signed up in the month",
    ),
    "measure": (
        "測定項目（weight＝体重、body_fat＝体脂肪率）",
        "measure: weight or body_fat",
    ),
    "band": (
        "月平均値の階級（体重kg・体脂肪率%、上下端はまとめる）",
        "band of the monthly mean (kg or %, top- and bottom-coded)",
    ),
    "suppressed": (
        "秘匿フラグ（true の場合、その行の人数・数値の一部または全部が空欄）",
        "suppression flag (true when a count or measure of the row is hidden; hidden values "
        "are empty)",
    ),
}


def suppress_small_cells(
    table: pl.LazyFrame, count: str, min_cell: int, measures: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """Null the count and measures of cells under ``min_cell``; add a ``suppressed`` flag.

    Example:
        >>> import polars as pl
        >>> t = pl.LazyFrame({"g": ["a", "b"], "persons": [12, 3]})
        >>> suppress_small_cells(t, "persons", 10).collect()["persons"].to_list()
        [12, None]
    """
    small = pl.col(count) < min_cell
    return table.with_columns(
        *[pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in (count, *measures)],
        small.alias("suppressed"),
    )


# ---------------------------------------------------------------------------------------------
# Map → reduce. Work is partitioned by a hash of the person key, so every person lives in exactly
# one partition: per-partition counts of distinct persons add up *exactly* to the global count.
# The map side returns small histograms; the reduce side sums them and suppresses. The output is
# therefore identical for any number of partitions (tested).


def _finish(
    table: pl.LazyFrame, day: str, dims: tuple[str, ...], measures: tuple[str, ...], min_cell: int
) -> pl.LazyFrame:
    cols = ("date", *dims, "persons", *measures)
    out = table.with_columns(pl.lit(day).str.to_date().alias("date")).select(cols).sort(dims)
    return suppress_small_cells(out, "persons", min_cell, measures)


def dau_map(events: pl.LazyFrame, persons: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: prefecture × age_band × gender → distinct active persons."""
    # compact keys (:func:`_compact_key`): unique and join on 16-byte integers, not 64-hex
    key = _compact_key(pl.col(PERSON))
    active = events.select(key).unique()
    demo = active.join(persons.with_columns(key), on=PERSON, how="left").with_columns(
        *[pl.col(c).fill_null("unknown") for c in ("prefecture", "age_band", "gender")]
    )
    return demo.group_by("prefecture", "age_band", "gender").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons")
    )


def on_grid(table: pl.LazyFrame, grid: pl.DataFrame | None, count: str = "persons") -> pl.LazyFrame:
    """Add every cell of a public ``grid`` that the table lacks, with count 0.

    Why: without it, a suppressed row says "between 1 and min_cell - 1 persons", i.e. that
    somebody with that combination exists, while a missing row says "nobody". With the grid,
    zero cells are suppressed like small ones, so a suppressed cell no longer discloses
    existence. Observed cells outside the grid are kept (nothing is dropped).

    Example:
        >>> import polars as pl
        >>> t = pl.LazyFrame({"g": ["a"], "persons": [12]})
        >>> on_grid(t, pl.DataFrame({"g": ["a", "b"]})).sort("g").collect()["persons"].to_list()
        [12, 0]
    """
    if grid is None:
        return table
    dims = grid.columns
    return (
        grid.lazy()
        .join(table, on=dims, how="full", coalesce=True)
        .with_columns(pl.col(count).fill_null(0))
    )


def dau_reduce(
    hists: pl.LazyFrame, day: str, min_cell: int, grid: pl.DataFrame | None = None
) -> pl.LazyFrame:
    """Sum partition histograms on the public ``grid`` (``tokumei.stats.grids``; default: the
    shipped policy's); suppress under ``min_cell``.

    A value outside the grid folds to ``unknown`` before the sum (each person is in one cell,
    so the sum stays a count of distinct persons); every grid cell is published.
    """
    from tokumei.stats import grids

    dims = ("prefecture", "age_band", "gender")
    g = grid if grid is not None else grids.grid("daily_active_users")
    folded = grids.fold_to_unknown(hists, g, dims)
    summed = folded.group_by(dims).agg(pl.col("persons").sum())
    table = grids.complete(summed, g, "daily_active_users", {"persons": 0})
    return _finish(table, day, dims, (), min_cell)


def page_view_pairs(events: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: distinct (person, url_template, device_class) of page views; the person
    as its compact key (:func:`_compact_key`), which is all that its readers count."""
    return (
        events.filter(pl.col("event") == "page_view")
        .select(
            _compact_key(pl.col(PERSON)),
            pl.col("url_template").fill_null("unknown"),
            pl.col("device_class").fill_null("unknown"),
        )
        .unique()
    )


def template_persons(pairs: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: url_template → distinct persons (to find rare templates globally)."""
    return pairs.group_by("url_template").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons")
    )


def rare_templates(
    template_hists: pl.LazyFrame, k: int, special_care: SpecialCare = DEFAULT_SPECIAL_CARE
) -> pl.LazyFrame:
    """Templates to fold into ``other``: seen by fewer than ``k`` persons in the whole day
    (summed over partitions), or revealing special care (要配慮個人情報) and not declared public.

    The same rule (:func:`tokumei.anonymize.folding.values_to_fold`) folds the record-level
    release ``anonymized/page_views``, there on the records actually released.
    """
    return values_to_fold(template_hists, "url_template", k, special_care)


def page_views_map(pairs: pl.LazyFrame, rare: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: fold rare templates into ``other``, then count distinct persons per cell.

    Folding happens before counting, so a person who saw two rare pages counts once in
    ``other``; this needs the global rare set, hence the two-pass map.
    """
    folded = fold(pairs, "url_template", rare)
    return folded.group_by("url_template", "device_class").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons")
    )


def page_views_reduce(
    hists: pl.LazyFrame, day: str, min_cell: int, templates: list[str] | None = None
) -> pl.LazyFrame:
    """Sum partition histograms on the grid published templates × device classes; suppress.

    ``templates``: the published template set (default: the templates of the folded
    histograms, i.e. those used by at least k persons, plus ``other``).
    """
    from tokumei.stats import grids

    dims = ("url_template", "device_class")
    table = hists.group_by(dims).agg(pl.col("persons").sum()).collect()
    if templates is None:
        templates = table["url_template"].unique().to_list()
    g = grids.grid("page_views", templates=templates)
    return _finish(grids.complete(table, g, "page_views", {"persons": 0}), day, dims, (), min_cell)


def measurements_map(measurements: pl.LazyFrame, persons: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: each person's daily mean weight with their age band and gender.

    Averaging per person first bounds each person's contribution to one value: a person who
    weighs in five times a day must not pull a cell's mean five times as hard. One row per
    person is small enough to reduce centrally (medians do not add up across partitions).
    """
    return (
        measurements.filter(pl.col("weight_kg").is_not_null())
        .group_by(PERSON)
        .agg(pl.col("weight_kg").mean())
        .join(persons, on=PERSON, how="left")
        .select(
            PERSON,
            pl.col("age_band").fill_null("unknown"),
            pl.col("gender").fill_null("unknown"),
            "weight_kg",
        )
    )


def measurements_reduce(
    per_person: pl.LazyFrame,
    day: str,
    min_cell: int,
    grid: pl.DataFrame | None = None,
    rules: DisclosurePolicy | None = None,
) -> pl.LazyFrame:
    """age_band × gender → persons, weight mean and median (kg, 1 decimal); suppress.

    On the public grid (``tokumei.stats.grids``: every age band × gender, every day). Magnitude
    rules (``tokumei.stats.disclosure.magnitude``): each person's daily mean is winsorized at
    the day's population bounds before aggregation; the median is the mean of the central
    values and needs ``median_min_persons``; both measures are null where the (n, k) or p %
    rule finds the cell's sum dominated. ``suppressed`` is true when anything is hidden.
    """
    from tokumei.stats import grids
    from tokumei.stats.disclosure import magnitude as mag

    rules = rules or DisclosurePolicy()
    dims = ("age_band", "gender")
    measures = ("weight_mean_kg", "weight_median_kg")
    g = grid if grid is not None else grids.grid("measurements_summary")
    w = pl.col("_w")
    clipped = grids.fold_to_unknown(per_person, g, dims).with_columns(
        mag.winsorize(pl.col("weight_kg"), rules).alias("_w")
    )
    table = clipped.group_by(dims).agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"),
        w.mean().alias("_mean"),
        w.sum().alias("_sum"),
        mag.sorted_values(w).alias("_values"),
        mag.top_contributions(w, mag.top_size(rules)).alias("_top"),
    )
    dominated = mag.dominated(pl.col("_sum"), pl.col("_top"), rules)
    table = grids.complete(table, g, "measurements_summary", {"persons": 0}).with_columns(
        pl.when(dominated).then(None).otherwise(pl.col("_mean").round(1)).alias(measures[0]),
        pl.when(dominated)
        .then(None)
        .otherwise(mag.central_median(pl.col("_values"), rules).round(1))
        .alias(measures[1]),
    )
    out = _finish(table, day, dims, measures, min_cell)
    hidden = pl.any_horizontal(pl.col(m).is_null() for m in measures)
    return out.with_columns((pl.col("suppressed") | hidden).alias("suppressed"))


def _total_amount() -> pl.Expr:
    """``total_amount_jpy``: the exact ``amount_jpy`` sum rounded half up to 1,000 JPY."""
    return round_expr(pl.col("amount_jpy"), 1000).cast(pl.Int64).alias("total_amount_jpy")


def price_band(amount: pl.Expr) -> pl.Expr:
    """Price band label (:data:`PRICE_BANDS`) of a single purchase amount (JPY)."""
    return band(amount, PRICE_BANDS)


def fold_os(os_family: pl.Expr) -> pl.Expr:
    """OS family → itself if in :data:`OS_FAMILIES`, ``unknown`` if null, else ``other``."""
    return (
        pl.when(os_family.is_null())
        .then(pl.lit("unknown"))
        .when(os_family.is_in(OS_FAMILIES))
        .then(os_family)
        .otherwise(pl.lit("other"))
    )


def suppress_where(
    table: pl.LazyFrame | pl.DataFrame, mask: pl.Expr | pl.Series, columns: tuple[str, ...]
) -> pl.LazyFrame | pl.DataFrame:
    """Null ``columns`` where ``mask`` holds; set the ``suppressed`` flag (OR-ed into an
    existing one, so a row hidden for one reason stays hidden when another is added).

    Example:
        >>> import polars as pl
        >>> t = pl.DataFrame({"persons": [12, 15], "suppressed": [True, False]})
        >>> suppress_where(t, pl.Series([False, True]), ("persons",))["suppressed"].to_list()
        [True, True]
    """
    hide = pl.lit(mask) if isinstance(mask, pl.Series) else mask
    names = table.collect_schema().names() if isinstance(table, pl.LazyFrame) else table.columns
    flag = pl.col("suppressed") | hide if "suppressed" in names else hide
    return table.with_columns(
        *[pl.when(hide).then(None).otherwise(pl.col(c)).alias(c) for c in columns],
        flag.alias("suppressed"),
    )


def _dated(
    table: pl.LazyFrame, day: str, spec: TableSpec, keep: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """Add ``date``; select the spec's columns (plus ``keep``) in order; sort by the dims."""
    cols = [c for c in spec.columns if c != "suppressed"] + list(keep)
    dims = [d for d in spec.dims if d != "date"]
    return table.with_columns(pl.lit(day).str.to_date().alias("date")).select(cols).sort(dims)


def _compact_key(col: pl.Expr) -> pl.Expr:
    """A grouping key as one 128-bit integer: a 64-hex pseudonym's first 64 bits (anything
    else, not a pseudonym: a seeded 64-bit hash), then a second seeded 64-bit hash of the value.

    Why: a group-by over millions of (person, session) pairs of 64-character strings held
    3.9 GiB on the 10M-event day, and decoding the hex to 32 bytes (3.3 GiB) cost half of the
    sessions map's CPU. One integer per key takes 16 bytes; as a ``UInt128`` rather than a
    struct of two ``UInt64`` the group-by and the distinct persons cost less again (the
    sessions map 18.3-19.1 -> 12.1-13.1 CPU-s, bench/results/scale.md, session 13). The low
    half is a hash rather than the next 16 hex digits: parsing hex costs ~5x a hash, and
    with both halves parsed the key cost the sessions map more than its group-by (session 16).
    Two pseudonyms share a key only if their first 64 HMAC bits *and* their 64-bit hashes are
    equal: among 10 million keys, a probability near 1e-25.

    >>> df = pl.DataFrame({"k": ["f" + "0" * 63, "0" * 64, "not a pseudonym", "0" * 64]})
    >>> df.select(_compact_key(pl.col("k"))).n_unique()
    3
    """
    hi = col.str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64, strict=False)
    hi = pl.when(hi.is_null()).then(col.hash(1)).otherwise(hi).cast(pl.UInt128)
    return (hi * (1 << 64) + col.hash(2).cast(pl.UInt128)).alias(col.meta.output_name())


def session_events(events: pl.LazyFrame, *columns: pl.Expr) -> pl.LazyFrame:
    """The events that belong to a session (session id and time known): compact person and
    session keys (``_compact_key``), ``ts`` and ``columns``, ready to group by session."""
    return events.filter(pl.col("session_id").is_not_null() & pl.col("ts").is_not_null()).select(
        _compact_key(pl.col(PERSON)), _compact_key(pl.col("session_id")), "ts", *columns
    )


#: Room for the rank of a (device class, OS) pair below the microseconds of a session key.
_PAIR_CODES = 1 << 16


def _name_of(rank: pl.Expr, names: list[str]) -> pl.Expr:
    """The name at ``rank`` in ``names`` (per batch: it streams)."""
    lookup = dict(enumerate(names))
    return per_batch(rank, lambda r: r.replace_strict(lookup, return_dtype=pl.String))


def sessions_map(events: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: device_class × os_family × duration_band → persons and sessions.

    Needs the work-layer columns ``session_id`` (pseudonym) and ``ts`` (exact time) and
    ``os_family``; none of them is published. A session is a (person, session_id) pair, so it
    lives in one partition and per-partition counts add up exactly.
    """
    # A session's device class and OS are those of its first event by (ts, device_class,
    # os_family), deterministic for any partitioning. That event is the minimum of one integer
    # key per event: the time in microseconds, then the rank of the folded (device class, OS)
    # pair in the sorted product of their closed vocabularies, so ``min`` holds least
    # (``sort_by(...).first()`` peaked at 3.91 GiB on the 10M-event day,
    # bench/sessions_first_event.py). Before, the key was the time as 20 digits and the two
    # names joined in a string: 15 of stats_map's 26 CPU-s on that day.
    # what fold_device and fold_os can give: the closed vocabularies of DIM_VALUES
    devices, systems = sorted(DIM_VALUES["device_class"]), sorted(DIM_VALUES["os_family"])
    # an Enum's physical value is the rank in the order given (a cast streams; replace_strict
    # would not: tests/test_streaming_plans.py)
    pair = fold_device(pl.col("device_class")).cast(pl.Enum(devices)).to_physical().cast(
        pl.Int64
    ) * len(systems) + fold_os(pl.col("os_family")).cast(pl.Enum(systems)).to_physical().cast(
        pl.Int64
    )
    key = pl.col("ts").dt.epoch("us").cast(pl.Int128) * _PAIR_CODES + pair
    first = pl.col("_first") - (pl.col("_first") // _PAIR_CODES) * _PAIR_CODES  # the pair's rank
    sess = (
        session_events(events, key.alias("_first"))
        .group_by(PERSON, "session_id")
        .agg(
            (pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds().alias("_secs"),
            pl.col("_first").min(),
        )
        .select(
            PERSON,
            _name_of((first // len(systems)).cast(pl.Int64), devices).alias("device_class"),
            _name_of((first % len(systems)).cast(pl.Int64), systems).alias("os_family"),
            band(pl.col("_secs"), DURATION_BANDS).alias("duration_band"),
        )
    )
    return session_histogram(sess)


def session_histogram(sess: pl.LazyFrame) -> pl.LazyFrame:
    """One row per session (``person``, ``device_class``, ``os_family``, ``duration_band``) ->
    persons and sessions per device class x OS x band, plus the ``all`` band of each class x OS.
    """
    counts = (
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"),
        pl.len().cast(pl.Int64).alias("sessions"),
    )
    cols = ("device_class", "os_family", "duration_band", "persons", "sessions")
    by_band = sess.group_by("device_class", "os_family", "duration_band").agg(*counts)
    total = (
        sess.group_by("device_class", "os_family")
        .agg(*counts)
        .with_columns(pl.lit(ALL_DURATIONS).alias("duration_band"))
    )
    return pl.concat([by_band.select(cols), total.select(cols)])


#: Alternations between the two counts of ``sessions`` (see :func:`protect_sessions`).
_SESSIONS_MAX_ROUNDS = 10


def protect_sessions(table: pl.DataFrame, min_cell: int) -> pl.Series:
    """Row suppression mask of the summed sessions table (bands and 'all' rows, any order).

    Primary: rows under ``min_cell`` persons. Secondary: ``tokumei.stats.disclosure.protect_table``,
    so that no suppressed row can be recovered from its 'all' row and the published bands. The
    'all' row is the margin over ``duration_band`` of each device_class × os_family:

    - ``sessions`` is additive (sessions are partitioned by band): ``all = sum(bands)``;
    - ``persons`` is not (a person can have sessions in several bands): protected with
      ``additive=False`` (``all <= sum(bands)``, ``band <= all``).

    Both counts are nulled together (one ``suppressed`` flag per row), so the pattern must hold
    for both: the session count is protected with the persons-primary rows forced, then the
    person count with that pattern forced; if persons needs more complements, sessions is redone
    with them forced, until neither adds a cell (the pattern only grows). Fail closed: raises
    ``UnsafeTableError`` when the LP attacker can narrow any suppressed cell of either count
    below the protection range. Not modelled: ``sessions >= persons`` per row (the attacker is
    run per count).
    """
    from tokumei.stats.disclosure import protect_table

    group = ["device_class", "os_family"]
    dims = [*group, "duration_band"]
    is_all = pl.col("duration_band") == ALL_DURATIONS
    cells = table.filter(~is_all).select(*dims, "persons", "sessions")
    margins: dict[tuple[str, ...], pl.DataFrame] = {
        tuple(group): table.filter(is_all).select(*group, "persons", "sessions")
    }
    # Pattern rows name a margin cell with null in the aggregated dim.
    band_key = pl.when(is_all).then(None).otherwise(pl.col("duration_band")).alias("duration_band")
    force = table.filter(pl.col("persons") < min_cell).select(*group, band_key)
    for _ in range(_SESSIONS_MAX_ROUNDS):
        kw = {"margins": margins, "threshold": min_cell}
        by_sessions = protect_table(cells, dims, "sessions", force_suppress=force, **kw)
        pattern = by_sessions.pattern().unique()
        by_persons = protect_table(
            cells, dims, "persons", additive=False, force_suppress=pattern, **kw
        )
        both = by_persons.pattern().unique()
        if both.height == pattern.height:
            break
        force = both
    else:  # pragma: no cover - the pattern only grows, so this needs a huge table
        raise RuntimeError("sessions: suppression pattern did not converge")
    by_sessions.raise_if_unsafe()
    by_persons.raise_if_unsafe()
    marked = both.with_columns(pl.lit(True).alias("_mask"))
    keyed = table.select(*group, band_key)
    mask = keyed.join(marked, on=dims, how="left", nulls_equal=True, maintain_order="left")
    return mask["_mask"].fill_null(False)


def sessions_reduce(hists: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """Sum partition histograms; primary + LP-verified complementary suppression.

    See :func:`protect_sessions`. Raises ``tokumei.stats.disclosure.UnsafeTableError`` (fail closed)
    when the attacker could still narrow a suppressed cell.
    """
    spec = TABLES["sessions"]
    dims = ("device_class", "os_family", "duration_band")
    table = hists.group_by(dims).agg(pl.col("persons").sum(), pl.col("sessions").sum())
    # every device class × OS × band of the public grid, zero rows included
    zero = {"persons": 0, "sessions": 0}
    table = complete(table, grid("sessions"), "sessions", zero).collect()
    table = table.with_columns(protect_sessions(table, min_cell).alias("_mask"))
    out = _dated(table.lazy(), day, spec, keep=("_mask",))
    return suppress_where(out, pl.col("_mask"), spec.counts).drop("_mask")


def search_volume_map(
    events: pl.LazyFrame, special_care: SpecialCare = DEFAULT_SPECIAL_CARE
) -> pl.LazyFrame:
    """One partition: kind × category → distinct persons (category from the scrubbed text;
    a text mentioning special care is ``other``, see :func:`categorize`)."""
    text = (
        pl.when(pl.col("event") == "search")
        .then(pl.col("search_query"))
        .otherwise(pl.col("inquiry_text"))
    )
    # categorize is a function of the text: run once per distinct text (a day's partition
    # has ~1.3M search and inquiry rows and a few tens of thousands of distinct texts)
    rows = (
        events.filter(pl.col("event").is_in(SEARCH_KINDS))
        .select(_compact_key(pl.col(PERSON)), pl.col("event").alias("kind"), text.alias("_text"))
        .unique()
    )
    texts = rows.select("_text").unique().with_columns(categorize(pl.col("_text"), special_care))
    return (
        rows.join(texts, on="_text", how="left", nulls_equal=True)
        .group_by("kind", "category")
        .agg(pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"))
    )


def search_volume_reduce(hists: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """Sum partition histograms; suppress."""
    dims = ("kind", "category")
    table = hists.group_by(dims).agg(pl.col("persons").sum())
    table = complete(table, grid("search_volume"), "search_volume", {"persons": 0})
    return _finish(table, day, dims, (), min_cell)


def funnel_map(events: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: device_class → persons with page_view, + signup, + purchase."""
    ev = pl.col("event")
    flags = (
        events.filter(ev.is_in(("page_view", "signup", "purchase")))
        .select(  # persons are only counted: their compact key (:func:`_compact_key`) will do
            _compact_key(pl.col(PERSON)),
            fold_device(pl.col("device_class")).alias("device_class"),
            "event",
        )
        .group_by(PERSON, "device_class")
        .agg(
            (ev == "page_view").any().alias("_pv"),
            (ev == "signup").any().alias("_signup"),
            (ev == "purchase").any().alias("_purchase"),
        )
        .filter(pl.col("_pv"))
    )
    return flags.group_by("device_class").agg(
        pl.len().cast(pl.Int64).alias("persons_page_view"),
        pl.col("_signup").sum().cast(pl.Int64).alias("persons_signup"),
        (pl.col("_signup") & pl.col("_purchase")).sum().cast(pl.Int64).alias("persons_purchase"),
    )


def funnel_reduce(hists: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """Sum partition histograms; suppress each step on its own (``suppressed`` = any step)."""
    spec = TABLES["funnel"]
    table = hists.group_by("device_class").agg(pl.col(c).sum() for c in spec.counts)
    table = complete(table, grid("funnel"), "funnel", dict.fromkeys(spec.counts, 0))
    out = _dated(table, day, spec)
    small = [pl.col(c) < min_cell for c in spec.counts]
    return out.with_columns(
        *[
            pl.when(sm).then(None).otherwise(pl.col(c)).alias(c)
            for c, sm in zip(spec.counts, small, strict=True)
        ],
        pl.any_horizontal(small).alias("suppressed"),
    )


#: Largest per-person contributions a cell keeps for the dominance rules (the policy's
#: ``dominance_n`` is at most this).
MAX_TOP_CONTRIBUTIONS = 5


def revenue_map(events: pl.LazyFrame) -> pl.LazyFrame:
    """One partition: each purchasing person's amount sum (JPY) per price band.

    Per person, not per band: the dominance rules need each cell's largest per-person
    contributions, and a top-n inside a streaming aggregate falls back to the in-memory engine
    (tests/test_streaming_plans.py). One row per purchasing person and band is small enough to
    reduce centrally, as the measurements map does; every person is in one partition. Each row
    also carries ``persons`` = 1, so summing ``persons`` and ``amount_jpy`` by band over all
    partitions gives the band's distinct persons and total, as from a per-band histogram.
    """
    return (
        events.filter((pl.col("event") == "purchase") & pl.col("amount_jpy").is_not_null())
        .with_columns(price_band(pl.col("amount_jpy")).alias("price_band"))
        .group_by(PERSON, "price_band")
        .agg(pl.col("amount_jpy").cast(pl.Int64).sum())
        .with_columns(pl.lit(1, pl.Int64).alias("persons"))
    )


def hide_dominated_total(table: pl.LazyFrame, rules: DisclosurePolicy) -> pl.LazyFrame:
    """Null ``amount_jpy`` where its per-person contributions (``_top``) dominate it (the (n, k)
    and p % rules of ``tokumei.stats.disclosure.magnitude``); the count stays."""
    from tokumei.stats.disclosure.magnitude import dominated

    if rules.dominance_n > MAX_TOP_CONTRIBUTIONS:  # pragma: no cover - the policy caps it
        raise ValueError(f"dominance_n above {MAX_TOP_CONTRIBUTIONS} is not supported")
    hide = dominated(pl.col("amount_jpy").cast(pl.Float64), pl.col("_top"), rules)
    return table.with_columns(
        pl.when(hide).then(None).otherwise(pl.col("amount_jpy")).alias("amount_jpy")
    )


def revenue_reduce(
    hists: pl.LazyFrame, day: str, min_cell: int, rules: DisclosurePolicy | None = None
) -> pl.LazyFrame:
    """Per-person band sums of every partition → persons, total and largest contributions per
    band on the price-band grid; hide a dominated total; round the total to 1,000 JPY (half up);
    suppress both under ``min_cell``."""
    from tokumei.stats.disclosure.magnitude import top_contributions

    table = hists.group_by("price_band").agg(
        pl.col("persons").sum(),
        pl.col("amount_jpy").sum(),
        top_contributions(pl.col("amount_jpy"), MAX_TOP_CONTRIBUTIONS).alias("_top"),
    )
    table = complete(table, grid("revenue"), "revenue", {"persons": 0, "amount_jpy": 0})
    table = hide_dominated_total(table, rules or DisclosurePolicy()).with_columns(_total_amount())
    out = _finish(table, day, ("price_band",), ("total_amount_jpy",), min_cell)
    hidden = pl.col("total_amount_jpy").is_null()
    return out.with_columns((pl.col("suppressed") | hidden).alias("suppressed"))


def period_reduce(
    table: pl.LazyFrame | pl.DataFrame, day: str, name: str, min_cell: int
) -> pl.DataFrame:
    """A period table (``tokumei.stats.periods``) → its published form, primary suppression.

    Every count is suppressed on its own under ``min_cell`` (in ``retention_cohorts`` a
    suppressed ``cohort_persons`` forces its ``persons`` too, since ``persons <= cohort``);
    measures go with the row's ``persons``. ``suppressed`` is true when anything in the row
    is hidden. Amounts are rounded to 1,000 JPY (half up).
    """
    spec = TABLES[name]
    lf = table.lazy()
    if "amount_jpy" in lf.collect_schema():
        lf = lf.with_columns(_total_amount())
    out = _dated(lf, day, spec)
    small = {c: pl.col(c) < min_cell for c in spec.counts}
    if "cohort_persons" in small:
        small["persons"] = small["persons"] | small["cohort_persons"]
    row_small = small["persons"]
    out = out.with_columns(
        *[pl.when(sm).then(None).otherwise(pl.col(c)).alias(c) for c, sm in small.items()],
        *[pl.when(row_small).then(None).otherwise(pl.col(m)).alias(m) for m in spec.measures],
    )
    hidden = [pl.col(c).is_null() for c in (*spec.counts, *spec.measures)]
    return out.with_columns(pl.any_horizontal(hidden).alias("suppressed")).collect()


# ---------------------------------------------------------------------------------------------
# Single-frame conveniences (one partition): the same map and reduce, composed.


def daily_active_users(
    events: pl.LazyFrame, persons: pl.LazyFrame, day: str, min_cell: int
) -> pl.LazyFrame:
    """date × prefecture × age_band × gender → distinct persons."""
    return dau_reduce(dau_map(events, persons), day, min_cell)


def page_views(
    events: pl.LazyFrame,
    day: str,
    k: int,
    min_cell: int,
    special_care: SpecialCare = DEFAULT_SPECIAL_CARE,
) -> pl.LazyFrame:
    """date × url_template × device_class → distinct persons who viewed it.

    Templates seen by fewer than ``k`` persons, and special-care templates, are folded into
    ``other`` first (docs/architecture.md §4 "rare categories"), so a one-off URL never names itself even as
    a suppressed row.
    """
    pairs = page_view_pairs(events)
    rare = rare_templates(template_persons(pairs), k, special_care)
    return page_views_reduce(page_views_map(pairs, rare), day, min_cell)


def measurements_summary(
    measurements: pl.LazyFrame, persons: pl.LazyFrame, day: str, min_cell: int
) -> pl.LazyFrame:
    """date × age_band × gender → persons, weight mean and median (per-person daily means)."""
    return measurements_reduce(measurements_map(measurements, persons), day, min_cell)


def sessions(events: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """date × device_class × os_family × duration_band → persons, sessions."""
    return sessions_reduce(sessions_map(events), day, min_cell)


def search_volume(events: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """date × kind × category → distinct persons."""
    return search_volume_reduce(search_volume_map(events), day, min_cell)


def funnel(events: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """date × device_class → persons with page_view, + signup, + purchase."""
    return funnel_reduce(funnel_map(events), day, min_cell)


def revenue(events: pl.LazyFrame, day: str, min_cell: int) -> pl.LazyFrame:
    """date × price_band → purchasing persons, total amount (1,000 JPY)."""
    return revenue_reduce(revenue_map(events), day, min_cell)


# ---------------------------------------------------------------------------------------------
# Data dictionary (docs/data_dictionary.md is this text; a test keeps them equal).

DICTIONARY_HEADER = """<!-- Generated from tokumei.stats.tables.TABLES by `uv run python scripts/gen_data_dictionary.py`.
     Do not edit by hand: tests/test_stats_tables.py fails when this file and the code differ. -->
"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def data_dictionary() -> str:
    """The data dictionary of every statistics table, as Markdown."""
    from tokumei.stats.categories import describe_markdown

    roles = {"date": "dimension", "suppressed": "flag"}
    lines = [
        DICTIONARY_HEADER,
        "# Data dictionary: statistics tables",
        "",
        "Every table is published as the Delta Lake table "
        "`published/delta/stats/<table>` (every row carries its `date`; "
        "docs/adr/0008-published-tables-delta-lake.md) and as a view of the same "
        "name in `published/catalog.duckdb`. Daily tables get the day's rows every day; weekly "
        "and monthly tables (computed from the retained pseudonymous activity layer, "
        "`tokumei/stats/periods.py`) get them on the last day of each complete week or month, "
        "and their `date` is that day.",
        "",
        "- Counts are counts of **distinct persons** unless the column says otherwise (a "
        "person is a registered user, or a logged-out cookie/device when no user is known).",
        "- A cell with fewer than `min_cell` persons (policy threshold, default 10) is "
        "suppressed: its counts and measures are null and `suppressed` is true.",
        "- **Public grids.** Every table has the same rows in every release of its kind: every "
        "combination of its dimensions' closed values (the hierarchies' age bands, genders "
        "and prefectures at the policy's levels, the device classes, OS families, bands, "
        "kinds and categories listed below, the URL templates used by at least k persons that "
        "day, the final cohort cells), decided before the data is read "
        "(`tokumei/stats/grids.py`). A zero cell is a row too, suppressed like a small one, "
        "so a row or a suppressed row says nothing about whether anybody has that combination. "
        "A value outside the grid never makes a row (it counts as `unknown`/`other`).",
        "- **Attribute disclosure.** Where a table spreads a group's persons over the bands of "
        "a sensitive measure (measurement_trends: weight and body fat per month × age band × "
        "gender; revenue and monthly_revenue: price bands of the day's and the month's "
        "purchasers; search_volume: "
        "topic categories of the day's searchers, and of its inquirers), a group whose "
        "distribution is possibly homogeneous in the published "
        "counts (fewer than `l_diversity`, default 2, published bands, or a band with more "
        "than `max_band_share`, default 90 %, of the published persons; a suppressed cell may "
        "be 0) is suppressed whole, and the run fails if any published group still is "
        "(`tokumei/stats/disclosure/diversity.py`).",
        "- **Magnitude measures** (means, medians, amount totals) are winsorized, checked for "
        "dominance and, for medians, averaged over the central values, as each measure's "
        "table says (`tokumei/stats/disclosure/magnitude.py`).",
        "- No table carries a person key, pseudonym, exact timestamp or free text.",
        "",
        "Tables: " + ", ".join(f"[`{n}`](#{n})" for n in TABLES) + ".",
        "",
    ]
    for name, spec in TABLES.items():
        lines += [f"## {name}", ""]
        if spec.description_ja:
            lines += [spec.description_ja, ""]
        lines += [spec.description, "", f"Released: {spec.release}.", ""]
        # the relations the release's disclosure model holds the table to (ADR 0001)
        labels = [r.label for r in spec.relations or ()] + [
            f"{other}: {r.label}"
            for other, o in TABLES.items()
            for r in o.relations or ()
            if name in (getattr(r, "members", None), getattr(r, "table", None))
        ]
        rels = "; ".join(f"`{label}`" for label in labels) or "none"
        lines += [f"Relations used by the disclosure audit: {rels}.", ""]
        lines += [
            "| column | role | type | description | 説明 |",
            "|---|---|---|---|---|",
        ]
        for col in spec.columns:
            role = roles.get(col) or (
                "dimension" if col in spec.dims else "count" if col in spec.counts else "measure"
            )
            ja, en = COLUMN_DOCS[col]
            if col in DIM_VALUES:
                en += "; values: " + ", ".join(f"`{v}`" for v in DIM_VALUES[col])
            lines.append(
                f"| `{col}` | {role} | {spec.dtype(col)} | {_md_cell(en)} | {_md_cell(ja)} |"
            )
        lines.append("")
        if "category" in spec.dims:
            lines += [
                "Category keyword rules (`tokumei/stats/categories.py`):",
                "",
                describe_markdown(),
                "",
            ]
    from tokumei.anonymize.records import describe_markdown as describe_records

    lines += [describe_records(), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
