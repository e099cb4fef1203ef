"""Per-run human-readable reports (DESIGN §5): the privacy report and the items notice.

Both are built from two inputs only — the run manifest (counts, names, versions, no values) and
the *published* tables (already anonymized) — plus, for the notice, the policy itself. Nothing
here reads a work layer, the landing zone or a key, so a report can never show more than the
release itself does.

- :func:`write_privacy_report` → ``privacy_report.html``: one self-contained file (no CDN, no
  JavaScript, no fonts, no network), charts as inline SVG drawn here in Python, so it opens
  offline on any laptop or phone and can be archived with the release as it is.
- :func:`write_items_notice` → ``items_notice.md``: the public notice of APPI Art. 43(3)
  (匿名加工情報に含まれる個人に関する情報の項目の公表), in Japanese and English, generated from the
  policy roles and hierarchies so that it cannot drift from what the engine actually does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from tokumei.anonymize.policy import Policy, Role, SourcePolicy
from tokumei.stats.tables import COLUMN_DOCS, TABLES

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Steps of the books of one source, in flow order (DESIGN §5 manifest ``sources``).
FLOW_STEPS = ("input", "quarantined", "excluded_by_rights", "dropped_by_rule", "kept")

#: Bin edges (persons) of the published cell-size histogram: roughly logarithmic, because cell
#: sizes span from the threshold to the whole day's population.
CELL_BINS = (0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

PALETTE = {
    "input": "#5b6b7f",
    "quarantined": "#c0392b",
    "excluded_by_rights": "#8e44ad",
    "dropped_by_rule": "#d68910",
    "kept": "#1e8449",
    "suppressed": "#b03a2e",
    "published": "#1f618d",
    "hist": "#2874a6",
    "rate": "#7d3c98",
}


# --------------------------------------------------------------------------------------------
# inline SVG


def _fmt(value: float) -> str:
    """Integers with thousands separators, shares as percentages, floats with 3 digits."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:.3g}"


def svg_hbar(
    rows: Sequence[tuple[str, float, str]],
    *,
    title: str,
    value_label: Any = _fmt,
    max_value: float | None = None,
) -> Markup:
    """A horizontal bar chart as inline SVG: one ``(label, value, colour)`` per bar.

    Each bar sits under its own full-width label, so long labels (source · step, column ·
    entity) stay readable on a 390 px phone without shrinking; the ``viewBox`` (about a phone's
    width) lets the browser scale the chart to the column. Every piece of text goes through
    :func:`markupsafe.escape` because labels can come from published table values.
    """
    label_h, bar_h, gap, width, value_w = 15, 12, 7, 400, 72
    chart_w = width - value_w
    step = label_h + bar_h + gap
    height = max(1, len(rows)) * step + 2
    top = max((v for _, v, _ in rows), default=0.0)
    scale_to = max_value if max_value is not None else top
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not rows:
        parts.append(f'<text x="0" y="{label_h}" class="lbl">(no data)</text>')
    for i, (label, value, colour) in enumerate(rows):
        y = i * step
        w = 0.0 if scale_to <= 0 else chart_w * float(value) / scale_to
        if value > 0:
            w = max(w, 1.5)  # a non-zero count must stay visible next to a 30,000-row bar
        short = label if len(label) <= 60 else label[:59] + "…"
        parts.append(
            f'<text x="0" y="{y + label_h - 3}" class="lbl">{escape(short)}'
            f"<title>{escape(label)}</title></text>"
        )
        parts.append(
            f'<rect x="0" y="{y + label_h}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{escape(colour)}"/>'
        )
        parts.append(
            f'<text x="{w + 4:.1f}" y="{y + label_h + bar_h - 2}" class="val">'
            f"{escape(value_label(value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


# --------------------------------------------------------------------------------------------
# privacy report: data for the template


def _flow_chart(sources: dict[str, dict[str, int]]) -> Markup:
    rows = [
        (f"{src} · {step}", float(books.get(step, 0) or 0), PALETTE[step])
        for src, books in sorted(sources.items())
        for step in FLOW_STEPS
    ]
    return svg_hbar(rows, title="rows per source and step")


def _cells(manifest: dict, tables: dict[str, pl.DataFrame]) -> list[dict[str, Any]]:
    """Published vs suppressed cells per table: the manifest's counts, else the table's."""
    names = {k.removeprefix("stats/") for k in manifest.get("outputs", {})} | set(tables)
    out = []
    for name in sorted(names):
        rec = manifest.get("outputs", {}).get(f"stats/{name}", {})
        df = tables.get(name)
        rows = rec.get("rows", df.height if df is not None else 0)
        if "suppressed_cells" in rec:
            supp = rec["suppressed_cells"]
        elif df is not None and "suppressed" in df.columns:
            supp = int(df["suppressed"].sum())
        else:
            supp = 0
        out.append({"table": name, "rows": rows, "suppressed": supp, "published": rows - supp})
    return out


def _cells_chart(cells: list[dict[str, Any]]) -> Markup:
    rows: list[tuple[str, float, str]] = []
    for c in cells:
        rows.append((f"{c['table']} · published", c["published"], PALETTE["published"]))
        rows.append((f"{c['table']} · suppressed", c["suppressed"], PALETTE["suppressed"]))
    return svg_hbar(rows, title="published and suppressed cells per table")


def _bin_label(lo: int, hi: int | None) -> str:
    return f"{lo:,}+" if hi is None else f"{lo:,}–{hi - 1:,}"


def _size_histogram(df: pl.DataFrame, count: str = "persons") -> list[tuple[str, int]]:
    """Published (non-suppressed) cell sizes binned by :data:`CELL_BINS`; leading empties cut."""
    if count not in df.columns:
        return []
    values = df.filter(pl.col(count).is_not_null())[count]
    if "suppressed" in df.columns:
        values = df.filter(~pl.col("suppressed") & pl.col(count).is_not_null())[count]
    edges = [*CELL_BINS, None]
    bins: list[tuple[str, int]] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = values >= lo if hi is None else (values >= lo) & (values < hi)
        bins.append((_bin_label(lo, hi), int(sel.sum())))
    while bins and bins[0][1] == 0:
        bins.pop(0)
    while bins and bins[-1][1] == 0:
        bins.pop()
    return bins


def _histograms(tables: dict[str, pl.DataFrame]) -> list[dict[str, Any]]:
    out = []
    for name, df in sorted(tables.items()):
        bins = _size_histogram(df)
        chart = svg_hbar(
            [(label, float(n), PALETTE["hist"]) for label, n in bins],
            title=f"{name}: published cells by size (persons)",
        )
        counts = df.filter(~pl.col("suppressed")) if "suppressed" in df.columns else df
        col = counts["persons"].drop_nulls() if "persons" in counts.columns else pl.Series([])
        out.append(
            {
                "table": name,
                "chart": chart,
                "bins": bins,
                "min": int(col.min()) if col.len() else None,
                "median": float(col.median()) if col.len() else None,
                "max": int(col.max()) if col.len() else None,
            }
        )
    return out


def _discovery(manifest: dict) -> tuple[list[dict[str, Any]], Markup | None]:
    """Flatten ``steps.discover`` ({source: {column: {entity: rate}}}) into rows and a chart."""
    disc = manifest.get("steps", {}).get("discover") or {}
    rows = [
        {"source": src, "column": col, "entity": ent, "rate": float(rate)}
        for src, cols in sorted(disc.items())
        if isinstance(cols, dict)
        for col, ents in sorted(cols.items())
        if isinstance(ents, dict)
        for ent, rate in sorted(ents.items())
    ]
    if not rows:
        return [], None
    chart = svg_hbar(
        [
            (f"{r['source']}.{r['column']} · {r['entity']}", r["rate"], PALETTE["rate"])
            for r in rows
        ],
        title="PII discovery rate per sampled column",
        value_label=_pct,
        max_value=1.0,
    )
    return rows, chart


def _quarantine(manifest: dict) -> list[dict[str, Any]]:
    extract = manifest.get("steps", {}).get("extract") or {}
    out = []
    for src, rec in sorted(extract.items()):
        if not isinstance(rec, dict):
            continue
        reasons = rec.get("quarantine_reasons")
        if reasons is None:
            continue
        out.append(
            {
                "source": src,
                "quarantined": rec.get("quarantined", sum(reasons.values())),
                "reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
            }
        )
    return out


def _scrub(manifest: dict) -> list[dict[str, Any]]:
    scrub = manifest.get("steps", {}).get("scrub") or {}
    out = []
    for src, rec in sorted(scrub.items()):
        for col, st in sorted((rec or {}).get("columns", {}).items()):
            out.append(
                {
                    "source": src,
                    "column": col,
                    "rows": st.get("rows"),
                    "changed": st.get("values_changed"),
                    "entities": sorted((st.get("entities") or {}).items()),
                }
            )
    return out


def _anonymized(manifest: dict) -> list[dict[str, Any]]:
    """``manifest["anonymized"]``: either one metrics dict or ``{dataset: metrics}``."""
    anon = manifest.get("anonymized")
    if not anon:
        return []
    keys = {"class_size_histogram", "suppressed", "granularity_loss", "max_risk", "mean_risk"}
    datasets = {"records": anon} if keys & set(anon) else anon
    out = []
    for name, m in sorted(datasets.items()):
        if not isinstance(m, dict):
            continue
        hist = [(int(s), int(c)) for s, c in m.get("class_size_histogram", [])]
        chart = svg_hbar(
            [(f"{s:,} persons", float(c), PALETTE["hist"]) for s, c in hist],
            title=f"{name}: equivalence classes by size",
        )
        out.append({"name": name, "metrics": m, "histogram": hist, "chart": chart})
    return out


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2", "html.j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _preview(df: pl.DataFrame, n: int = 10) -> dict[str, Any]:
    """The largest published cells of a table (what an analyst would look at first)."""
    shown = df
    if "suppressed" in df.columns:
        shown = df.filter(~pl.col("suppressed"))
    if "persons" in shown.columns:
        shown = shown.sort("persons", descending=True, nulls_last=True)
    shown = shown.head(n)
    return {
        "columns": shown.columns,
        "rows": [["" if v is None else str(v) for v in row] for row in shown.iter_rows()],
    }


def write_privacy_report(manifest: dict, tables: dict[str, pl.DataFrame], out_path: Path) -> Path:
    """Render ``privacy_report.html`` from the manifest and the published tables only.

    ``tables`` maps a statistics table name (``daily_active_users``…) to its published frame.
    The file is self-contained and script-free, so it can be archived with the release and read
    offline, and so a value that slipped into a table cannot run as code (autoescape is on and
    SVG text is escaped too).
    """
    sources = manifest.get("sources") or {}
    cells = _cells(manifest, tables)
    disc_rows, disc_chart = _discovery(manifest)
    context = {
        "m": manifest,
        "title": f"tokumei privacy report — {manifest.get('date', '')}",
        "summary": [
            ("run id", manifest.get("run_id", "")),
            ("date", manifest.get("date", "")),
            ("policy version", manifest.get("policy_version", "")),
            ("code version", manifest.get("code_version", "")),
            ("finished at", manifest.get("finished_at", "")),
            ("status", manifest.get("status", "")),
        ],
        "status": str(manifest.get("status", "unknown")),
        "reason": manifest.get("reason"),
        "flow_steps": FLOW_STEPS,
        "sources": sorted(sources.items()),
        "flow_chart": _flow_chart(sources) if sources else None,
        "outputs": sorted((manifest.get("outputs") or {}).items()),
        "cells": cells,
        "cells_chart": _cells_chart(cells) if cells else None,
        "histograms": _histograms(tables),
        "discovery": disc_rows,
        "discovery_chart": disc_chart,
        "quarantine": _quarantine(manifest),
        "scrub": _scrub(manifest),
        "anonymized": _anonymized(manifest),
        "previews": {name: _preview(df) for name, df in sorted(tables.items())},
        "palette": PALETTE,
        "fmt": _fmt,
        "pct": _pct,
    }
    html = _env().get_template("privacy_report.html.j2").render(**context)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(html, encoding="utf-8")
    return out_path


# --------------------------------------------------------------------------------------------
# items notice (APPI Art. 43(3))

#: What each level of each built-in hierarchy means, (Japanese, English). This describes the
#: hierarchies of ``tokumei.anonymize.hierarchies`` (a fixed vocabulary), not any column: which column
#: uses which hierarchy at which level comes from the policy.
HIERARCHY_LEVELS: dict[str, list[tuple[str, str]]] = {
    "age": [
        ("年齢（90歳以上は「90+」）", "age in years (90 and over top-coded as 90+)"),
        ("5歳階級（90歳以上は「90+」）", "5-year age band (90+ top-coded)"),
        ("10歳階級（90歳以上は「90+」）", "10-year age band (90+ top-coded)"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "time": [
        ("日時（秒単位、日本時間）", "timestamp to the second (JST)"),
        ("時間単位（日本時間）", "hour (JST)"),
        ("日単位（日本時間）", "day (JST)"),
        ("ISO週単位", "ISO week"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "postal_code": [
        ("郵便番号", "postal code"),
        ("郵便番号上3桁", "first 3 digits of the postal code"),
        ("都道府県", "prefecture"),
        ("地方区分", "region"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "prefecture": [
        ("都道府県", "prefecture"),
        ("地方区分", "region"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "mesh": [
        ("3次メッシュ（約1km、JIS X 0410）", "1 km mesh (JIS X 0410 third-order)"),
        ("2次メッシュ（約10km）", "10 km mesh (second-order)"),
        ("1次メッシュ（約80km）", "80 km mesh (first-order)"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "ip": [
        ("IPアドレス", "IP address"),
        ("/24（IPv6は/48）のネットワーク", "/24 network (IPv6 /48)"),
        ("/16（IPv6は/32）のネットワーク", "/16 network (IPv6 /32)"),
        ("削除（*）", "dropped (*)"),
    ],
    "user_agent": [
        ("ユーザーエージェント文字列", "user agent string"),
        (
            "ブラウザ種別・OS種別・端末区分",
            "browser family, OS family and device class",
        ),
        ("端末区分", "device class"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "url": [
        ("URL", "URL"),
        (
            "パステンプレート（ID部分は「:id」、クエリは削除）",
            "path template (id segments → :id, query dropped)",
        ),
        ("ホスト名", "host name"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
    "categorical": [
        ("区分（そのまま）", "category, as is"),
        ("全面秘匿（*）", "fully suppressed (*)"),
    ],
}

#: One-line descriptions of the published columns, (Japanese, English), and the Japanese table
#: summaries: both come from ``tokumei.stats.tables`` (the one place tables are defined), so the
#: notice, the data dictionary and the tables cannot drift apart.
OUTPUT_COLUMNS: dict[str, tuple[str, str]] = dict(COLUMN_DOCS)
TABLE_JA: dict[str, str] = {
    name: t.description_ja for name, t in TABLES.items() if t.description_ja
}

_ROLE_TEXT: dict[Role, tuple[str, str]] = {
    Role.DIRECT_IDENTIFIER: ("特定の個人を識別できる記述（氏名、連絡先等）", "direct identifiers"),
    Role.IDENTIFICATION_CODE: ("個人識別符号", "identification codes"),
    Role.FINANCIAL: (
        "財産的被害が生じるおそれのある記述（カード番号、口座番号等）",
        "financial account information",
    ),
}


def _all_sources(policy: Policy) -> list[tuple[str, SourcePolicy]]:
    return [*sorted(policy.sources.items()), *sorted(policy.tables.items())]


def _code(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _level_text(hierarchy: str, level: int | None) -> tuple[str, str]:
    lvl = 0 if level is None else level
    ladder = HIERARCHY_LEVELS.get(hierarchy, [])
    if 0 <= lvl < len(ladder):
        return ladder[lvl]
    return (f"階層 {hierarchy} のレベル {lvl}", f"level {lvl} of hierarchy {hierarchy}")


def _md(text: str) -> str:
    """Neutralize Markdown/HTML in generated text (policy strings are reviewed, but still)."""
    for ch in ("\\", "`", "*", "_", "[", "]", "<", ">", "|"):
        text = text.replace(ch, "\\" + ch)
    return text


def write_items_notice(policy: Policy, manifest: dict, out_path: Path) -> Path:
    """Write ``items_notice.md``: the APPI Art. 43(3) notice, in Japanese and English.

    The items are the columns of each table this run published (from ``manifest["outputs"]``
    and ``tokumei.stats.tables.TABLES``); the processing categories are generated from the policy
    roles, hierarchies and thresholds, so a policy change changes the notice with it and the
    notice cannot promise a deletion the engine does not do.
    """
    from tokumei.stats.tables import TABLES

    t = policy.thresholds
    published = sorted(
        k.removeprefix("stats/") for k in (manifest.get("outputs") or {}) if k.startswith("stats/")
    )
    if not published:
        published = sorted(TABLES)
    lines: list[str] = [
        "# 匿名加工情報に含まれる個人に関する情報の項目の公表",
        "# Public notice of the items of personal information contained in anonymously "
        "processed information",
        "",
        "個人情報保護法第43条第3項に基づき、以下のとおり公表します。  ",
        "Published under Article 43(3) of the Act on the Protection of Personal Information "
        "(APPI).",
        "",
        f"- 対象日 / Reference date: {_md(str(manifest.get('date', '')))}",
        f"- 実行ID / Run ID: {_md(str(manifest.get('run_id', '')))}",
        f"- 加工方針の版 / Policy version: {_md(policy.version)}",
        "",
        "## 1. 匿名加工情報に含まれる個人に関する情報の項目 / Items of information contained",
        "",
    ]
    for name in published:
        spec = TABLES.get(name)
        lines.append(f"### `{name}`")
        lines.append("")
        if spec is None:
            lines += ["（説明なし / no description）", ""]
            continue
        lines.append(TABLE_JA.get(name, _md(spec.description)) + "  ")
        lines.append(_md(spec.description))
        lines.append("")
        lines.append("| 項目 / Item | 説明 | Description |")
        lines.append("|---|---|---|")
        for col in (*spec.dims, *spec.counts, *spec.measures, "suppressed"):
            ja, en = OUTPUT_COLUMNS.get(col, ("（説明なし）", "(no description)"))
            lines.append(f"| `{col}` | {_md(ja)} | {_md(en)} |")
        lines.append("")

    lines += [
        "## 2. 実施した加工の方法 / Categories of processing applied",
        "",
        "以下は加工方針（policy）から生成しています。元データの項目ごとの取扱いです。  ",
        "Generated from the processing policy; handling of each item of the source data.",
        "",
        "### 2.1 削除した項目 / Items deleted",
        "",
        "次の項目は全部削除し、公表するデータには含まれません。  ",
        "The following items were deleted entirely and are not contained in the released data.",
        "",
    ]
    for src, sp in _all_sources(policy):
        for role, (ja, en) in _ROLE_TEXT.items():
            cols = sp.by_role(role)
            if cols:
                lines.append(f"- `{src}` — {ja} / {en}: {_code(cols)}")
    lines += [
        "",
        "### 2.2 仮名に置き換えた項目（公表データには含まれません）/ Items replaced by "
        "pseudonyms (not contained in the released data)",
        "",
        "次の識別子は、鍵付きハッシュ（HMAC-SHA256）による仮名に置き換えたうえで、重複を除いた人数の"
        "集計にのみ使用しました。仮名は公表データに含まれず、鍵は実行ごとに破棄します。  ",
        "The following identifiers were replaced by keyed pseudonyms (HMAC-SHA256) used only to "
        "count distinct persons; the pseudonyms are not contained in the released data and the "
        "key is destroyed after each run.",
        "",
    ]
    for src, sp in _all_sources(policy):
        cols = sp.by_role(Role.LINKING_KEY)
        if cols:
            lines.append(f"- `{src}`: {_code(cols)}")
    lines += [
        "",
        "### 2.3 一般化した項目 / Items generalized",
        "",
        "| 元データ / Source | 項目 / Item | 加工後 | Generalized to |",
        "|---|---|---|---|",
    ]
    for src, sp in _all_sources(policy):
        for col in sp.by_role(Role.QUASI_IDENTIFIER):
            p = sp.columns[col]
            if p.hierarchy is None:
                ja, en = ("一般化（階層未指定）", "generalized (no hierarchy named)")
            else:
                ja, en = _level_text(p.hierarchy, p.level)
                en = f"{_md(en)} (hierarchy `{p.hierarchy}`, level {0 if p.level is None else p.level})"
            lines.append(f"| `{src}` | `{col}` | {_md(ja)} | {en} |")
    lines += [
        "",
        "### 2.4 自由記述 / Free text",
        "",
        "次の自由記述項目は、個人情報（氏名、連絡先、個人識別符号等）に当たる部分を種別名"
        "（例: `<PERSON>`）に置き換えました。URLはパステンプレートに縮約しています。  ",
        "Personal information in the following free-text items (names, contact details, "
        "identification codes, …) was replaced by its entity type (e.g. `<PERSON>`); URLs were "
        "reduced to path templates.",
        "",
    ]
    for src, sp in _all_sources(policy):
        for col in sp.by_role(Role.FREE_TEXT):
            p = sp.columns[col]
            extra = ""
            if p.hierarchy is not None:
                ja, en = _level_text(p.hierarchy, p.level)
                extra = f" — {_md(ja)} / {_md(en)}"
            lines.append(f"- `{src}`: `{col}`{extra}")
    sensitive = [(s, c) for s, sp in _all_sources(policy) for c in sp.by_role(Role.SENSITIVE)]
    if sensitive:
        lines += [
            "",
            "### 2.5 要配慮の数値項目 / Sensitive measures",
            "",
            "次の数値項目は、範囲外の値を除外したうえで、個票としては公表しません。公表する"
            "場合はセルごとの集計値（平均値・中央値）に限ります。  ",
            "The following measures were range-checked and are never released per record; where "
            "released at all, only as per-cell aggregates (mean, median).",
            "",
        ]
        for src, col in sensitive:
            lines.append(f"- `{src}`: `{col}`")
    lines += [
        "",
        "### 2.6 少数セルの秘匿 / Small-cell suppression",
        "",
        f"人数が {t.min_cell} 人未満のセルは秘匿し、人数・数値を空欄とし `suppressed` を true と"
        "しています。  ",
        f"Cells of fewer than {t.min_cell} persons are suppressed: their counts and measures are "
        "empty and `suppressed` is true.",
        "",
        "### 2.7 本人の求め・同意 / Data-subject requests and consent",
        "",
        "利用停止・削除等の求めがあった本人、および分析目的の同意のない本人のデータは、加工前に"
        "すべて除外しています。  ",
        "All data of persons with a deletion, ceasing or opt-out request, or without consent "
        "to analytics, was excluded before processing.",
        "",
    ]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return out_path


__all__ = [
    "HIERARCHY_LEVELS",
    "OUTPUT_COLUMNS",
    "svg_hbar",
    "write_items_notice",
    "write_privacy_report",
]
