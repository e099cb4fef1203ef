"""`tokumei run` end to end on a hand-written landing zone (not our generator), plus the leak test."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, PLANTED, TEST_KEY, all_text_under, seal_landing
from published import published_dates, published_tables, read_published

from tokumei.release import catalog

pytestmark = pytest.mark.slow


def tokumei(*args: str, key: str | None = TEST_KEY, extra_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k != "TOKUMEI_PSEUDONYM_KEY"}
    if key:
        env["TOKUMEI_PSEUDONYM_KEY"] = key
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "tokumei.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def run_args(landing: Path, out: Path) -> list[str]:
    return ["run", "--landing", str(landing), "--out", str(out), "--date", DAY]


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, subprocess.CompletedProcess]:
    from conftest import write_handmade_landing

    root = tmp_path_factory.mktemp("e2e")
    landing = write_handmade_landing(root / "landing")
    out = root / "out"
    proc = tokumei(*run_args(landing, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return landing, out, proc


def test_isolated_steps_publish_what_the_in_process_run_publishes(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI runs each step in its own process; the in-process run publishes the same."""
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    landing, cli_out, proc = published
    assert "▶ scrub" in proc.stderr  # the CLI run went through every step
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    out = tmp_path / "out"
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    steps.run_all(settings.resolved(), DAY, isolate=False)
    _assert_same_tables(out, cli_out)
    mine, cli = _delta_release(out), _delta_release(cli_out)
    assert mine.keys() == cli.keys() and all(mine[t].equals(cli[t]) for t in mine)


def test_a_big_day_s_step_processes_started_ahead_publish_the_same(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the reuse limit every step gets a fresh process, started (with its imports) while
    the step before runs (``StepProcess.run(ahead=...)``); the release is the same."""
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    landing, cli_out, _proc = published
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("TOKUMEI_STEP_PROCESS_MAX_WORK_MB", "0")  # as for a big day
    out = tmp_path / "out"
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    steps.run_all(settings.resolved(), DAY, isolate=True)
    _assert_same_tables(out, cli_out)


def _assert_same_tables(out: Path, other: Path) -> None:
    """The two outputs published the same tables with the same rows."""
    tables = published_tables(out)
    assert tables and tables == published_tables(other)
    for name in tables:
        mine = read_published(out, *name.split("/"))
        assert mine.equals(read_published(other, *name.split("/"))), name


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _delta_release(out: Path) -> dict[str, pl.DataFrame]:
    """Every table of the newest release, read as a reader without tokumei code reads it:
    the marker table names each Delta table's version (docs/adr/0008)."""
    pub = out / "published" / "delta"
    rel = pl.read_delta(str(pub / "releases"))
    cur = rel.filter(pl.col("release") == pl.col("release").max())
    return {
        table: _sorted(pl.read_delta(str(pub / table), version=version))
        for table, version in cur.select("table", "version").iter_rows()
    }


def test_the_release_is_delta_tables_read_through_the_marker(published) -> None:
    """Every published table is a Delta table of one release: Polars alone, through the marker,
    reads what tokumei's reader reads (docs/adr/0008); no dated folder is written any more."""
    _landing, out, _proc = published
    delta = _delta_release(out)
    assert len(delta) >= 8 and sorted(delta) == published_tables(out, DAY)
    for name, frame in delta.items():
        assert frame.equals(_sorted(read_published(out, *name.split("/")))), name
    assert not list((out / "published").glob("*/*/date=*"))
    manifest = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert manifest["table_format"] == {
        "format": "delta",
        "marker": "published/delta/releases",
        "release": 1,
    }


def test_publishes_three_tables_and_a_catalog(published) -> None:
    _, out, _ = published
    for table in ("daily_active_users", "page_views", "measurements_summary"):
        assert published_dates(out, "stats", table) == [DAY], table
    dau = read_published(out, "stats", "daily_active_users")
    # users 0-25 live in Tokyo, born 1994-03-01, female; the excluded users (30-33) do not,
    # so the Tokyo cell counts all 26 persons.
    tokyo = dau.filter((pl.col("prefecture") == "東京都") & (pl.col("age_band") == "30-34"))
    assert tokyo.filter(pl.col("gender") == "female")["persons"].to_list() == [26]
    # the rest of the public demographic grid is there too, as suppressed zeros
    assert tokyo.height == 4 and tokyo["persons"].null_count() == 3
    published_counts = dau.filter(~pl.col("suppressed"))["persons"]
    assert published_counts.min() >= 10
    assert dau.filter(pl.col("suppressed"))["persons"].null_count() == dau["suppressed"].sum()
    con = catalog.connect(out / "published")
    n = con.execute("select sum(persons) from daily_active_users where not suppressed").fetchone()[
        0
    ]
    assert n == published_counts.sum()


def test_publishes_every_statistics_table(published) -> None:
    from tokumei.stats.tables import TABLES

    _, out, _ = published
    daily = {n: s for n, s in TABLES.items() if s.release == "daily"}
    assert len(daily) == 7 and len(TABLES) == 12
    # a Tuesday closes no week or month: no period table, and nothing skipped either
    assert not {f"stats/{n}" for n in set(TABLES) - set(daily)} & set(published_tables(out))
    for name, spec in daily.items():
        df = read_published(out, "stats", name, DAY)
        assert df.columns == list(spec.columns), name
        shown = df.filter(~pl.col("suppressed"))
        for count in spec.counts:
            assert shown[count].null_count() == 0 and (shown[count] >= 10).all(), (name, count)
    # 40 users × 3 page views, one session each (s-i-h), all iOS mobile, all under a minute;
    # users 30-33 are excluded by rights, 36 persons remain. Every cell of the public grid is a
    # row (tokumei/stats/grids.py), zero ones suppressed; 'all' − '<1m' would then give the
    # three zero bands back exactly, so the one non-empty band and its 'all' row are hidden too.
    sessions = read_published(out, "stats", "sessions")
    assert sessions.height == 6 * 8 * 5  # device classes × OS families × duration bands
    ios = sessions.filter((pl.col("device_class") == "mobile") & (pl.col("os_family") == "iOS"))
    assert ios.height == 5 and ios["suppressed"].all() and ios["persons"].null_count() == 5
    # everyone but user 3 (phone number scrubbed → other) searched for ワイヤレスイヤホン: a
    # published 35 of 36 would tell each searcher's topic, so the day's searches are hidden
    # whole (l-diversity of search_volume, tokumei/stats/disclosure/diversity.py; it published
    # electronics = 35 before, changed on purpose)
    sv = read_published(out, "stats", "search_volume")
    searches = sv.filter(pl.col("kind") == "search")
    assert searches["suppressed"].all() and searches["persons"].null_count() == searches.height
    assert not (set(sv.columns) & {"search_query", "inquiry_text"})


def test_manifest_books_balance(published) -> None:
    _, out, _ = published
    m = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert m["status"] == "published" and m["date"] == DAY and m["policy_version"]
    assert {"run_id", "code_version", "sources", "outputs"} <= set(m)
    # The books are checked exactly before publishing; the manifest prints them by the one
    # rule (tokumei.release.manifest.printed_count): the printed intervals must still balance.
    from tokumei.release.manifest import ROW_BASE, printed_interval

    assert m["printed_counts"]["row_base"] == ROW_BASE
    steps = ("kept", "quarantined", "excluded_by_rights", "suppressed", "dropped_by_rule")
    for source, b in m["sources"].items():
        lo, hi = printed_interval(b["input"], ROW_BASE)
        parts = [printed_interval(b[k], ROW_BASE) for k in steps]
        assert sum(p[0] for p in parts) <= hi and lo <= sum(p[1] for p in parts), source
    ev = m["sources"]["events"]
    # 5 quarantined (4 malformed lines in part-0 + 1 invalid UTF-8 line), 1 event of another
    # day, 4 x 4 + 2 excluded by rights: all small, so none is printed exactly
    assert ev["quarantined"] == ev["dropped_by_rule"] == ev["excluded_by_rights"] == "< 100"
    assert m["sources"]["measurements"]["quarantined"] == "< 100"
    for out_name, o in m["outputs"].items():
        assert o["validation"] == "passed", out_name


def test_quarantine_keeps_lines_with_reasons(published) -> None:
    _, out, _ = published
    q = pl.read_parquet(out / "quarantine" / "events" / f"date={DAY}" / "*.parquet")
    assert q.height == 5
    assert set(q["reason"]) >= {
        "malformed JSON",
        "invalid UTF-8",
        "missing required field ts",
        "field amount_jpy: not a valid int",
    }
    assert q["raw"].null_count() == 0


def test_work_directory_is_removed(published) -> None:
    _, out, _ = published
    assert not (out / "_work").exists() or not any((out / "_work").iterdir())
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())


def test_no_planted_pii_or_linking_value_anywhere(published) -> None:
    _, out, proc = published
    needles = list(PLANTED.values()) + [TEST_KEY]
    logs = proc.stdout + proc.stderr
    for needle in needles:
        assert needle not in logs
    for path, text in all_text_under(out / "published", out / "reports"):
        for needle in needles:
            assert needle not in text, f"{needle!r} leaked into {path}"


def test_reports_exist(published) -> None:
    _, out, _ = published
    reports = out / "reports" / f"date={DAY}"
    assert (reports / "data_docs" / "index.html").exists()
    html = (reports / "privacy_report.html").read_text()
    assert "daily_active_users" in html and "<svg" in html
    notice = (reports / "items_notice.md").read_text()
    assert "43" in notice and "full_name" in notice  # a deleted column is declared


def test_data_docs_list_a_passed_input_suite(published) -> None:
    """The day's input metrics (landing_input, tokumei/expectations/inputs.py) are validated
    with the outputs: the day's Data Docs and the one history site list the suites passed."""
    _, out, _ = published
    rows = json.loads((out / "reports" / "data_docs" / "validations.json").read_text())
    inputs = [r for r in rows if r["suite"].startswith("landing_input")]
    assert sorted(r["suite"] for r in inputs) == ["landing_input", "landing_input__dq"]
    assert all(r["success"] for r in inputs)
    day_index = (out / "reports" / f"date={DAY}" / "data_docs" / "index.html").read_text()
    assert "landing_input" in day_index and "✘ failed" not in day_index


def test_refuses_to_start_without_a_key(handmade_landing: Path, tmp_path: Path) -> None:
    proc = tokumei(*run_args(handmade_landing, tmp_path / "out"), key=None)
    assert proc.returncode == 1
    assert "TOKUMEI_PSEUDONYM_KEY" in proc.stderr
    assert not (tmp_path / "out" / "published").exists()


def test_unclassified_column_stops_before_writing(handmade_landing: Path, tmp_path: Path) -> None:
    extra = handmade_landing / "cookies" / f"date={DAY}" / "part-9.jsonl"
    extra.write_text(json.dumps({"cookie_id": "c-x", "fingerprint": "abc"}) + "\n")
    seal_landing(handmade_landing)
    proc = tokumei(*run_args(handmade_landing, tmp_path / "out"))
    assert proc.returncode == 1
    assert "fingerprint" in proc.stderr and "cookies" in proc.stderr
    assert not (tmp_path / "out" / "published").exists()


def test_failed_validation_publishes_nothing(handmade_landing: Path, tmp_path: Path) -> None:
    # A producer put an email into a quasi-identifier: generalization keeps the category, the
    # GX PII check catches it, and the run must publish nothing (and print no value). Every
    # user has it: the statistics tables count a gender outside their public grid as unknown,
    # so only the record-level release, where a class of k persons shares it, can carry it
    # (a second page per user gives the classes the two url_templates l-diversity needs).
    con = sqlite3.connect(handmade_landing / "ops.db")
    con.execute("UPDATE users SET gender = ?", (PLANTED["email2"],))
    cart = [
        {"ts": f"{DAY}T12:00:00+09:00", "event": "page_view", "cookie_id": f"cookie-{i:04d}"}
        | {"user_id": f"user-{i:04d}", "url": "https://shop.example.jp/cart"}
        for i in range(40)
        if i != 7
    ]
    extra = handmade_landing / "events" / f"date={DAY}" / "part-3.jsonl"
    extra.write_text("".join(json.dumps(e) + "\n" for e in cart))
    seal_landing(handmade_landing)
    con.commit()
    con.close()
    out = tmp_path / "out"
    proc = tokumei(*run_args(handmade_landing, out))
    assert proc.returncode == 1
    assert "validation failed" in proc.stderr
    assert PLANTED["email2"] not in proc.stderr + proc.stdout
    assert not (out / "published").exists() or not any((out / "published").rglob("*.parquet"))
    failed = list((out / "reports" / f"date={DAY}" / "failed").glob("*.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["status"] == "failed"
    for path, text in all_text_under(out / "reports"):
        assert PLANTED["email2"] not in text, path


def test_pii_in_an_insensitive_column_stops_the_run(handmade_landing: Path, tmp_path: Path) -> None:
    # app_version is `insensitive`: kept as is, so PII there must stop the run, naming the column
    # and entity type but never the value.
    ev = handmade_landing / "events" / f"date={DAY}" / "part-2.jsonl"
    ev.write_text(
        json.dumps(
            {
                "ts": f"{DAY}T10:00:00+09:00",
                "event": "click",
                "cookie_id": "c-1",
                "app_version": PLANTED["email2"],
            }
        )
        + "\n"
    )
    seal_landing(handmade_landing)
    out = tmp_path / "out"
    proc = tokumei(*run_args(handmade_landing, out))
    assert proc.returncode == 1
    assert "app_version" in proc.stderr and "EMAIL" in proc.stderr
    assert PLANTED["email2"] not in proc.stderr + proc.stdout
    assert not (out / "published").exists()


def test_manifest_records_discovery_rates(published) -> None:
    _, out, _ = published
    m = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    rates = m["steps"]["discover"]["events"]
    assert rates["url"]["URL"] == 1.0  # 120 of 120 sampled page-view URLs
    # a rate is printed from the printed counts of hits and sample (rows base 100): the one
    # full-width phone number among 40 search texts printed 0.025 = 1/40 before; now found,
    # no share (the sample is below the base)
    assert rates["search_query"]["JP_PHONE"] == "> 0"
    assert rates["inquiry_text"]["JP_MY_NUMBER"] == "> 0"


def test_output_is_identical_for_any_number_of_partitions(published, tmp_path: Path) -> None:
    landing, out1, _ = published
    out3 = tmp_path / "out3"
    proc = tokumei(*run_args(landing, out3), "--partitions", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in (
        "daily_active_users",
        "page_views",
        "measurements_summary",
        "sessions",
        "search_volume",
        "funnel",
        "revenue",
    ):
        a = read_published(out1, "stats", table)
        b = read_published(out3, "stats", table)
        assert a.equals(b), table
    m = json.loads((out3 / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert m["steps"]["partitions"] == 3


def test_anonymized_records_are_k_anonymous_over_persons(published) -> None:
    _, out, _ = published
    records = read_published(out, "anonymized", "page_views", DAY)
    assert records.columns == ["age", "gender", "prefecture", "device_class", "url_template"]
    m = json.loads((out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    o = m["outputs"]["anonymized/page_views"]
    assert o["validation"] == "passed" and o["rows"] == records.height
    # 36 allowed known persons x 3 page views (two of /items/:id, then /cart): every class
    # holds the 2 distinct url_template values records.l needs, so the records are released
    # (before the landing's cart view, nothing could be). Tokyo's 26 and Osaka's 10 allowed
    # persons are two classes of >= k persons once age and gender are generalized.
    assert m["anonymized"]["released"] is True and records.height == 36 * 3
    qis = ["age", "gender", "prefecture", "device_class"]
    classes = records.group_by(qis).agg(
        pl.len().alias("records"), pl.col("url_template").n_unique().alias("distinct")
    )
    assert classes.height == m["anonymized"]["classes"] == 2
    assert classes["distinct"].min() >= 2 and classes["records"].min() >= 10 * 3
    assert set(records["url_template"]) == {
        "shop.example.jp/items/:id",
        "shop.example.jp/cart",
    }
    assert m["anonymized"]["transformation"] == o["transformation"]
    from tokumei.release.manifest import ROW_BASE, printed_interval

    lo, hi = printed_interval(o["withheld_suppressed_records"], ROW_BASE)
    assert lo <= 36 * 3 - records.height <= hi
    con = catalog.connect(out / "published")
    assert con.execute("select count(*) from anonymized_page_views").fetchone()[0] == records.height


def test_record_release_reports_reidentification_risk(published) -> None:
    """Issue 19: prosecutor, journalist and marketer risk of anonymized/page_views in the
    manifest and the privacy report. Classes: Tokyo's 26 and Osaka's 10 released persons; the
    population is the persons table (Osaka has at most 14 known persons with demographics)."""
    from tokumei.release.manifest import printed_risk

    _, out, _ = published
    reports = out / "reports" / f"date={DAY}"
    m = json.loads((reports / "manifest.json").read_text())
    r = m["anonymized"]["reidentification_risk"]
    assert "records" not in r  # the person-class count is not printed
    p, j, mk = r["prosecutor"], r["journalist"], r["marketer"]
    assert p["highest"] == printed_risk(1 / 10) and p["lowest"] == printed_risk(1 / 26)
    assert p["average"] == printed_risk(2 / 36) and p["records_at_risk_share"] == 0.0
    assert printed_risk(1 / 14) <= j["highest"] <= p["highest"]
    assert j["records_at_risk_share"] == 0.0
    assert printed_risk((26 / 26 + 10 / 14) / 36) <= mk["average"] <= p["average"]
    html = (reports / "privacy_report.html").read_text()
    table = html[html.index('id="reidentification-risk"') :]
    table = table[: table.index("</table>")]
    for model in ("prosecutor", "journalist", "marketer"):
        assert model in table
    assert f">{p['highest']:.3g}<" in table and f">{mk['average']:.3g}<" in table


def test_every_cell_count_the_report_prints_matches_the_published_files(published) -> None:
    """Issue 18: the privacy report's cells table and record-level figures tell the truth,
    checked against the published Parquet (not against the manifest the report reads)."""
    import re

    from tokumei.release.manifest import ROW_BASE, printed_interval
    from tokumei.stats.tables import TABLES

    _, out, _ = published
    html = (out / "reports" / f"date={DAY}" / "privacy_report.html").read_text()
    section = html[html.index('id="suppression"') : html.index('id="disclosure"')]
    num = r'<td class="num">([\d,]+)</td>\s*'
    rows = re.findall(r"<tr><td>([a-z_]+)</td>" + num + num + num, section)
    assert rows, "no cells table in the report"
    seen = set()
    for table, cells, pub, supp in rows:
        df = read_published(out, "stats", table, DAY)
        counts = [c for c in TABLES[table].counts if c in df.columns]
        want_cells = df.height * len(counts)
        want_pub = sum(df[c].drop_nulls().len() for c in counts)
        got = [int(v.replace(",", "")) for v in (cells, pub, supp)]
        assert got == [want_cells, want_pub, want_cells - want_pub], table
        seen.add(table)
    assert seen == {n.split("/")[1] for n in published_tables(out) if n.startswith("stats/")}
    # the record-level release: rows published as printed (rounded to ROW_BASE) hold the truth
    records = read_published(out, "anonymized", "page_views", DAY)
    kanon = html[html.index('id="k-anonymity"') : html.index('id="discovery"')]
    m = re.search(r"<dt>rows published</dt><dd>([^<]+)</dd>", kanon)
    assert m, "the report does not say how many records were published"
    from html import unescape

    printed = unescape(m.group(1)).replace(",", "")
    # published rows are no secret (they are the file); a band would have to hold the truth
    if printed.isdigit():
        assert int(printed) == records.height
    else:
        lo, hi = printed_interval(printed, ROW_BASE)
        assert lo <= records.height <= hi


def test_long_steps_print_progress_without_values(published) -> None:
    """Issue 16: `tokumei run` prints progress within long steps (files read, lines,
    partitions), counts and landing-relative names only."""
    _, _, proc = published
    lines = [ln for ln in proc.stderr.splitlines() if ln.lstrip().startswith("· ")]
    assert any(ln.strip().startswith("· extract: devices: ") and "files read" in ln for ln in lines)
    assert any(ln.strip().startswith("· ingest: ") and " files: " in ln for ln in lines)
    assert any("· scrub: events partition 0: 1/1 scrubbed" in ln for ln in lines)
    for needle in PLANTED.values():
        assert all(needle not in ln for ln in lines)
