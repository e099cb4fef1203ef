"""The per-run reports: privacy_report.html and items_notice.md (docs/architecture.md §5).

Built from a hand-made manifest and tiny published tables — no pipeline run — so the tests are
fast and pin exactly what the reports may show: the manifest and the published tables, escaped,
with no external resource, and a notice generated from the policy (both languages).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from headless import CHROMIUM, chromium

from tokumei.anonymize.hierarchies import BUILTIN
from tokumei.anonymize.policy import DROPPED_ROLES, ColumnPolicy, Policy, Role, load_policy
from tokumei.release.reports import (
    HIERARCHY_LEVELS,
    OUTPUT_COLUMNS,
    _md,
    write_items_notice,
    write_privacy_report,
)
from tokumei.stats.tables import TABLES

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
INJECT = "<script>alert(1)</script>"
DAY = date(2026, 11, 24)


def _manifest(**extra: object) -> dict:
    manifest = {
        "run_id": "2026-11-24-20261124T231417-7ab23294",
        "date": "2026-11-24",
        "policy_version": "2026.11.1",
        "code_version": "0.1.0+gc0056ecff460",
        "finished_at": "2026-11-24T23:15:12+00:00",
        "status": "published",
        "sources": {
            "events": {
                "input": 30091,
                "kept": 27991,
                "quarantined": 28,
                "excluded_by_rights": 2072,
                "dropped_by_rule": 0,
                "suppressed": 0,
            },
            "measurements": {
                "input": 96,
                "kept": 76,
                "quarantined": 0,
                "excluded_by_rights": 20,
                "dropped_by_rule": 0,
                "suppressed": 0,
            },
        },
        "outputs": {
            "stats/daily_active_users": {
                "rows": 4,
                "k_min": 12,
                "suppressed_cells": 1,
                "validation": "passed",
            },
            "stats/page_views": {
                "rows": 3,
                "k_min": 10,
                "suppressed_cells": 1,
                "validation": "passed",
            },
        },
        "steps": {
            "extract": {
                "events": {
                    "input": 30091,
                    "quarantined": 28,
                    "quarantine_reasons": {
                        "malformed JSON": 7,
                        "field ts: not a valid timestamp": 21,
                    },
                },
                "measurements": {"input": 96, "quarantined": 0, "quarantine_reasons": {}},
                "db.users": {"rows": 1500, "quarantined": 0},
            },
            "discover": {
                "events": {"inquiry_text": {"JP_PHONE": 0.3404, "EMAIL_ADDRESS": 0.2128}},
                "measurements": {},
            },
            "scrub": {
                "events": {
                    "columns": {
                        "inquiry_text": {
                            "rows": 27991,
                            "values_changed": 159,
                            "entities": {"PERSON": 109},
                        }
                    }
                }
            },
        },
    }
    manifest.update(extra)
    return manifest


def _tables() -> dict[str, pl.DataFrame]:
    dau = pl.DataFrame(
        {
            "date": [DAY] * 4,
            "prefecture": ["東京都", "大阪府", "北海道", "unknown"],
            "age_band": ["30-34", "40-44", "20-24", "unknown"],
            "gender": ["female", "male", "female", "unknown"],
            "persons": [12, 47, None, 296],
            "suppressed": [False, False, True, False],
        }
    )
    pv = pl.DataFrame(
        {
            "date": [DAY] * 3,
            "url_template": ["shop.example.jp/items/:id", f"shop.example.jp/{INJECT}", "other"],
            "device_class": ["mobile", "desktop", "bot"],
            "persons": [683, 10, None],
            "suppressed": [False, False, True],
        }
    )
    return {"daily_active_users": dau, "page_views": pv}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "privacy_report.html"
    return write_privacy_report(_manifest(), _tables(), out)


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_DIR)


# --------------------------------------------------------------------------------------------
# privacy report


def test_report_has_summary_and_sections(html: str) -> None:
    assert "<title>tokumei privacy report — 2026-11-24</title>" in html
    assert 'name="viewport"' in html
    for text in ("2026-11-24-20261124T231417-7ab23294", "2026.11.1", "0.1.0+gc0056ecff460"):
        assert text in html
    assert 'class="status published"' in html
    for section in (
        "flow",
        "validation",
        "suppression",
        "cell-sizes",
        "k-anonymity",
        "discovery",
        "scrub",
        "quarantine",
        "tables",
    ):
        assert f'<section id="{section}">' in html, section


def test_report_shows_manifest_numbers(html: str) -> None:
    # books per source and step, in the table and as chart values
    for n in ("30,091", "27,991", "2,072", "28"):
        assert n in html
    for step in ("input", "quarantined", "excluded_by_rights", "dropped_by_rule", "kept"):
        assert f"events · {step}" in html
    # validation and suppression per output
    assert "stats/daily_active_users" in html and "stats/page_views" in html
    assert html.count('class="status passed"') == 2
    # quarantine reasons with counts, most frequent first
    assert html.index("field ts: not a valid timestamp: 21") < html.index("malformed JSON: 7")
    # discovery rates as percentages
    assert "34.0%" in html and "21.3%" in html
    assert "inquiry_text · JP_PHONE" in html
    # no record-level release in this manifest
    assert "no record-level release in this run" in html.lower()


def test_report_cell_histogram_counts_only_published_cells(html: str) -> None:
    # daily_active_users: published 12, 47, 296 → bins 10–19, 20–49, 200–499; the suppressed
    # (null) cell is not in the histogram.
    section = html[html.index('id="cell-sizes"') : html.index('id="k-anonymity"')]
    assert "persons: min 12 · median 47 · max 296" in section
    for label in ("10–19", "20–49", "200–499", "500–999"):
        assert label in section
    assert "<svg" in section


def test_report_renders_kanon_metrics(tmp_path: Path) -> None:
    anonymized = {
        "classes": 41,
        "min_class_size": 10,
        "suppressed": 17,
        "granularity_loss": 0.4375,
        "max_risk": 0.1,
        "mean_risk": 0.0421,
        "class_size_histogram": [[10, 5], [11, 3], [250, 1]],
    }
    out = write_privacy_report(
        _manifest(anonymized=anonymized), _tables(), tmp_path / "r.html"
    ).read_text()
    section = out[out.index('id="k-anonymity"') : out.index('id="discovery"')]
    assert "no record-level release" not in section.lower()
    for text in ("granularity loss", "0.438", "max risk", "0.1", "mean risk", "0.0421"):
        assert text in section
    assert "suppressed (persons)" in section and ">17<" in section
    # class sizes are shown in bands, never exactly (no small count printed)
    assert "200–499 persons" in section and "250 persons" not in section and "<svg" in section


def test_report_of_failed_run_renders(tmp_path: Path) -> None:
    manifest = {
        "run_id": "r1",
        "date": "2026-11-24",
        "policy_version": "",
        "code_version": "x",
        "sources": {},
        "outputs": {},
        "steps": {},
        "status": "failed",
        "reason": "validate: validation failed for page_views",
    }
    out = write_privacy_report(manifest, {}, tmp_path / "f.html").read_text()
    assert 'class="status failed"' in out
    assert "validation failed for page_views" in out


def test_report_has_no_external_resources_and_no_script(html: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "http://" not in html and "https://" not in html


def test_report_escapes_table_values(html: str) -> None:
    assert INJECT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_escapes_manifest_strings(tmp_path: Path) -> None:
    manifest = _manifest()
    manifest["steps"]["extract"]["events"]["quarantine_reasons"] = {INJECT: 1}
    manifest["steps"]["discover"]["events"] = {"c": {INJECT: 0.5}}
    out = write_privacy_report(manifest, _tables(), tmp_path / "x.html").read_text()
    assert "<script" not in out.lower()


# --------------------------------------------------------------------------------------------
# items notice


def test_notice_lists_items_of_published_tables(policy: Policy, tmp_path: Path) -> None:
    text = write_items_notice(policy, _manifest(), tmp_path / "items_notice.md").read_text()
    assert "第43条第3項" in text and "Article 43(3)" in text
    assert "匿名加工情報に含まれる個人に関する情報の項目" in text
    for name in ("daily_active_users", "page_views"):
        spec = TABLES[name]
        assert f"### `stats/{name}`" in text
        assert spec.description.split(",")[0] in text
        for col in (*spec.dims, *spec.counts, *spec.measures, "suppressed"):
            ja, en = OUTPUT_COLUMNS[col]
            assert f"| `{col}` | {_md(ja)} | {_md(en)} |" in text  # Markdown-escaped
    # only what this run published
    assert "### `stats/measurements_summary`" not in text


def test_notice_processing_comes_from_policy(policy: Policy, tmp_path: Path) -> None:
    text = write_items_notice(policy, _manifest(), tmp_path / "items_notice.md").read_text()
    every = {**policy.sources, **policy.tables}
    deleted = 0
    for src, sp in every.items():
        for col in sp.by_role(*DROPPED_ROLES):
            line = next(
                ln for ln in text.splitlines() if ln.startswith(f"- `{src}` —") and f"`{col}`" in ln
            )
            assert line
            deleted += 1
        linking = sp.by_role(Role.LINKING_KEY)
        if linking:
            assert f"- `{src}`: " + ", ".join(f"`{c}`" for c in linking) in text
        for col in sp.by_role(Role.QUASI_IDENTIFIER):
            p = sp.columns[col]
            assert f"| `{src}` | `{col}` |" in text
            assert f"(hierarchy `{p.hierarchy}`, level {p.level})" in text
    assert deleted > 0
    for col in ("email", "full_name", "phone", "my_number", "card_number"):  # this policy
        assert f"`{col}`" in text
    assert "個人識別符号" in text and "identification codes" in text
    assert "HMAC-SHA256" in text and "not contained in the released data" in text
    assert (
        "5歳階級" in text and "5-year age band (90+ top-coded) (hierarchy `age`, level 1)" in text
    )
    n = policy.thresholds.min_cell
    assert f"人数が {n} 人未満" in text and f"fewer than {n} persons" in text
    assert "`inquiry_text`" in text and "<PERSON>" in text


def test_notice_follows_policy_changes(policy: Policy, tmp_path: Path) -> None:
    changed = policy.model_copy(deep=True)
    changed.thresholds.min_cell = 25
    changed.sources["events"].columns["passport_no"] = ColumnPolicy(
        type="string", role=Role.IDENTIFICATION_CODE
    )
    changed.tables["users"].columns["birth_date"].level = 2
    text = write_items_notice(changed, _manifest(), tmp_path / "n.md").read_text()
    assert "- `events` — 個人識別符号 / identification codes: `passport_no`" in text
    assert "人数が 25 人未満" in text and "fewer than 25 persons" in text
    assert "10歳階級" in text and "(hierarchy `age`, level 2)" in text


def test_vocabularies_cover_engine() -> None:
    """Every published column has a notice line; every hierarchy level has a description."""
    for spec in TABLES.values():
        for col in (*spec.dims, *spec.counts, *spec.measures, "suppressed"):
            assert col in OUTPUT_COLUMNS, col
    for name, factory in BUILTIN.items():
        assert len(HIERARCHY_LEVELS[name]) == factory().levels, name


# --------------------------------------------------------------------------------------------
# headless browser

def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return chromium(args, profile, offline=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    assert shutil.which(str(CHROMIUM))
    url = report.resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "tokumei privacy report — 2026-11-24" in dom.stdout
    assert "<svg" in dom.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout
    shot = tmp_path / "phone.png"
    res = _chromium(
        ["--window-size=390,844", f"--screenshot={shot}", url], tmp_path / "profile-shot"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 5_000
    for out in (dom.stderr, res.stderr):
        assert "Uncaught" not in out
        assert not re.search(r"CONSOLE[:(]|Refused to|ERR_", out), out[-2000:]


# --------------------------------------------------------------------------------------------
# the release tells the truth (issue 15): notice from what ran, audit section, ledger, no
# small count printed


def _release_manifest() -> dict:
    """A manifest as publish writes it: outputs with their staged columns, both kinds."""
    m = _manifest()
    m["outputs"]["stats/daily_active_users"]["columns"] = [
        "date",
        "prefecture",
        "age_band",
        "gender",
        "persons",
        "suppressed",
    ]
    m["outputs"]["anonymized/page_views"] = {
        "rows": 96,
        "k_min": 10,
        "transformation": {"age": 1, "gender": 0, "prefecture": 1, "device_class": 0},
        "columns": ["age", "gender", "prefecture", "device_class", "url_template"],
        "method": [{"ja": "URLテンプレートの折りたたみ", "en": "URL templates folded"}],
        "validation": "passed",
    }
    return m


def test_notice_lists_every_released_dataset_with_its_columns(
    policy: Policy, tmp_path: Path
) -> None:
    text = write_items_notice(
        policy, _release_manifest(), tmp_path / "n.md", retention_days=123
    ).read_text()
    assert "### `anonymized/page_views`" in text and "### `stats/daily_active_users`" in text
    section3 = text[text.index("## 3.") : text.index("## 4.")]
    for col in ("age", "gender", "prefecture", "device_class", "url_template"):
        assert f"| `{col}` |" in section3
    # the levels the search chose, not the policy's: age level 1 = 5-year band
    assert "5歳階級" in section3 and "URL templates folded" in section3
    assert "（説明なし）" not in text and "(no description)" not in text


def test_notice_states_the_retained_layer_and_kept_key(policy: Policy, tmp_path: Path) -> None:
    text = write_items_notice(
        policy, _release_manifest(), tmp_path / "n.md", retention_days=123
    ).read_text()
    assert "destroyed" not in text and "破棄します" not in text.replace("破棄せず", "")
    assert "key is **kept** across runs" in text and "KEY_CHECK" in text
    assert "123 days" in text and "123 日" in text
    assert "仮名加工情報" in text and "never released" in text
    for col in ("weight_kg", "body_fat_pct", "person"):
        assert f"`{col}`" in text[text.index("## 4.") : text.index("## 5.")]
    assert "統計情報" in text and "匿名加工情報" in text and "第44条" in text


def test_notice_without_record_level_release_says_so(policy: Policy, tmp_path: Path) -> None:
    text = write_items_notice(policy, _manifest(), tmp_path / "n.md").read_text()
    assert "No record-level data in this release" in text
    assert "400 days" in text  # the default retention of tokumei.jobs.retention


def _audit_manifest() -> dict:
    m = _manifest()
    m["disclosure"] = {
        "daily_active_users": {
            "cells": 4,
            "suppressed_cells": 1,
            "min_width": 12,
            "required_width": 10,
            "relations": ["margin:prefecture", "partition:age_band×gender"],
            "ok": True,
        },
        "page_views": {"suppressed_cells": 1, "ok": True},  # keys missing: tolerated
    }
    return m


def test_report_audit_section_shows_what_was_proved(tmp_path: Path) -> None:
    out = write_privacy_report(_audit_manifest(), _tables(), tmp_path / "a.html").read_text()
    section = out[out.index('id="disclosure"') : out.index('id="provision"')]
    assert "<td>daily_active_users</td>" in section and "<td>page_views</td>" in section
    assert "margin:prefecture, partition:age_band×gender" in section
    assert '<td class="num">12</td>' in section and section.count("—") >= 3
    assert section.count('class="status passed"') == 2


def test_report_ledger_section(tmp_path: Path) -> None:
    ledger = [
        {
            "recorded_at": "2026-11-25T01:00:00+00:00",
            "recipient": "Research <Partner>",
            "date": "2026-11-24",
            "datasets": {"anonymized/page_views": ["age"]},
            "method": "sftp",
            "run_id": "r1",
        }
    ]
    out = write_privacy_report(_manifest(), _tables(), tmp_path / "l.html", ledger=ledger)
    section = out.read_text().split('id="provision"')[1].split("</section>")[0]
    assert "Research &lt;Partner&gt;" in section and "anonymized/page_views" in section
    empty = write_privacy_report(_manifest(), _tables(), tmp_path / "e.html", ledger=[])
    assert "No release has been provided" in empty.read_text()


def test_report_cells_and_sizes_do_not_contradict_themselves(tmp_path: Path) -> None:
    """Issue 18: a table without a ``persons`` column is not 'all suppressed', and the
    record-level release is not a statistics table of 0 cells."""
    # as the pipeline publishes it: a row is flagged when any of its cells is suppressed,
    # and the other cells of the row are still published
    funnel = pl.DataFrame(
        {
            "date": [DAY] * 2,
            "device_class": ["mobile", "bot"],
            "persons_page_view": [36, None],
            "persons_signup": [None, None],
            "persons_purchase": [None, None],
            "suppressed": [True, True],
        }
    )
    m = _release_manifest()
    out = write_privacy_report(m, {**_tables(), "funnel": funnel}, tmp_path / "c.html")
    html = out.read_text()
    sizes = html[html.index('id="cell-sizes"') : html.index('id="k-anonymity"')]
    funnel_part = sizes[sizes.index("<h3>funnel</h3>") :].split("<h3>")[1]
    assert "all suppressed" not in funnel_part
    assert "persons_page_view: min 36" in funnel_part
    cells = html[html.index('id="suppression"') : html.index('id="disclosure"')]
    assert "anonymized" not in cells
    # 2 rows x 3 steps = 6 cells, 1 published
    assert '<td>funnel</td><td class="num">6</td><td class="num">1</td>' in cells
    preview = html[html.index('id="tables"') :].split("<h3>funnel</h3>")[1].split("<h3>")[0]
    assert "<td>mobile</td>" in preview and "<td>bot</td>" not in preview


def test_report_of_a_printed_manifest_shows_no_small_count(tmp_path: Path) -> None:
    from tokumei.release.manifest import public_manifest

    m = _manifest(
        anonymized={
            "suppressed": 9,
            "suppressed_records": 21,
            "classes": 3,
            "min_class_size": 10,
            "class_size_histogram": [[10, 2], [11, 1]],
        }
    )
    printed = public_manifest(m, 10)
    assert printed["sources"]["events"]["quarantined"] == "< 100"
    assert printed["sources"]["events"]["excluded_by_rights"] == 2100
    assert printed["anonymized"]["suppressed"] == "< 10"
    assert printed["anonymized"]["suppressed_records"] == "< 100"
    assert printed["anonymized"]["class_size_histogram"] == [["10–19", 3]]
    html = write_privacy_report(printed, _tables(), tmp_path / "p.html").read_text()
    kanon = html.split('id="k-anonymity"')[1].split("</section>")[0]
    # persons and records of the record-level release (the number of classes is public)
    shown = re.findall(r"<dt>suppressed[^<]*</dt><dd>([^<]*)</dd>", kanon)
    assert shown == ["&lt; 10", "&lt; 100"]
    assert "10–19" in kanon and ">11<" not in kanon
    for section in ("flow", "quarantine"):
        part = html.split(f'id="{section}"')[1].split("</section>")[0]
        text = re.sub(r"<[^>]+>", " ", part)
        text = re.sub(r"&lt; 10+\b", " ", text)  # the bands themselves
        for n in re.findall(r"(?<![\w.,–-])\d[\d,]*(?![\w.–-])", text):
            value = int(n.replace(",", ""))
            assert value == 0 or value >= 10, (section, n)
    assert "persons suppressed" not in html
