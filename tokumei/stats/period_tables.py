"""Build the weekly and monthly tables of a run, and protect every table across releases.

Called by ``stats_reduce`` after the daily tables exist (in memory, not yet published). Reads
the retained activity layer (``<out>/retained/``, earlier runs) plus this run's own staged
partition, and the *published* releases an attacker already has (``published/stats/``). The
what and why of the mechanism is in :mod:`tokumei.stats.periods` and
:mod:`tokumei.stats.disclosure.cross_release`; this module only wires it.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from tokumei.anonymize.policy import Policy
from tokumei.infra.dated import DatedLayer, is_url, join
from tokumei.infra.storage import RunPaths
from tokumei.stats import grids, periods
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import cross_release, magnitude
from tokumei.stats.disclosure.noise import Ledger

log = logging.getLogger("tokumei")

#: Dims the active-user tables share with ``daily_active_users`` (the cross-release links).
_DEMO = ["prefecture", "age_band", "gender"]
#: How far back the cohort table looks for a contiguous activity history (days).
MAX_HISTORY_DAYS = 400
#: File under ``<out>/retained/`` naming the key the layer's pseudonyms were made with.
KEY_CHECK = "KEY_CHECK"


def key_check(key: str) -> str:
    """A fingerprint of the pseudonym key: HMAC of a fixed public text (reveals nothing).

    The retained layer is only useful if every day was pseudonymized with the same key; after a
    rotation the same person would get two pseudonyms and period tables would count them twice.
    """
    from tokumei.anonymize.pseudonymize import pseudonymize

    text = pl.DataFrame({"t": ["tokumei retained-layer key check"]})
    return str(text.select(pseudonymize(pl.col("t"), key, "key-check")).item())


def _read_key_check(retained: Path | str) -> str | None:
    if is_url(retained):
        from tokumei.infra.objectstore import _bare, filesystem

        try:
            return filesystem().cat_file(f"{_bare(str(retained))}/{KEY_CHECK}").decode().strip()
        except FileNotFoundError:
            return None
    path = Path(retained) / KEY_CHECK
    return path.read_text().strip() if path.exists() else None


def check_retained_key(retained: Path | str, check: str) -> None:
    """Refuse to run when the retained layer was built with another key (fail closed)."""
    from tokumei.infra.errors import TokumeiError

    found = _read_key_check(retained)
    if found is not None and found != check:
        raise TokumeiError(
            f"the pseudonym key differs from the key {retained} was built with (rotated key?): "
            "weekly and monthly tables would count one person twice. Move that layer away "
            "to start a new history with the new key."
        )


def write_retained_key(retained: Path | str, check: str) -> None:
    """Record the key fingerprint with the first retained day (atomic; never overwritten:
    on S3 a PUT conditional on the object's absence)."""
    if is_url(retained):
        from tokumei.infra.objectstore import _bare, _precondition_failed, filesystem

        try:
            filesystem().pipe_file(
                f"{_bare(str(retained))}/{KEY_CHECK}", (check + "\n").encode(), IfNoneMatch="*"
            )
        except Exception as exc:
            if not _precondition_failed(exc):
                raise
        return
    retained = Path(retained)
    path = retained / KEY_CHECK
    if path.exists():
        return
    retained.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(KEY_CHECK + ".tmp")
    tmp.write_text(check + "\n")
    tmp.replace(path)


def published_release(published: Path | str, name: str, day: date) -> pl.DataFrame | None:
    """What readers already have of ``name`` for ``day``: its rows at the newest release of
    the published Delta tables (``RunPaths.tables_at``), or None when it is not published."""
    from tokumei.infra.tableformat import read_day

    return read_day(published, f"stats/{name}", day.isoformat())


def _release(
    paths: RunPaths, frames: dict[str, pl.DataFrame], name: str, day: date
) -> pl.DataFrame | None:
    """This run's table for its own day, else the published release of ``day``."""
    if day.isoformat() == paths.day and name in frames:
        return frames[name]
    return published_release(paths.tables_at, name, day)


def _first_covered(layer: DatedLayer, last: date, today: date) -> date:
    """First day of the contiguous run of retained days ending on ``last`` (``today``, this
    run's day, counts as retained: its partition is staged)."""
    d = last
    while (last - d).days < MAX_HISTORY_DAYS:
        prev = d - timedelta(days=1)
        if prev != today and not layer.has(prev):
            break
        d = prev
    return d


#: The tables of each kind of period (the first one marks whether the period was released).
PERIOD_TABLES = {
    "week": ["weekly_active_users"],
    "month": ["monthly_active_users", "measurement_trends", "monthly_revenue", "retention_cohorts"],
}


def _released_on(paths: RunPaths, name: str, period: periods.Period) -> list[date]:
    """Days of ``period`` under whose date ``name`` is published (for that period)."""
    from tokumei.infra.tableformat import released_days

    released = released_days(paths.tables_at, f"stats/{name}")
    return [d for d in period.days() if d.isoformat() in released]


def _published_manifest(paths: RunPaths, day: date) -> bytes | None:
    """The manifest published for ``day`` (under the ``s3://`` output when there is one)."""
    if paths.settings.out_url:
        from tokumei.infra.objectstore import read_report

        return read_report(paths.settings.out_url, day.isoformat(), "manifest.json")
    path = paths.settings.out / "reports" / f"date={day.isoformat()}" / "manifest.json"
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return b""  # unreadable: not JSON, counts as partial (fail closed)


def _partial_days(paths: RunPaths, days: list[date], today: date) -> list[date]:
    """Days of ``days`` whose current release is partial (docs/landing.md).

    Read from each day's published manifest; this run's own day from its extract record. A
    retained day without a manifest (history older than the manifests) counts as complete; an
    unreadable manifest does not (fail closed).
    """
    from tokumei.infra.storage import load_record

    out: list[date] = []
    for d in days:
        if d == today:
            landing = load_record(paths, "extract").get("landing") or {}
            partial = bool(landing.get("partial"))
        else:
            raw = _published_manifest(paths, d)
            if raw is None:
                continue
            try:
                partial = json.loads(raw.decode("utf-8")).get("partial") is True
            except ValueError:
                partial = True
        if partial:
            out.append(d)
    return out


def _due(
    paths: RunPaths, today: date, activity_dir: DatedLayer
) -> list[tuple[periods.Period, list[str], str | None]]:
    """The periods this run releases or holds back: (period, its tables, why held back).

    A period closing today is due; so is an earlier-ending period of today's week or month
    whose last day has run and which was never released (the run completing a held-back
    period releases it). A period is held back while a day of it is missing from the retained
    layer or was published partial. A period already released with another date's release is
    not released again (two releases of one period invite differencing); a re-run of the day
    that released it re-releases it, under the re-release rule.
    """
    due: list[tuple[periods.Period, list[str], str | None]] = []
    for period in periods.candidate_periods(today):
        names = PERIOD_TABLES[period.kind]
        closing = period.last == today
        if not closing and not activity_dir.has(period.last):
            continue  # not over yet: its last day's run releases it
        elsewhere = [d for d in _released_on(paths, names[0], period) if d != today]
        if elsewhere:
            if closing:
                due.append(
                    (
                        period,
                        names,
                        f"{period.label} was already released with the release of "
                        f"{elsewhere[0].isoformat()} (a period is released once)",
                    )
                )
            continue
        days = period.days()
        missing = periods.missing_days(activity_dir, days, today)
        partial = _partial_days(paths, days, today)
        held = None
        if missing:
            held = (
                f"{len(missing)} of {len(days)} days of {period.label} are not in the retained "
                f"activity layer (first missing: {missing[0].isoformat()}); held back until "
                "they are run"
            )
        elif partial:
            held = (
                f"{len(partial)} of {len(days)} days of {period.label} were published from an "
                f"incomplete landing (first: {partial[0].isoformat()}); held back until they "
                "are re-run complete"
            )
        due.append((period, names, held))
    return due


def _week_release(
    paths: RunPaths, built: dict[str, pl.DataFrame], last: date
) -> pl.DataFrame | None:
    """The release of the week ending ``last``: built by this run, else as published (with the
    release of its Sunday, or of the day that completed it later)."""
    week = periods.week_of(last)
    mine = built.get("weekly_active_users")
    if mine is not None and mine.height and mine["week"][0] == week.label:
        return mine
    for d in reversed(_released_on(paths, "weekly_active_users", week)):
        return published_release(paths.tables_at, "weekly_active_users", d)
    return None


def build(
    paths: RunPaths,
    frames: dict[str, pl.DataFrame],
    min_cell: int,
    policy: Policy,
    grid: pl.DataFrame,
    budget: Ledger | None = None,
    truth: dict[str, pl.DataFrame] | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any], Ledger | None]:
    """Period tables closing on this run's day; cross-release checks; what was done and why.

    Returns the new tables (published form), a record per period table
    (``{"status": "released"|"skipped", "period", "reason"?, "cross_release"?}``) and the
    privacy budget ledger with the noised releases added (``tokumei.stats.disclosure.dp_tables``). ``grid``
    is the public demographic grid (``dp_tables.demographic_grid``) the active-user tables are
    published on. ``truth``, when given, receives each new table's unsuppressed counts (for the
    release's disclosure model, ``tokumei.stats.release_truth``; never published).
    """
    truth = {} if truth is None else truth
    from tokumei.stats.disclosure import dp_tables

    today = date.fromisoformat(paths.day)
    activity_dir = DatedLayer(join(paths.retained_at, "activity"))
    purchases_dir = DatedLayer(join(paths.retained_at, "purchases"))
    staged_act = pl.scan_parquet(paths.staged_retained("activity") / "*.parquet")
    staged_pur = pl.scan_parquet(paths.staged_retained("purchases") / "*.parquet")
    excluded = pl.scan_parquet(paths.work / "dims" / "excluded_persons.parquet")
    persons = periods.without_excluded(
        pl.scan_parquet(paths.work / "generalized" / "persons.parquet"), excluded
    )
    out: dict[str, pl.DataFrame] = {}
    record: dict[str, Any] = {}
    for period, names, held in _due(paths, today, activity_dir):
        days = period.days()
        if held:
            log.warning("period tables of %s held back: %s", period.label, held)
            for name in names:
                record[name] = {"status": "skipped", "period": period.label, "reason": held}
            continue
        act = periods.without_excluded(
            periods.scan_layer(activity_dir, days, staged_act, today, periods.ACTIVITY_SCHEMA),
            excluded,
        )
        # a demographic value outside the public grid counts as unknown (tokumei.stats.grids)
        act = grids.fold_to_unknown(act, grid, _DEMO)
        day_releases = [_release(paths, frames, "daily_active_users", d) for d in days]
        families: list[list[pl.DataFrame | None]] = [day_releases]
        if period.kind == "month":
            weeks = sorted({periods.week_of(d).last for d in days})
            # the week built just above (this run), else wherever that week was released
            families.append([_week_release(paths, out, w) for w in weeks])
        name = f"{'weekly' if period.kind == 'week' else 'monthly'}_active_users"
        exact = periods.active_users(act, period).drop(period.kind).collect()
        truth[name] = exact.with_columns(pl.lit(period.label).alias(period.kind))
        if budget is not None and policy.noise and dp_tables.wants_noise(policy, name):
            exact, entry = dp_tables.noisy_persons(exact, grid, policy.noise, name)
            budget = budget.spend(entry)
        # zero cells are published (suppressed) too, so suppression never says "someone exists"
        au = stats.period_reduce(
            grids.complete(exact, grid, name, {"persons": 0}).with_columns(
                pl.lit(period.label).alias(period.kind)
            ),
            paths.day,
            name,
            min_cell,
        )
        mask = cross_release.cover_suppression(au, families, _DEMO, "persons", min_cell)
        out[name] = au = stats.suppress_where(au, mask, ("persons",))
        record[name] = {
            "status": "released",
            "period": period.label,
            "cross_release": {
                "complementary_cells": int(mask.sum()),
                **cross_release.cover_audit(au, families, _DEMO, "persons", min_cell),
            },
        }
        if period.kind != "month":
            continue
        # every age band × gender × measure × band of the public grid, zero cells included
        trends = grids.complete(
            periods.measurement_trends(act, period),
            grids.grid("measurement_trends", policy),
            "measurement_trends",
            {"persons": 0},
        )
        trends = trends.with_columns(pl.lit(period.label).alias("month")).collect()
        truth["measurement_trends"] = trends
        out["measurement_trends"] = stats.period_reduce(
            trends, paths.day, "measurement_trends", min_cell
        )
        record["measurement_trends"] = {"status": "released", "period": period.label}
        pur = periods.without_excluded(
            periods.scan_layer(purchases_dir, days, staged_pur, today, periods.PURCHASES_SCHEMA),
            excluded,
        )
        rev_exact = grids.complete(
            periods.monthly_revenue(pur, period),
            grids.grid("monthly_revenue", policy),
            "monthly_revenue",
            {"persons": 0, "amount_jpy": 0},
        )
        rev_exact = rev_exact.with_columns(pl.lit(period.label).alias("month")).collect()
        # magnitude rule: a band total its largest purchasers dominate is not published
        dominated = rev_exact.filter(
            magnitude.dominated(
                pl.col("amount_jpy").cast(pl.Float64), pl.col("_top"), policy.disclosure
            )
        )["price_band"].to_list()
        rev_exact = rev_exact.drop("_top")
        truth["monthly_revenue"] = rev_exact.rename({"amount_jpy": "total_amount_jpy"})
        rev = stats.period_reduce(rev_exact, paths.day, "monthly_revenue", min_cell)
        rev = stats.suppress_where(
            rev, pl.col("price_band").is_in(dominated), ("total_amount_jpy",)
        )
        dailies = [_release(paths, frames, "revenue", d) for d in days]
        hide = cross_release.amount_guard(rev, dailies, ["price_band"], "total_amount_jpy")
        out["monthly_revenue"] = stats.suppress_where(rev, hide, ("total_amount_jpy",))
        record["monthly_revenue"] = {
            "status": "released",
            "period": period.label,
            "cross_release": {"amounts_hidden_by_daily_suppression": int(hide.sum())},
        }
        first = _first_covered(activity_dir, period.last, today)
        cells = periods.cohort_cells(period.last, first)
        if not cells:
            record["retention_cohorts"] = {
                "status": "skipped",
                "period": period.label,
                "reason": "no signup month is fully covered by the retained activity layer "
                f"since {first.isoformat()} and old enough for a final week",
            }
            continue
        history = [first + timedelta(days=i) for i in range((period.last - first).days + 1)]
        hist = periods.without_excluded(
            periods.scan_layer(activity_dir, history, staged_act, today, periods.ACTIVITY_SCHEMA),
            excluded,
        )
        truth["retention_cohorts"] = cohorts = periods.retention_cohorts(
            hist, persons, cells
        ).collect()
        out["retention_cohorts"] = stats.period_reduce(
            cohorts,
            paths.day,
            "retention_cohorts",
            min_cell,
        )
        record["retention_cohorts"] = {
            "status": "released",
            "period": period.label,
            "history_from": first.isoformat(),
            "cells": len(cells),
        }
    return out, record, budget


def keep_previous(
    paths: RunPaths, frames: dict[str, pl.DataFrame]
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """Re-release rule: what the release being replaced hid stays hidden (cross_release §3)."""
    today = date.fromisoformat(paths.day)
    out: dict[str, pl.DataFrame] = {}
    extra: dict[str, int] = {}
    for name, df in frames.items():
        spec = stats.TABLES[name]
        old = published_release(paths.tables_at, name, today)
        dims = [d for d in spec.dims if d != "date"]
        out[name], extra[name] = cross_release.keep_previous_suppression(
            df, old, dims, [*spec.counts, *spec.measures]
        )
    return out, extra
