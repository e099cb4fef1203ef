"""Every persons cell of an event table is at most the day's active persons (R3, issue 15).

``page_views``, ``sessions``, ``search_volume``, ``funnel`` and ``revenue`` count persons with an
event that day; ``daily_active_users`` counts each of them once (tokumei/stats/tables.py
``_ACTIVE``, relation :class:`WithinDay`). An attacker can rely on that, so the release system
holds it; a cell hidden for another reason than size (homogeneity, a complement) is then
bounded by the day's total instead of unbounded, and a table whose counts break it is refused.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_stats_tables import DAY, ev, events

from tokumei.anonymize.policy import DisclosurePolicy
from tokumei.stats import tables as stats
from tokumei.stats.disclosure import diversity
from tokumei.stats.disclosure import release as sdc
from tokumei.stats.disclosure.relations import Printed, WithinDay

T = 10
DAU_DIMS = ["prefecture", "age_band", "gender"]


def _dau(counts: list[int]) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "prefecture": ["東京都"] * len(counts),
            "age_band": [f"{20 + 5 * i}-{24 + 5 * i}" for i in range(len(counts))],
            "gender": ["female"] * len(counts),
            "persons": counts,
        }
    )
    return df


def _search(n_electronics: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [ev(f"s{i}", "search", search_query="ワイヤレスイヤホン") for i in range(n_electronics)]
    rows += [ev(f"f{i}", "search", search_query="スニーカー メンズ") for i in range(2)]
    published = stats.search_volume(events(rows), DAY, T).collect()
    published, _ = diversity.protect(published, "search_volume", DisclosurePolicy())
    exact = stats.search_volume(events(rows), DAY, 1).collect().fill_null(0)
    return published, exact.select("kind", "category", "persons")


def _release(dau_counts: list[int], n_electronics: int) -> tuple[dict, dict]:
    dau = _dau(dau_counts)
    search, search_truth = _search(n_electronics)
    frames = {
        "daily_active_users": dau.with_columns(
            pl.lit(search["date"][0]).alias("date"), pl.lit(False).alias("suppressed")
        ).select(stats.TABLES["daily_active_users"].columns),
        "search_volume": search,
    }
    truth = {"daily_active_users": dau, "search_volume": search_truth}
    return frames, truth


def _interval(frames: dict, truth: dict, category: str) -> tuple[float, float]:
    s = sdc.build(frames, T, truth=truth)
    pub = np.asarray(s.published, dtype=float)
    suppressed = np.isnan(pub)
    sv = frames["search_volume"]
    row = sv.with_row_index("_r").filter(
        (pl.col("kind") == "search") & (pl.col("category") == category)
    )["_r"][0]
    cell = int(s.ids[("search_volume", "persons")][row])
    lo, hi = sdc.intervals(s, suppressed, np.array([cell]))
    return float(lo[0]), float(hi[0])


def test_event_tables_declare_the_days_active_persons_bound() -> None:
    for name in ("page_views", "sessions", "search_volume", "funnel", "revenue"):
        rels = [r for r in stats.TABLES[name].relations if isinstance(r, WithinDay)]
        assert [r.table for r in rels] == ["daily_active_users"], name
    # summed over their cells, at most the kept event rows; not sessions (a session is in its
    # band row and in the 'all' row)
    for name in ("page_views", "search_volume", "funnel", "revenue"):
        assert any(isinstance(r, Printed) for r in stats.TABLES[name].relations), name
    assert not any(isinstance(r, Printed) for r in stats.TABLES["sessions"].relations)
    # measurements come from the scale, not from events: no such bound
    assert not any(isinstance(r, WithinDay) for r in stats.TABLES["measurements_summary"].relations)


def test_a_cell_hidden_for_homogeneity_is_bounded_by_the_days_active_persons() -> None:
    # 25 of the day's 30 active persons searched electronics, 2 fashion: the search kind is
    # hidden whole (homogeneous); electronics is no small cell, so it is not told primary
    frames, truth = _release([12, 18], 25)
    assert frames["search_volume"].filter(pl.col("kind") == "search")["persons"].null_count()
    lo, hi = _interval(frames, truth, "electronics")
    assert (lo, hi) == (0.0, 30.0)  # unbounded above without the relation
    verdict = sdc.audit(frames, T, truth=truth)
    assert verdict["search_volume"]["ok"] and verdict["daily_active_users"]["ok"]
    assert "persons <= the day's active persons" in verdict["search_volume"]["relations"]


def test_a_table_that_counts_more_persons_than_were_active_is_refused() -> None:
    frames, truth = _release([5, 6], 25)  # 25 searchers, 11 active persons: not true
    with pytest.raises(sdc.InconsistentReleaseError, match="active persons"):
        sdc.protect_release(frames, T, truth=truth)
