"""The release tells the truth (issue 15, finding 6): a small day run end to end.

* the items notice lists exactly the datasets the release published, each with exactly the
  columns of its published file (the record-level ``anonymized/page_views`` included), and
  describes the key as kept, with the retention period of the settings;
* manifest.json, privacy_report.html and Data Docs print no count of persons or rows below
  the threshold except 0.
"""

from __future__ import annotations

import html as htmlmod
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import DAY, TEST_KEY, write_handmade_landing
from published import published_tables, read_published

from tokumei.anonymize.policy import load_policy

pytestmark = pytest.mark.slow

MIN_CELL = load_policy(Path(__file__).resolve().parent.parent / "policies").thresholds.min_cell


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    root = tmp_path_factory.mktemp("truth")
    landing = write_handmade_landing(root / "landing")
    out = root / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    mp.setenv("TOKUMEI_RETENTION_ACTIVITY_DAYS", "321")
    try:
        settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
        steps.run_all(settings.resolved(), DAY, isolate=False)
    finally:
        mp.undo()
    return out


def _published(out: Path) -> dict[str, list[str]]:
    """``kind/name`` → columns, from the tables the release actually holds."""
    return {
        name: read_published(out, *name.split("/"), DAY).columns
        for name in published_tables(out, DAY)
    }


def _notice_datasets(text: str) -> dict[str, list[str]]:
    """``### `kind/name``` headings of the notice and the items listed under each."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r"^### `((?:stats|anonymized)/[a-z_]+)`$", line):
            current = out.setdefault(m.group(1), [])
        elif line.startswith("#"):
            current = None
        elif current is not None and (m := re.match(r"^\| `([a-z_]+)` \|", line)):
            current.append(m.group(1))
    return out


def test_notice_lists_every_published_dataset_with_its_columns(release: Path) -> None:
    published = _published(release)
    assert "anonymized/page_views" in published and "stats/daily_active_users" in published
    notice = (release / "reports" / f"date={DAY}" / "items_notice.md").read_text()
    assert _notice_datasets(notice) == published
    assert "(no description)" not in notice


def test_notice_states_the_key_and_retention_as_run(release: Path) -> None:
    notice = (release / "reports" / f"date={DAY}" / "items_notice.md").read_text()
    assert "destroyed" not in notice
    assert "key is **kept** across runs" in notice and (release / "retained" / "KEY_CHECK").exists()
    assert "kept for 321 days" in notice and "保持期間 321 日" in notice


def _is_small(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < MIN_CELL


#: Where the manifest holds counts of persons or rows (not cells, levels or widths).
def _flow_counts(m: dict) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                # not counts: file counts, levels, and the landing verdicts (completeness,
                # volume ratio to earlier runs; docs/landing.md), which are words and ratios
                if k not in ("files", "transformation", "partitions", "landing"):
                    walk(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")
        else:
            found.append((path, obj))

    walk(m["sources"], "sources")
    walk(m["steps"].get("extract"), "extract")
    walk(m["steps"].get("scrub"), "scrub")
    anon = m.get("anonymized") or {}
    for key in ("suppressed", "suppressed_records", "input_records", "withheld_suppressed_records"):
        if key in anon:
            found.append((f"anonymized.{key}", anon[key]))
    for row in anon.get("class_size_histogram") or []:
        found.append(("anonymized.class_size_histogram", row[0]))
    for key in ("suppressed_persons", "withheld_suppressed_records"):
        found.append((key, m["outputs"]["anonymized/page_views"].get(key)))
    return found


def test_manifest_prints_no_small_count(release: Path) -> None:
    m = json.loads((release / "reports" / f"date={DAY}" / "manifest.json").read_text())
    counts = _flow_counts(m)
    assert len(counts) > 20
    small = [(p, v) for p, v in counts if _is_small(v)]
    assert not small
    for path, v in counts:
        if isinstance(v, str):  # a band or a size range: its lower end is the threshold or more
            assert re.fullmatch(r"< (\d+)|[\d,]+(–[\d,]+|\+)", v), (path, v)
            low = int(re.sub(r"\D.*", "", v.replace(",", "").lstrip("< ")))
            assert low >= MIN_CELL, (path, v)
    # the handmade day quarantines 5 events and excludes 18 by rights: printed as a band
    assert m["sources"]["events"]["quarantined"] == f"< {m['printed_counts']['row_base']}"


def test_privacy_report_prints_no_small_count(release: Path) -> None:
    report = (release / "reports" / f"date={DAY}" / "privacy_report.html").read_text()
    for section in ("flow", "quarantine", "scrub"):
        if f'id="{section}"' not in report:
            continue
        part = report.split(f'id="{section}"')[1].split("</section>")[0]
        text = htmlmod.unescape(re.sub(r"<[^>]+>", " ", part))
        text = re.sub(r"< \d+", " ", text)  # the bands
        for n in re.findall(r"(?<![\w.,–<-])\d[\d,]*(?![\w.,–-])", text):
            assert not _is_small(int(n.replace(",", ""))), (section, n)
    kanon = report.split('id="k-anonymity"')[1].split("</section>")[0]
    for value in re.findall(r"<dt>suppressed[^<]*</dt><dd>([^<]*)</dd>", kanon):
        assert not re.fullmatch(r"[1-9]", value), value
    assert 'id="disclosure"' in report and 'id="provision"' in report


def test_data_docs_print_no_count(release: Path) -> None:
    """Data Docs show shares and thresholds only; on a published run every share of
    unexpected values is 0 %, and no element or unexpected count is shown."""
    docs = release / "reports" / f"date={DAY}" / "data_docs"
    pages = list(docs.rglob("*.html"))
    assert pages
    for page in pages:
        raw = page.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"(element_count|unexpected_count|missing_count)\W+[1-9]", raw)
        text = htmlmod.unescape(re.sub(r"<[^>]+>", " ", raw))
        for share in re.findall(r"(\d+(?:\.\d+)?)% unexpected", text):
            assert float(share) == 0.0, page


def test_a_provision_is_in_the_ledger_and_in_the_next_report(
    release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tokumei provide` on the published day, then the next release's report lists it."""
    from typer.testing import CliRunner

    from tokumei.cli import app
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps
    from tokumei.release.provision import read_ledger

    args = ["provide", "--out", str(release), "--date", DAY, "--recipient", "Partner Lab K.K."]
    done = CliRunner().invoke(app, [*args, "--datasets", "anonymized/page_views,funnel"])
    assert done.exit_code == 0, done.output
    (entry,) = read_ledger(release)
    # what was handed over: the Delta table's columns, its date column included
    for name in ("anonymized/page_views", "stats/funnel"):
        assert entry["datasets"][name] == read_published(release, *name.split("/")).columns
    statement = (release / entry["statement"]).read_text()
    assert "匿名加工情報" in statement and "Article 44" in statement
    # the same day released again: its report lists the provision so far
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    landing = release.parent / "landing"
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=release)
    steps.run_all(settings.resolved(), DAY, isolate=False)
    report = (release / "reports" / f"date={DAY}" / "privacy_report.html").read_text()
    section = report.split('id="provision"')[1].split("</section>")[0]
    assert "Partner Lab K.K." in section and "anonymized/page_views, stats/funnel" in section
