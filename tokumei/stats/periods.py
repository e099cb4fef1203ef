"""Period tables: weekly and monthly statistics over a retained pseudonymous activity layer.

A daily run sees one day. Weekly and monthly active users, retention cohorts and monthly
measurement trends need the same person across days, so every successful run keeps a small
**activity layer** of its day (``<out>/retained/activity/date=D/``): one row per person and day
with the person's *pseudonym* (keyed HMAC, the same across days), generalized attributes (age
band, gender, prefecture), the signup date, whether the person was active, and the day's mean
weight and body fat; and ``retained/purchases`` (person, day, price band, amount). No direct
identifier, no raw timestamp, no free text. It is written by ``publish`` (so a failed run leaves
no day in it), read back by later runs, deleted by the retention DAG after its own retention
(``TOKUMEI_RETENTION_ACTIVITY_DAYS``), and every run drops from it the pseudonyms of persons who
are excluded *today* (withdrawn consent, deletion, ceasing), before any period table is built.

**Release rule (the cross-release mechanism, part 1).** Period tables are released for calendar
periods only, once the period is complete: the ISO week (Monday–Sunday, JST) by the run of its
Sunday, the month by the run of its last day. There are no "period to date" releases, so two
releases of a period table never overlap partially (the classic differencing attack on rolling
windows), and a period is released only when every one of its days is in the activity layer
(otherwise it is skipped with a reason in the manifest: a table missing days would be wrong, not
just late). A day published from an incomplete landing (``--allow-incomplete``, a *partial*
release, docs/landing.md) holds its periods back too; the run that later publishes the missing
or partial day complete releases the held-back period (once: a period released with one date's
release is not released again with another's, which would be a second release of the same
period). Cohort cells are published only once they are final (every person of the signup
month has passed that week), so a later release repeats them instead of revising them.

Parts 2 and 3 (period cells vs. the daily releases, and re-releases of the same table and date)
are in :mod:`tokumei.stats.disclosure.cross_release`.

Every function takes LazyFrames and returns a LazyFrame with the table's columns before
suppression (``tokumei.stats.tables`` suppresses and documents them).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from tokumei.infra.dated import DatedLayer
from tokumei.stats.bands import band

PERSON = "person"

#: Weeks since signup published by the cohort table (0 = the signup week).
COHORT_WEEKS = 12

#: Weight bands (kg, lower bound inclusive): bottom-coded below 40, top-coded at 100.
WEIGHT_BANDS: tuple[tuple[str, float], ...] = (
    ("<40", 0.0),
    ("40-49", 40.0),
    ("50-59", 50.0),
    ("60-69", 60.0),
    ("70-79", 70.0),
    ("80-89", 80.0),
    ("90-99", 90.0),
    ("100+", 100.0),
)
#: Body-fat bands (percent): bottom-coded below 10, top-coded at 40.
BODY_FAT_BANDS: tuple[tuple[str, float], ...] = (
    ("<10", 0.0),
    ("10-14", 10.0),
    ("15-19", 15.0),
    ("20-24", 20.0),
    ("25-29", 25.0),
    ("30-34", 30.0),
    ("35-39", 35.0),
    ("40+", 40.0),
)
MEASURES: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "weight": ("weight_kg", WEIGHT_BANDS),
    "body_fat": ("body_fat_pct", BODY_FAT_BANDS),
}

#: Schema of the retained activity layer (one row per person and day).
ACTIVITY_SCHEMA: dict[str, pl.DataType] = {
    PERSON: pl.String(),
    "date": pl.Date(),
    "active": pl.Boolean(),
    "prefecture": pl.String(),
    "age_band": pl.String(),
    "gender": pl.String(),
    "signup_date": pl.Date(),
    "weight_kg": pl.Float64(),
    "body_fat_pct": pl.Float64(),
}
#: Schema of the retained purchases layer (one row per person, day and price band).
PURCHASES_SCHEMA: dict[str, pl.DataType] = {
    PERSON: pl.String(),
    "date": pl.Date(),
    "price_band": pl.String(),
    "purchases": pl.Int64(),
    "amount_jpy": pl.Int64(),
}


# --------------------------------------------------------------------------------------------
# Periods


@dataclass(frozen=True)
class Period:
    """A calendar period: its label (``2026-W48`` / ``2026-11``) and its first and last day."""

    kind: str  # "week" or "month"
    label: str
    first: date
    last: date

    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def week_of(day: date) -> Period:
    """The ISO week (Monday–Sunday) containing ``day``.

    Example:
        >>> week_of(date(2026, 11, 29)).label
        '2026-W48'
    """
    year, week, weekday = day.isocalendar()
    first = day - timedelta(days=weekday - 1)
    return Period("week", f"{year}-W{week:02d}", first, first + timedelta(days=6))


def month_of(day: date) -> Period:
    """The calendar month containing ``day``."""
    last = calendar.monthrange(day.year, day.month)[1]
    return Period("month", f"{day:%Y-%m}", day.replace(day=1), date(day.year, day.month, last))


def periods_closing_on(day: date) -> list[Period]:
    """The periods whose last day is ``day`` (a Sunday closes a week, a month end a month)."""
    return [p for p in (week_of(day), month_of(day)) if p.last == day]


def candidate_periods(day: date) -> list[Period]:
    """The week and the month containing ``day``: the periods a run of ``day`` may release.

    A period closes on its last day; a run of an earlier day of it releases it only when that
    run completes a period held back before (docs/landing.md, "Weekly and monthly tables").
    """
    return [week_of(day), month_of(day)]


def missing_days(layer: DatedLayer, days: list[date], present: date) -> list[date]:
    """Days of ``days`` with no ``date=`` partition in ``layer`` (``present`` is this run's day)."""
    return [d for d in days if d != present and not layer.has(d)]


def scan_layer(
    layer: DatedLayer,
    days: list[date],
    current: pl.LazyFrame | None,
    present: date,
    schema: dict[str, pl.DataType],
) -> pl.LazyFrame:
    """The retained partitions of ``days`` plus this run's own (not yet retained) rows."""
    frames = [layer.scan(d, schema) for d in days if d != present and layer.has(d)]
    if current is not None and present in days:
        frames.append(current.select(list(schema)).cast(schema))  # type: ignore[arg-type]
    if not frames:
        return pl.LazyFrame(schema=schema)
    return pl.concat(frames, how="vertical")


def without_excluded(frame: pl.LazyFrame, excluded: pl.LazyFrame) -> pl.LazyFrame:
    """Drop every row of a person excluded today (fail closed: rights apply to history too)."""
    return frame.join(excluded.select(PERSON), on=PERSON, how="anti")


# --------------------------------------------------------------------------------------------
# The activity layer of one day (map side: one partition)


def activity_rows(
    events: pl.LazyFrame, measurements: pl.LazyFrame, persons: pl.LazyFrame, day: str
) -> pl.LazyFrame:
    """One row per person seen that day (events or measurements), :data:`ACTIVITY_SCHEMA`.

    ``persons`` is the generalized persons table (age band on ``day``, gender, prefecture,
    ``signup_date``). Persons with events are ``active``; persons with only a scale
    measurement are not (they count in measurement trends, not in active users).
    """
    active = events.select(PERSON).unique().with_columns(pl.lit(True).alias("active"))
    measured = measurements.group_by(PERSON).agg(
        pl.col("weight_kg").mean(), pl.col("body_fat_pct").mean()
    )
    seen = active.join(measured, on=PERSON, how="full", coalesce=True)
    return (
        seen.join(persons, on=PERSON, how="left")
        .with_columns(
            pl.col("active").fill_null(False),
            *[pl.col(c).fill_null("unknown") for c in ("prefecture", "age_band", "gender")],
            pl.lit(day).str.to_date().alias("date"),
        )
        .select(list(ACTIVITY_SCHEMA))
        .cast(ACTIVITY_SCHEMA)  # type: ignore[arg-type]
        .sort(PERSON)
    )


def purchase_rows(events: pl.LazyFrame, day: str, price_band: pl.Expr) -> pl.LazyFrame:
    """One row per person and price band with purchases that day, :data:`PURCHASES_SCHEMA`."""
    return (
        events.filter((pl.col("event") == "purchase") & pl.col("amount_jpy").is_not_null())
        .with_columns(price_band.alias("price_band"))
        .group_by(PERSON, "price_band")
        .agg(
            pl.len().cast(pl.Int64).alias("purchases"),
            pl.col("amount_jpy").cast(pl.Int64).sum().alias("amount_jpy"),
        )
        .with_columns(pl.lit(day).str.to_date().alias("date"))
        .select(list(PURCHASES_SCHEMA))
        .sort(PERSON, "price_band")
    )


# --------------------------------------------------------------------------------------------
# Period tables (reduce side: the whole period, all partitions)


def _latest_attributes(activity: pl.LazyFrame) -> pl.LazyFrame:
    """Per person, the attributes of their latest day in the frame (a person counts once)."""
    return (
        activity.sort(PERSON, "date")
        .group_by(PERSON)
        .agg(pl.col("prefecture", "age_band", "gender").last())
    )


def active_users(activity: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    """``<week|month>`` × prefecture × age_band × gender → distinct active persons.

    A person who moved or changed age band during the period counts once, with the attributes
    of their latest active day.
    """
    latest = _latest_attributes(activity.filter(pl.col("active")))
    return (
        latest.group_by("prefecture", "age_band", "gender")
        .agg(pl.len().cast(pl.Int64).alias("persons"))
        .with_columns(pl.lit(period.label).alias(period.kind))
    )


def measurement_trends(activity: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    """month × age_band × gender × measure × band → distinct persons.

    Each person's month is one value per measure: the mean of their daily means (so a person
    who weighs in every day pulls no harder than one who weighs in once), then banded; bands are
    bottom- and top-coded (:data:`WEIGHT_BANDS`, :data:`BODY_FAT_BANDS`), so an extreme value
    never has a band of its own.
    """
    latest = _latest_attributes(activity)
    means = activity.group_by(PERSON).agg(
        pl.col(col).mean().alias(measure) for measure, (col, _) in MEASURES.items()
    )
    per_person = means.join(latest, on=PERSON, how="inner")
    parts = [
        per_person.filter(pl.col(measure).is_not_null()).select(
            PERSON,
            "age_band",
            "gender",
            pl.lit(measure).alias("measure"),
            band(pl.col(measure), bands).alias("band"),
        )
        for measure, (_, bands) in MEASURES.items()
    ]
    return (
        pl.concat(parts)
        .group_by("age_band", "gender", "measure", "band")
        .agg(pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"))
        .with_columns(pl.lit(period.label).alias("month"))
    )


#: Largest per-person contributions kept per cell for the dominance rules (as the daily map).
TOP_CONTRIBUTIONS = 5


def monthly_revenue(purchases: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    """month × price_band → distinct purchasing persons, amount (JPY, exact) and ``_top``, the
    largest per-person amounts of the band in the month (for the dominance rules; never
    published).

    The amount is rounded, checked for dominance and cross-checked against the daily releases
    by the caller.
    """
    per_person = purchases.group_by(PERSON, "price_band").agg(
        pl.col("amount_jpy").sum().cast(pl.Int64)
    )
    return (
        per_person.group_by("price_band")
        .agg(
            pl.len().cast(pl.Int64).alias("persons"),
            pl.col("amount_jpy").sum().cast(pl.Int64).alias("amount_jpy"),
            pl.col("amount_jpy").sort(descending=True).head(TOP_CONTRIBUTIONS).alias("_top"),
        )
        .with_columns(pl.lit(period.label).alias("month"))
    )


def cohort_cells(last_day: date, first_covered: date) -> list[tuple[str, int]]:
    """Cohort cells (signup month, weeks since signup) that are final and fully observed.

    A cell (m, w) is *final* on ``last_day`` when every person who signed up in month m has
    passed week w (last day of m + 7w + 6 <= ``last_day``), and *observed* when the activity
    layer covers the whole of it (first day of m >= ``first_covered``).

    Example:
        >>> cohort_cells(date(2026, 11, 30), date(2026, 10, 1))[:2]
        [('2026-10', 0), ('2026-10', 1)]
    """
    cells: list[tuple[str, int]] = []
    month = first_covered.replace(day=1)
    if month < first_covered:  # a partly observed month has no cohort
        month = month_of(month).last + timedelta(days=1)
    while month <= last_day:
        end = month_of(month).last
        for w in range(COHORT_WEEKS):
            if end + timedelta(days=7 * w + 6) <= last_day:
                cells.append((f"{month:%Y-%m}", w))
        month = end + timedelta(days=1)
    return cells


def retention_cohorts(
    activity: pl.LazyFrame, persons: pl.LazyFrame, cells: list[tuple[str, int]]
) -> pl.LazyFrame:
    """signup_month × weeks_since_signup → cohort persons and persons active in that week.

    ``cohort_persons`` counts registered persons (allowed today) who signed up in the month;
    ``persons`` those of them active at least once in days ``[7w, 7w + 6]`` after their own
    signup date. Only the given ``cells`` (final and observed, :func:`cohort_cells`) appear.
    """
    grid = pl.LazyFrame(
        {
            "signup_month": [m for m, _ in cells],
            "weeks_since_signup": [w for _, w in cells],
        },
        schema={"signup_month": pl.String, "weeks_since_signup": pl.Int64},
    )
    signup_month = pl.col("signup_date").dt.strftime("%Y-%m").alias("signup_month")
    members = persons.filter(pl.col("signup_date").is_not_null()).select(
        PERSON, "signup_date", signup_month
    )
    cohort = members.group_by("signup_month").agg(
        pl.col(PERSON).n_unique().cast(pl.Int64).alias("cohort_persons")
    )
    # membership and signup date come from today's persons table, so persons <= cohort_persons
    active = (
        activity.filter(pl.col("active"))
        .select(PERSON, "date")
        .join(members, on=PERSON, how="inner")
        .with_columns(
            ((pl.col("date") - pl.col("signup_date")).dt.total_days() // 7)
            .cast(pl.Int64)
            .alias("weeks_since_signup"),
        )
        .filter(pl.col("weeks_since_signup") >= 0)
        .group_by("signup_month", "weeks_since_signup")
        .agg(pl.col(PERSON).n_unique().cast(pl.Int64).alias("persons"))
    )
    # every final cell is published, also for a month nobody signed up in (no existence
    # disclosure: the cell is then 0 and suppressed like a small one)
    return (
        grid.join(cohort, on="signup_month", how="left")
        .join(active, on=["signup_month", "weeks_since_signup"], how="left")
        .with_columns(pl.col("persons", "cohort_persons").fill_null(0))
        .with_columns(pl.col("weeks_since_signup").cast(pl.String).str.zfill(2))
    )
