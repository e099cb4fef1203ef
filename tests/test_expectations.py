"""Tests of the GX layer: suites built from specs, custom expectations, and leak-free Data Docs.

GX costs ~9 s to import and ~1-2 s per Data Docs build, so the GX tests share one module-scoped
run: a passing output of each kind plus one output per kind of violation (each named after
its violation, raw "canary" values planted in the failing columns), whose Data Docs are then
grepped for the canaries.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import socket
import subprocess
import tempfile
import unicodedata
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from headless import CHROMIUM, chromium

from tokumei.expectations.patterns import PII_ANY, PII_PATTERNS, find_pii_kinds
from tokumei.expectations.specs import (
    CLASS_PERSONS_COLUMN,
    ColumnSpec,
    OutputSpec,
    SpecError,
    add_class_persons,
    strip_validation_columns,
)

EMAIL_CANARY = "leak.canary@example.com"
PHONE_CANARY = "０９０−９８７６−５４３２"
MYNUMBER_CANARY = "498765432109"
CANARIES = (EMAIL_CANARY, PHONE_CANARY, MYNUMBER_CANARY)

DAY = dt.date(2024, 1, 5)


# ------------------------------------------------------------------------------------------------
# specs and frames
# ------------------------------------------------------------------------------------------------


def stats_spec(name: str = "daily_active_users") -> OutputSpec:
    return OutputSpec(
        name=name,
        kind="stats",
        columns=[
            ColumnSpec("date", "date", nullable=False),
            ColumnSpec("prefecture", "string", nullable=False),
            ColumnSpec("device_class", "string", nullable=False, allowed=["mobile", "desktop"]),
            ColumnSpec("users", "int", nullable=True, min=0),
            ColumnSpec("share", "float", nullable=True, min=0.0, max=1.0),
        ],
        forbidden_columns=["user_id", "cookie_id", "email", "phone"],
        pii_checked_columns=["prefecture", "device_class"],
        count_columns=["users"],
        min_cell=10,
        max_suppressed_share=0.5,
    )


def stats_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [DAY] * 4,
            "prefecture": ["東京都", "大阪府", "北海道", "その他"],
            "device_class": ["mobile", "desktop", "mobile", "desktop"],
            "users": pl.Series([120, 15, None, 10], dtype=pl.UInt32),
            "share": [0.7, 0.2, None, 0.1],
        }
    )


def anon_spec(name: str = "profiles", k: int = 3) -> OutputSpec:
    return OutputSpec(
        name=name,
        kind="anonymized",
        columns=[
            ColumnSpec("age_band", "string", nullable=False),
            ColumnSpec("gender", "string", nullable=True, allowed=["female", "male", "other"]),
            ColumnSpec("search_query", "string", nullable=True),
            ColumnSpec("suppressed", "bool", nullable=False),
        ],
        forbidden_columns=["user_id", "cookie_id", "device_id"],
        pii_checked_columns=["search_query"],
        k=k,
        qi_columns=["age_band", "gender"],
        person_count_column=CLASS_PERSONS_COLUMN,
        max_suppressed_share=0.25,
        suppressed_flag_column="suppressed",
    )


def anon_internal() -> pl.DataFrame:
    """Internal frame that still has the person key: 3 persons in each of 3 classes."""
    return pl.DataFrame(
        {
            "person": [1, 2, 3, 3, 4, 5, 6, 7, 8, 9],
            "age_band": ["20-29"] * 4 + ["30-39"] * 3 + ["90+"] * 3,
            "gender": ["female"] * 4 + ["male"] * 3 + [None] * 3,
            "search_query": [
                "靴 メンズ",
                "<EMAIL_ADDRESS> 問い合わせ",
                None,
                "傘",
                "2024-01-05",
                "本",
                "東京 天気",
                "10.0",
                "/items/:id",
                "90+",
            ],
            "suppressed": [False] * 9 + [True],
        }
    )


def anon_frame(df: pl.DataFrame | None = None) -> pl.DataFrame:
    df = anon_internal() if df is None else df
    return add_class_persons(df, ["age_band", "gender"], "person").drop("person")


def _violations() -> dict[str, tuple[pl.DataFrame, OutputSpec, set[tuple[str, str | None]]]]:
    """name → (frame, spec, {(expectation_type, column)} that must be among the failures)."""
    s = stats_frame()
    v: dict[str, tuple[pl.DataFrame, OutputSpec, set[tuple[str, str | None]]]] = {}

    def add(
        name: str, df: pl.DataFrame, spec: OutputSpec, must: set[tuple[str, str | None]]
    ) -> None:
        v[name] = (df, replace(spec, name=name), must)

    add(
        "forbidden_column",
        s.with_columns(email=pl.lit(EMAIL_CANARY)),
        stats_spec(),
        {("expect_table_columns_to_exclude", None), ("expect_table_columns_to_match_set", None)},
    )
    add(
        "count_under_min_cell",
        s.with_columns(users=pl.Series([120, 15, None, 9], dtype=pl.UInt32)),
        stats_spec(),
        {("expect_column_values_to_be_between", "users")},
    )
    add(
        "email_in_string",
        s.with_columns(
            prefecture=pl.Series(["東京都", f"連絡先{EMAIL_CANARY}まで", "北海道", "沖縄"])
        ),
        stats_spec(),
        {("expect_column_values_to_not_match_regex_list", "prefecture")},
    )
    add(
        "fullwidth_phone_in_string",
        anon_frame(
            anon_internal().with_columns(
                search_query=pl.Series([None] * 5 + [f"電話{PHONE_CANARY}"] + [None] * 4)
            )
        ),
        anon_spec(),
        {("expect_column_values_to_not_match_regex_list", "search_query")},
    )
    add(
        "mynumber_in_string",
        anon_frame(
            anon_internal().with_columns(search_query=pl.Series([MYNUMBER_CANARY] + [None] * 9))
        ),
        anon_spec(),
        {("expect_column_values_to_not_match_regex_list", "search_query")},
    )
    add(
        "wrong_dtype",
        s.with_columns(users=pl.Series(["120", "15", None, EMAIL_CANARY])),
        stats_spec(),
        {("expect_column_values_to_be_in_type_list", "users")},
    )
    add(
        "date_as_datetime",
        s.with_columns(date=pl.lit(dt.datetime(2024, 1, 5))),
        stats_spec(),
        {("expect_column_values_to_be_in_type_list", "date")},
    )
    add(
        "missing_column",
        s.drop("device_class"),
        stats_spec(),
        {("expect_column_to_exist", "device_class"), ("expect_table_columns_to_match_set", None)},
    )
    add(
        "null_in_non_nullable",
        s.with_columns(prefecture=pl.Series(["東京都", None, "北海道", "沖縄"])),
        stats_spec(),
        {("expect_column_values_to_not_be_null", "prefecture")},
    )
    add(
        "value_not_allowed",
        s.with_columns(device_class=pl.Series(["mobile", "tablet", "mobile", "desktop"])),
        stats_spec(),
        {("expect_column_values_to_be_in_set", "device_class")},
    )
    # 30-39/male keeps 3 rows but now only 2 persons (persons 5 and 6 are one person).
    add(
        "class_under_k",
        anon_frame(anon_internal().with_columns(person=pl.Series([1, 2, 3, 3, 4, 5, 5, 7, 8, 9]))),
        anon_spec(),
        {("expect_qi_classes_to_have_at_least_k_persons", None)},
    )
    # A class-size column that claims more persons than the class has rows cannot be trusted.
    add(
        "class_size_column_inconsistent",
        anon_frame().with_columns(pl.lit(50, dtype=pl.UInt32).alias(CLASS_PERSONS_COLUMN)),
        anon_spec(),
        {("expect_qi_classes_to_have_at_least_k_persons", None)},
    )
    add(
        "suppressed_share_over_budget",
        anon_frame(anon_internal().with_columns(suppressed=pl.Series([True] * 3 + [False] * 7))),
        anon_spec(),
        {("expect_suppressed_share_to_be_at_most", "suppressed")},
    )
    add(
        "suppressed_cells_over_budget",
        s.with_columns(users=pl.Series([None, None, None, 10], dtype=pl.UInt32)),
        stats_spec(),
        {("expect_column_values_to_not_be_null", "users")},
    )
    return v


VIOLATIONS = _violations()


# ------------------------------------------------------------------------------------------------
# fixtures: the two GX runs
# ------------------------------------------------------------------------------------------------


@dataclass
class Run:
    report: Any
    root: Path
    docs_dir: Path
    connect_attempts: list[Any]


def _isolated_run(
    tmp_root: Path,
    outputs: dict[str, pl.DataFrame],
    specs: dict[str, OutputSpec],
    run_name: str,
) -> Run:
    """Run validate_outputs with cwd/HOME/TMPDIR inside ``tmp_root`` and the network cut off."""
    from tokumei.expectations.runner import validate_outputs

    attempts: list[Any] = []

    def no_connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled in tests")

    def no_create_connection(address: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled in tests")

    (tmp_root / "home").mkdir()
    (tmp_root / "tmp").mkdir()
    docs_dir = tmp_root / "docs"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_root)
        mp.setenv("HOME", str(tmp_root / "home"))
        mp.setenv("TMPDIR", str(tmp_root / "tmp"))
        mp.setattr(tempfile, "tempdir", str(tmp_root / "tmp"))
        mp.setattr(socket.socket, "connect", no_connect)
        mp.setattr(socket, "create_connection", no_create_connection)
        report = validate_outputs(outputs, specs, docs_dir, run_name)
    return Run(report, tmp_root, docs_dir, attempts)


@pytest.fixture(scope="module")
def gx_loaded() -> None:
    """Pay GX's import once per module (every GX test depends on this)."""
    import tokumei.expectations.custom  # noqa: F401
    import tokumei.expectations.runner  # noqa: F401


GOOD = ("daily_active_users", "profiles")


@pytest.fixture(scope="module")
def gx_run(gx_loaded: None, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One GX run for the module: the passing outputs, one output per violation, one output
    without a spec. Outputs are validated independently, so mixing them loses nothing."""
    outputs = {"daily_active_users": stats_frame(), "profiles": anon_frame()}
    specs = {"daily_active_users": stats_spec(), "profiles": anon_spec()}
    outputs |= {name: df for name, (df, _, _) in VIOLATIONS.items()}
    specs |= {name: spec for name, (_, spec, _) in VIOLATIONS.items()}
    outputs["no_spec_output"] = stats_frame()
    return _isolated_run(tmp_path_factory.mktemp("gx"), outputs, specs, "2024-01-05")


# ------------------------------------------------------------------------------------------------
# GX tests
# ------------------------------------------------------------------------------------------------


def test_good_outputs_pass(gx_run: Run) -> None:
    from tokumei.expectations.runner import build_expectations

    for name in GOOD:
        out = gx_run.report.outputs[name]
        assert out.passed, out.failed_expectations
        assert out.failed_expectations == []
    # every expectation of the suite was evaluated, the custom ones included
    assert gx_run.report.outputs["profiles"].evaluated == len(build_expectations(anon_spec()))
    assert gx_run.report.outputs["daily_active_users"].evaluated == len(
        build_expectations(stats_spec())
    )


def test_report_passes_only_when_every_output_passes(gx_run: Run) -> None:
    from tokumei.expectations.runner import ValidationReport

    good = {n: gx_run.report.outputs[n] for n in GOOD}
    assert ValidationReport("r", good, gx_run.report.docs_index).passed
    assert not gx_run.report.passed
    assert not ValidationReport("r", {}, gx_run.report.docs_index).passed


def test_data_docs_written_only_into_docs_dir(gx_run: Run) -> None:
    assert gx_run.report.docs_index == gx_run.docs_dir / "index.html"
    assert gx_run.report.docs_index.is_file()
    pages = sorted(p.relative_to(gx_run.docs_dir) for p in gx_run.docs_dir.rglob("*.html"))
    validated = [n for n in gx_run.report.outputs if n != "no_spec_output"]
    for name in validated:
        assert any(p.parts[:2] == ("validations", name) for p in pages), name
    index = gx_run.report.docs_index.read_text(encoding="utf-8")
    assert all(name in index for name in validated)
    outside = [
        p for p in gx_run.root.rglob("*") if p.is_file() and gx_run.docs_dir not in p.parents
    ]
    assert outside == []


def test_gx_makes_no_network_connection(gx_run: Run) -> None:
    assert gx_run.connect_attempts == []
    assert os.environ.get("GX_ANALYTICS_ENABLED") == "False"


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_violation_fails_with_named_expectation(gx_run: Run, name: str) -> None:
    out = gx_run.report.outputs[name]
    assert not out.passed
    got = {(f.expectation_type, f.column) for f in out.failed_expectations}
    _, _, must = VIOLATIONS[name]
    assert must <= got, got


def test_violations_fail_nothing_else_of_note(gx_run: Run) -> None:
    """Each violating frame differs from a passing one in one way: failures stay targeted."""
    pii = gx_run.report.outputs["email_in_string"].failed_expectations
    assert [(f.expectation_type, f.column) for f in pii] == [
        ("expect_column_values_to_not_match_regex_list", "prefecture")
    ]
    under = gx_run.report.outputs["count_under_min_cell"].failed_expectations
    assert len(under) == 1
    forbidden = gx_run.report.outputs["forbidden_column"].failed_expectations
    assert {f.columns for f in forbidden} == {("email",)}
    missing = gx_run.report.outputs["missing_column"].failed_expectations
    assert ("expect_table_columns_to_match_set", ("device_class",)) in {
        (f.expectation_type, f.columns) for f in missing
    }


def test_report_fails_closed(gx_run: Run) -> None:
    report = gx_run.report
    assert not report.passed
    assert [f.expectation_type for f in report.outputs["no_spec_output"].failed_expectations] == [
        "missing_spec"
    ]


def test_report_carries_no_values(gx_run: Run) -> None:
    text = repr(gx_run.report)
    for canary in CANARIES:
        assert canary not in text


def _forms(value: str) -> set[str]:
    """Ways a value could be written into HTML/JSON/URLs by a docs renderer."""
    nfkc = unicodedata.normalize("NFKC", value)
    forms = {value, nfkc, re.sub(r"\D", "", nfkc) or value}
    for v in list(forms):
        forms |= {
            html.escape(v),
            html.escape(v, quote=False),
            "".join(f"&#{ord(c)};" for c in v),
            "".join(f"&#x{ord(c):x};" for c in v),
            urllib.parse.quote(v),
            urllib.parse.quote_plus(v),
            urllib.parse.quote(v, safe=""),
            json.dumps(v)[1:-1],
            json.dumps(v, ensure_ascii=False)[1:-1],
        }
    return {f for f in forms if len(f) >= 8}


def _leaks(docs_dir: Path, values: tuple[str, ...]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in docs_dir.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        low = text.lower()
        for value in values:
            for form in _forms(value):
                if form.lower() in low:
                    found.append((str(path.relative_to(docs_dir)), value[:4] + "…"))
        if "canary" in low:
            found.append((str(path.relative_to(docs_dir)), "canary token"))
    return found


def test_data_docs_never_show_raw_values(gx_run: Run) -> None:
    pages = list(gx_run.docs_dir.rglob("*.html"))
    assert any("email_in_string" in str(p) for p in pages)
    assert _leaks(gx_run.docs_dir, CANARIES) == []


def test_data_docs_show_no_data_fingerprint(gx_run: Run) -> None:
    for page in gx_run.docs_dir.rglob("*.html"):
        assert "pandas_data_fingerprint" not in page.read_text(encoding="utf-8"), page.name


def test_data_docs_show_no_exception_tracebacks(gx_run: Run) -> None:
    """Exceptions (missing column, wrong dtype) are rendered without tracebacks or free text."""
    page = next((gx_run.docs_dir / "validations" / "missing_column").rglob("*.html"))
    text = page.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in text
    assert "does not exist" in text  # the one value-free message that is kept


# ------------------------------------------------------------------------------------------------
# offline Data Docs: no other host referenced, a static index that needs no JavaScript
# ------------------------------------------------------------------------------------------------

# Written independently of tokumei.expectations.offline: any src/href/url()/@import to a host.
_OTHER_HOST = re.compile(
    r"""(?:\b(?:src|href|srcset|poster|action|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import\s+["']?(?:https?:)?//)""",
    re.IGNORECASE,
)


def _pages_referencing_other_hosts(site: Path) -> list[str]:
    return sorted(
        str(p.relative_to(site))
        for p in site.rglob("*")
        if p.is_file()
        and p.suffix in (".html", ".css", ".js")
        and _OTHER_HOST.search(p.read_text(encoding="utf-8", errors="replace"))
    )


def test_data_docs_reference_no_other_host(gx_run: Run) -> None:
    pages = list(gx_run.docs_dir.rglob("*.html"))
    assert len(pages) > len(VIOLATIONS)  # index + suites + one page per validation
    assert _pages_referencing_other_hosts(gx_run.docs_dir) == []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), page.name
        assert "onclick" not in text.lower(), page.name


def test_offline_rewrite_removes_what_gx_templates_load() -> None:
    """Negative control on GX's own markup: the independent check sees it, the rewrite drops
    it and keeps the link text and the status."""
    from tokumei.expectations.offline import offline_html

    raw = (
        '<html><head><link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/b.css"/>'
        "<style>.x{background:url('https://great-expectations-web-assets.s3.amazonaws.com/l.png')}"
        '</style></head><body><script src="https://code.jquery.com/jquery.js"></script>'
        "<script>$('#t').bootstrapTable({})</script>"
        '<img src="//cdn.example/logo.png" alt="x"/>'
        '<p>made with <a href="https://greatexpectations.io">Great Expectations</a></p>'
        '<label class="btn" onclick="showAll()">x</label>'
        '<i class="fas fa-check-circle text-success"></i> <i class="fas fa-times text-danger"></i>'
        "</body></html>"
    )
    assert _OTHER_HOST.search(raw)
    out = offline_html(raw)
    assert not _OTHER_HOST.search(out)
    assert "<script" not in out and "onclick" not in out
    assert "Great Expectations" in out and "✔" in out and "✘" in out


def test_site_with_a_reference_left_fails_closed(tmp_path: Path) -> None:
    """A reference the rewrite does not know (here a video poster) stops the build."""
    from tokumei.expectations.offline import make_site_offline

    (tmp_path / "validations").mkdir()
    (tmp_path / "validations" / "p.html").write_text(
        '<html><head></head><body><video poster="https://cdn.example/p.png"></video></body></html>'
    )
    with pytest.raises(RuntimeError, match="validations/p.html"):
        make_site_offline(tmp_path, [], [], "t")


def test_static_index_lists_every_validation(gx_run: Run) -> None:
    index = gx_run.report.docs_index.read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="tk-validation">(.*?)</tr>', index, re.DOTALL)
    validated = {n for n in gx_run.report.outputs if n != "no_spec_output"}
    assert len(rows) == len(validated)
    for name in validated:
        (row,) = [r for r in rows if f">{name}</a>" in r]
        status = "failed" if not gx_run.report.outputs[name].passed else "passed"
        assert status in row, name
        href = re.search(r'href="([^"]+)"', row)
        assert href and (gx_run.docs_dir / html.unescape(href.group(1))).is_file()


def _dump_dom_offline(url: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with the network cut off (tests/headless.py)."""
    return chromium(["--dump-dom", url], profile)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_data_docs_index_lists_validations_in_offline_chromium(gx_run: Run, tmp_path: Path) -> None:
    res = _dump_dom_offline(gx_run.report.docs_index.resolve().as_uri(), tmp_path / "p1")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = re.findall(r'<tr class="tk-validation">(.*?)</tr>', res.stdout, re.DOTALL)
    validated = {n for n in gx_run.report.outputs if n != "no_spec_output"}
    assert len(rows) == len(validated)
    assert {n for n in validated if any(f">{n}</a>" in r for r in rows)} == validated
    page = next((gx_run.docs_dir / "validations" / "email_in_string").rglob("*.html"))
    page_res = _dump_dom_offline(page.resolve().as_uri(), tmp_path / "p2")
    assert page_res.returncode == 0, page_res.stderr[-2000:]
    assert "prefecture" in page_res.stdout and "✘" in page_res.stdout  # the failed check shows
    for err in (res.stderr, page_res.stderr):
        assert "Uncaught" not in err
        assert not re.search(r"CONSOLE[:(]|Refused to|ERR_", err), err[-2000:]


# ------------------------------------------------------------------------------------------------
# one Data Docs site with the history of runs
# ------------------------------------------------------------------------------------------------


@dataclass
class History:
    runs: list[Run]
    site: Path


@pytest.fixture(scope="module")
def history_run(gx_loaded: None, tmp_path_factory: pytest.TempPathFactory) -> History:
    """Three runs (two dates, the second date twice) share one history site; the first run
    has a failing output with a canary."""
    from tokumei.expectations.runner import validate_outputs

    root = tmp_path_factory.mktemp("history")
    site = root / "reports" / "data_docs"
    leaky, leaky_spec, _ = VIOLATIONS["email_in_string"]
    plan = [
        ("2024-01-05", {"daily_active_users": stats_frame(), "email_in_string": leaky}),
        ("2024-01-06", {"daily_active_users": stats_frame()}),
        ("2024-01-06", {"daily_active_users": stats_frame()}),
    ]
    specs = {"daily_active_users": stats_spec(), "email_in_string": leaky_spec}
    runs = []
    for i, (run_name, outputs) in enumerate(plan):
        docs = root / f"run{i}" / "data_docs"
        report = validate_outputs(outputs, specs, docs, run_name, history_dir=site)
        runs.append(Run(report, root, docs, []))
    return History(runs, site)


def _index_rows(index: Path) -> list[str]:
    return re.findall(
        r'<tr class="tk-validation">(.*?)</tr>', index.read_text(encoding="utf-8"), re.DOTALL
    )


def test_history_site_accumulates_every_run(history_run: History) -> None:
    index = history_run.site / "index.html"
    assert all(r.report.history_index == index for r in history_run.runs)
    rows = _index_rows(index)
    assert len(rows) == 4  # 2 + 1 + 1 validations, the re-run of a date kept as its own row
    assert sum("2024-01-05" in r for r in rows) == 2
    assert sum("2024-01-06" in r for r in rows) == 2
    assert sum("failed" in r for r in rows) == 1
    for row in rows:
        href = re.search(r'href="([^"]+)"', row)
        assert href and (history_run.site / html.unescape(href.group(1))).is_file()
    assert (history_run.site / "expectations" / "email_in_string.html").is_file()
    # each run's own docs list that run only
    assert len(_index_rows(history_run.runs[1].report.docs_index)) == 1


def test_history_site_is_offline_and_value_free(history_run: History) -> None:
    assert _pages_referencing_other_hosts(history_run.site) == []
    assert _leaks(history_run.site, CANARIES) == []
    pages = list(history_run.site.rglob("*.html"))
    assert len(pages) >= 4 + 2 + 1  # validations, suites, index


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_history_index_lists_every_run_in_offline_chromium(
    history_run: History, tmp_path: Path
) -> None:
    res = _dump_dom_offline((history_run.site / "index.html").resolve().as_uri(), tmp_path / "p")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = re.findall(r'<tr class="tk-validation">(.*?)</tr>', res.stdout, re.DOTALL)
    assert len(rows) == 4
    assert {"2024-01-05", "2024-01-06"} <= {n for r in rows for n in re.findall(r"2024-01-0\d", r)}
    assert "Uncaught" not in res.stderr
    assert not re.search(r"CONSOLE[:(]|Refused to|ERR_", res.stderr), res.stderr[-2000:]


def test_warm_up_validates_every_kind_of_generated_expectation_and_leaves_nothing() -> None:
    """The warm-up a validate process runs ahead (``runner.warm_up``) passes both its outputs,
    custom expectations included, and keeps no folder behind."""
    import tempfile

    from tokumei.expectations.runner import warm_up

    before = set(Path(tempfile.gettempdir()).glob("tokumei-gx-warm-up-*"))
    report = warm_up()
    assert report.passed and len(report.outputs) == 2
    kinds = {f for r in report.outputs.values() for f in r.suites}
    assert kinds == {"warm_up_stats", "warm_up_records"}
    assert all(r.evaluated >= 8 for r in report.outputs.values())
    assert set(Path(tempfile.gettempdir()).glob("tokumei-gx-warm-up-*")) == before


def test_exception_messages_quoting_data_are_withheld() -> None:
    from tokumei.expectations.runner import WITHHELD, _scrub_exception_info

    info = {
        "MetricConfigurationID(x)": {
            "exception_message": f"could not convert string to float: '{EMAIL_CANARY}'",
            "exception_traceback": f"Traceback ...\nValueError: '{EMAIL_CANARY}'",
            "raised_exception": True,
        },
        "ok": {
            "exception_message": 'Error: The column "users" in BatchData does not exist.',
            "exception_traceback": None,
            "raised_exception": True,
        },
    }
    scrubbed = _scrub_exception_info(info)
    assert EMAIL_CANARY not in json.dumps(scrubbed, ensure_ascii=False)
    assert scrubbed["MetricConfigurationID(x)"]["exception_message"] == WITHHELD
    assert scrubbed["ok"]["exception_message"] == info["ok"]["exception_message"]


def test_validation_frame_keeps_type_families() -> None:
    from tokumei.expectations.runner import to_validation_frame

    pdf = to_validation_frame(
        pl.DataFrame(
            {
                "i": pl.Series([1, None], dtype=pl.UInt16),
                "f": [0.5, None],
                "s": pl.Series(["a", None], dtype=pl.Categorical),
                "b": [True, None],
                "d": [DAY, None],
                "t": [dt.datetime(2024, 1, 5), None],
            }
        )
    )
    got = {c: str(t) for c, t in pdf.dtypes.items()}
    assert got == {
        "i": "Int64",
        "f": "Float64",
        "s": "string",
        "b": "boolean",
        "d": "datetime64[s]",
        "t": "timestamp[us][pyarrow]",
    }
    assert pdf["i"].isna().tolist() == [False, True]


def test_leak_check_detects_values_under_a_verbose_result_format(
    gx_loaded: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control: with GX's BASIC format the canary *does* reach Data Docs, so the grep
    above is able to fail — and the SUMMARY/0 format is what keeps it out."""
    import tokumei.expectations.runner as runner

    monkeypatch.setattr(runner, "RESULT_FORMAT", {"result_format": "BASIC"})
    df, spec, _ = VIOLATIONS["email_in_string"]
    run = _isolated_run(tmp_path, {"leaky": df}, {"leaky": replace(spec, name="leaky")}, "ctl")
    assert not run.report.passed
    assert _leaks(run.docs_dir, (EMAIL_CANARY,)) != []


# ------------------------------------------------------------------------------------------------
# no-GX unit tests: patterns and specs
# ------------------------------------------------------------------------------------------------

PII_POSITIVE = {
    EMAIL_CANARY: "email",
    "メールはtaro@example.co.jpです": "email",
    "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ": "email",
    PHONE_CANARY: "phone_jp",
    "090-1234-5678": "phone_jp",
    "03(1234)5678": "phone_jp",
    "電話0312345678まで": "phone_jp",
    "０３ー１２３４ー５６７８": "phone_jp",
    "+81 90-1234-5678": "phone_intl",
    MYNUMBER_CANARY: "my_number",
    "1234 5678 9012": "my_number",
    "４１１１１１１１１１１１１１１１": "card_number",
    "4111 1111 1111 1111": "card_number",
    "378282246310005": "card_number",
    "from 192.168.10.1 yesterday": "ipv4",
    "〒100-0001": "postal_code_jp",
    "１００−０００１": "postal_code_jp",
    "東京都文京区後楽28-11-27 パレス432": "address_jp",
    "配送先は大阪府大阪市北区梅田１丁目２番": "address_jp",
}

PII_NEGATIVE = [
    "2024-01-05",
    "2024-01-05T10:00:00+09:00",
    "/items/:id",
    "1.2.3",
    "20-29",
    "90+",
    "東京都",
    "東京都 文京区",
    "大阪府 20-29",
    "page_view",
    "10.0",
    "12345",
    "<EMAIL_ADDRESS>",
    "192.168.1.*",
    "1234567890123456789",
    "v2.14.0",
    "0.25",
    "",
]


@pytest.mark.parametrize("text", sorted(PII_POSITIVE))
def test_pii_pattern_hits(text: str) -> None:
    assert PII_POSITIVE[text] in find_pii_kinds(text)


@pytest.mark.parametrize("text", PII_NEGATIVE)
def test_pii_pattern_misses_published_shapes(text: str) -> None:
    assert find_pii_kinds(text) == []


def test_patterns_agree_between_python_re_and_re2() -> None:
    """pandas may run GX's regex on pyarrow (RE2): both engines must give the same answers."""
    texts = list(PII_POSITIVE) + PII_NEGATIVE
    arr = pa.array(texts)
    for name, rx in PII_PATTERNS.items():
        re2 = pc.match_substring_regex(arr, rx).to_pylist()
        py = [re.search(rx, t) is not None for t in texts]
        assert re2 == py, name


def test_combined_pattern_matches_exactly_when_one_pattern_does() -> None:
    """GX runs ``PII_ANY`` (one scan per column): same answer as the list, on both engines."""
    texts = list(PII_POSITIVE) + PII_NEGATIVE
    expected = [bool(find_pii_kinds(t)) for t in texts]
    assert any(expected) and not all(expected)
    assert [re.search(PII_ANY, t) is not None for t in texts] == expected
    assert pc.match_substring_regex(pa.array(texts), PII_ANY).to_pylist() == expected


def test_pandas_runs_the_combined_pattern_on_re2() -> None:
    """pandas falls back to Python ``re`` for patterns with ``\\s``, look-arounds, ``\\d`` on
    non-ASCII data ...: 15x slower on the 10M-event day's validate step. It must not."""
    column = pd.array(["東京都", "/items/:id", "２０２４"], dtype="string[pyarrow]")
    assert not column._needs_python_regex(PII_ANY)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"forbidden_columns": ["users"]},
        {"pii_checked_columns": ["users"]},
        {"count_columns": ["prefecture"]},
        {"k": 5},
        {"k": 5, "qi_columns": ["prefecture"]},
        {"qi_columns": ["nope"]},
        {"max_suppressed_share": 1.5},
        {"suppressed_flag_column": "users"},
        {"min_cell": 0},
    ],
)
def test_inconsistent_specs_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SpecError):
        replace(stats_spec(), **kwargs)


def test_column_spec_rejects_bad_bounds() -> None:
    with pytest.raises(SpecError):
        ColumnSpec("x", "string", nullable=True, min=0)
    with pytest.raises(SpecError):
        ColumnSpec("x", "int", nullable=True, min=5, max=1)
    with pytest.raises(SpecError):
        ColumnSpec("x", "datetime", nullable=True)  # type: ignore[arg-type]


def test_class_persons_counts_persons_not_rows() -> None:
    df = anon_frame()
    sizes = dict(
        zip(
            zip(df["age_band"], df["gender"], strict=True),
            df[CLASS_PERSONS_COLUMN],
            strict=True,
        )
    )
    assert sizes[("20-29", "female")] == 3  # 4 rows, 3 persons
    assert sizes[("90+", None)] == 3  # nulls form their own class
    published = strip_validation_columns(df, anon_spec())
    assert CLASS_PERSONS_COLUMN not in published.columns
    assert published.columns == ["age_band", "gender", "search_query", "suppressed"]
