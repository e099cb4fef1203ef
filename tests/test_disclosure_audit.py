"""The attacker audit of published statistics tables (tokumei/stats/disclosure/audit.py).

The sessions table gets LP-verified complementary suppression (tokumei.stats.tables.protect_sessions)
and every published table is re-attacked after the run; the verdict goes into the manifest.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, TEST_KEY, write_handmade_landing

from tokumei.infra.settings import Settings
from tokumei.pipeline import steps
from tokumei.stats import tables as stats
from tokumei.stats.disclosure.audit import audit_tables, failing

HISTS = ["device_class", "os_family", "duration_band", "persons", "sessions"]


def _sessions(rows: list[tuple[str, str, str, int, int]], min_cell: int = 10) -> pl.DataFrame:
    hists = pl.DataFrame(rows, schema=HISTS, orient="row")
    return stats.sessions_reduce(hists.lazy(), DAY, min_cell).collect()


def test_lone_small_band_gets_complements_and_passes_the_attacker() -> None:
    # mobile/iOS: only 1-10m is small (3 persons); all = sum of the bands for sessions.
    out = _sessions(
        [
            ("mobile", "iOS", "<1m", 40, 50),
            ("mobile", "iOS", "1-10m", 3, 4),
            ("mobile", "iOS", "10-30m", 25, 30),
            ("mobile", "iOS", "30m+", 12, 15),
            ("mobile", "iOS", "all", 60, 99),
            ("desktop", "Windows", "<1m", 20, 20),
            ("desktop", "Windows", "all", 20, 20),
        ]
    )
    assert out.columns == list(stats.TABLES["sessions"].columns)
    sup = out.filter(pl.col("suppressed"))
    assert sup.height >= 2 and "1-10m" in sup["duration_band"].to_list()
    assert sup["persons"].null_count() == sup["sessions"].null_count() == sup.height
    # desktop/Windows has one non-empty band: its zero bands (suppressed: every cell of the
    # grid is published) would be 'all' − '<1m' = 0 exactly, so the band and 'all' go too
    desk = out.filter((pl.col("device_class") == "desktop") & (pl.col("os_family") == "Windows"))
    assert desk.height == 5 and desk["suppressed"].all()
    # 'all' minus the published bands no longer gives the small band back
    audit = audit_tables({"sessions": out}, 10)["sessions"]
    assert audit["ok"] and audit["min_width"] >= 10
    assert audit["counts"]["sessions"]["suppressed_cells"] == sup.height
    assert audit["counts"]["sessions"]["additive"] is True
    assert audit["counts"]["persons"]["additive"] is False


def test_persons_forced_complements_keep_both_counts_safe() -> None:
    # Two small bands, the rest large: the pattern must hold for sessions and persons alike.
    out = _sessions(
        [
            ("mobile", "Android", "<1m", 5, 6),
            ("mobile", "Android", "1-10m", 7, 30),
            ("mobile", "Android", "10-30m", 30, 31),
            ("mobile", "Android", "30m+", 11, 11),
            ("mobile", "Android", "all", 45, 78),
        ]
    )
    assert out["suppressed"].sum() >= 2
    assert not failing(audit_tables({"sessions": out}, 10))


def test_recoverable_cell_is_reported_not_ok() -> None:
    # Primary suppression only: 'all' (99) - 50 - 30 - 15 = 4 sessions for the hidden band.
    d = dt.date(2024, 1, 1)
    rows = [
        ("<1m", 40, 50, False),
        ("1-10m", None, None, True),
        ("10-30m", 25, 30, False),
        ("30m+", 12, 15, False),
        ("all", 60, 99, False),
    ]
    published = pl.DataFrame(
        {
            "date": [d] * len(rows),
            "device_class": ["mobile"] * len(rows),
            "os_family": ["iOS"] * len(rows),
            "duration_band": [r[0] for r in rows],
            "persons": [r[1] for r in rows],
            "sessions": [r[2] for r in rows],
            "suppressed": [r[3] for r in rows],
        },
        schema_overrides={"persons": pl.Int64, "sessions": pl.Int64},
    )
    audit = audit_tables({"sessions": published}, 10)
    assert failing(audit) == ["sessions"]
    assert audit["sessions"]["counts"]["sessions"]["min_width"] == 1  # pinned down
    assert not audit["sessions"]["ok"]


def test_tables_without_margins_leave_the_full_range() -> None:
    d = dt.date(2024, 1, 1)
    funnel = pl.DataFrame(
        {
            "date": [d, d],
            "device_class": ["desktop", "mobile"],
            "persons_page_view": [50, None],
            "persons_signup": [12, None],
            "persons_purchase": [None, None],
            "suppressed": [True, True],
        },
        schema_overrides={c: pl.Int64 for c in stats.TABLES["funnel"].counts},
    )
    audit = audit_tables({"funnel": funnel}, 10)["funnel"]
    assert audit["ok"] and audit["min_width"] == 10 and audit["suppressed_cells"] == 4
    assert audit["funnel_order_ok"] and audit["funnel_inequalities_in_lp"] is False
    # a published step after a suppressed one breaks the suffix property → not ok
    bad = funnel.with_columns(pl.Series("persons_purchase", [None, 11], pl.Int64))
    assert not audit_tables({"funnel": bad}, 10)["funnel"]["ok"]


@pytest.mark.slow
def test_handmade_run_audit_is_ok_and_in_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    landing = write_handmade_landing(tmp_path / "landing")
    out = tmp_path / "out"
    settings = Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out
    ).resolved()
    steps.run_all(settings, DAY)
    manifests = list(out.rglob("manifest.json"))
    assert manifests
    manifest = json.loads(manifests[0].read_text())
    disc = manifest["disclosure"]
    assert set(disc) == {n for n, s in stats.TABLES.items() if s.release == "daily"}
    assert all(rec["ok"] for rec in disc.values())
    # the release model's record (tokumei/stats/disclosure/release.py): declared relations
    for name, rec in disc.items():
        assert {"cells", "suppressed_cells", "min_width", "required_width", "relations"} <= set(rec)
        assert rec["relations"] == [r.label for r in stats.TABLES[name].relations or ()]
    assert "sessions: all = sum(bands)" in disc["sessions"]["relations"]
    report = next(out.rglob("privacy_report.html")).read_text()
    assert 'id="disclosure"' in report
