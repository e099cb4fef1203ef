"""Per-run human-readable reports (docs/architecture.md §5): the privacy report and the items notice.

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
from tokumei.release.manifest import binned_sizes
from tokumei.stats.tables import COLUMN_DOCS, TABLES

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Steps of the books of one source, in flow order (docs/architecture.md §5 manifest ``sources``).
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


def _fmt(value: float | str) -> str:
    """Integers with thousands separators, floats with 3 digits; a printed band as it is."""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:.3g}"


def _num(value: float | str | None) -> float:
    """A bar length for a printed count: a band ``"< b"`` is drawn at half its base."""
    if value is None:
        return 0.0
    if isinstance(value, str):
        digits = "".join(ch for ch in value if ch.isdigit())
        return int(digits) / 2 if digits else 0.0
    return float(value)


def svg_hbar(
    rows: Sequence[tuple[str, float | str, str]],
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
    top = max((_num(v) for _, v, _ in rows), default=0.0)
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
        w = 0.0 if scale_to <= 0 else chart_w * _num(value) / scale_to
        if _num(value) > 0:
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


def _pct(value: float | str) -> str:
    """A share as a percentage; a printed band (``"< 0.03"``, ``"> 0"``) as it is."""
    if isinstance(value, str):
        return value
    return f"{100 * value:.1f}%"


# --------------------------------------------------------------------------------------------
# privacy report: data for the template


def _flow_chart(sources: dict[str, dict[str, int]]) -> Markup:
    rows = [
        (f"{src} · {step}", books.get(step, 0) or 0, PALETTE[step])
        for src, books in sorted(sources.items())
        for step in FLOW_STEPS
    ]
    return svg_hbar(rows, title="rows per source and step")


def _count_columns(name: str, df: pl.DataFrame) -> list[str]:
    """The declared count columns of a published table that the frame has."""
    spec = TABLES.get(name)
    return [c for c in (spec.counts if spec else ("persons",)) if c in df.columns]


def _cells(manifest: dict, tables: dict[str, pl.DataFrame]) -> list[dict[str, Any]]:
    """Published vs suppressed count cells per statistics table.

    A cell is one count value: a row of a table with several counts (funnel steps) can hold
    published and suppressed cells at once, so counting rows by their ``suppressed`` flag
    told "all suppressed" of a table with published cells (issue 18). Counted on the
    published frame when given (a published value is non-null), else the manifest's figures.
    """
    outputs = manifest.get("outputs", {})
    names = {k.removeprefix("stats/") for k in outputs if k.startswith("stats/")} | set(tables)
    out = []
    for name in sorted(names):
        rec = manifest.get("outputs", {}).get(f"stats/{name}", {})
        df = tables.get(name)
        counts = _count_columns(name, df) if df is not None else []
        if counts:
            assert df is not None
            total = df.height * len(counts)
            supp = sum(df[c].null_count() for c in counts)
            out.append(
                {"table": name, "rows": total, "suppressed": supp, "published": total - supp}
            )
            continue
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
    values = df.filter(pl.col(count).is_not_null())[count]  # published = not null
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


def _count_column(name: str, df: pl.DataFrame) -> str | None:
    """The table's person count (``persons`` when it has one, else its first declared count)."""
    if "persons" in df.columns:
        return "persons"
    spec = TABLES.get(name)
    counts = [c for c in (spec.counts if spec else ()) if c in df.columns]
    return counts[0] if counts else None


def _histograms(tables: dict[str, pl.DataFrame]) -> list[dict[str, Any]]:
    out = []
    for name, df in sorted(tables.items()):
        count = _count_column(name, df)
        bins = _size_histogram(df, count) if count else []
        chart = svg_hbar(
            [(label, float(n), PALETTE["hist"]) for label, n in bins],
            title=f"{name}: published cells by size (persons)",
        )
        col = df[count].drop_nulls() if count else pl.Series([])
        out.append(
            {
                "table": name,
                "count": count or "persons",
                "published_cells": col.len(),
                "chart": chart,
                "bins": bins,
                "min": int(col.min()) if col.len() else None,
                "median": float(col.median()) if col.len() else None,
                "max": int(col.max()) if col.len() else None,
            }
        )
    return out


def _rate(value: Any) -> float | str:
    """A discovery rate as printed (tokumei/release/manifest.py printed_share): number or band."""
    return value if isinstance(value, str) else float(value)


def _discovery(manifest: dict) -> tuple[list[dict[str, Any]], Markup | None]:
    """Flatten ``steps.discover`` ({source: {column: {entity: rate}}}) into rows and a chart."""
    disc = manifest.get("steps", {}).get("discover") or {}
    rows = [
        {"source": src, "column": col, "entity": ent, "rate": _rate(rate)}
        for src, cols in sorted(disc.items())
        if isinstance(cols, dict)
        for col, ents in sorted(cols.items())
        if isinstance(ents, dict)
        for ent, rate in sorted(ents.items())
    ]
    if not rows:
        return [], None
    chart = svg_hbar(
        [  # a printed band (a sample too small to print a share) is in the table, not drawn
            (f"{r['source']}.{r['column']} · {r['entity']}", r["rate"], PALETTE["rate"])
            for r in rows
            if isinstance(r["rate"], float)
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
                "quarantined": rec.get("quarantined", 0),
                "reasons": sorted(reasons.items(), key=lambda kv: (-_num(kv[1]), kv[0])),
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
    # One step's record (any non-dict value at the top: metrics, model text, flags) or
    # {dataset: metrics}. The record is named after the one record-level output, if one.
    if all(isinstance(v, dict) for v in anon.values()):
        datasets = anon
    else:
        names = [n for n in (manifest.get("outputs") or {}) if n.startswith("anonymized/")]
        datasets = {names[0] if len(names) == 1 else "records": anon}
    out = []
    for name, m in sorted(datasets.items()):
        if not isinstance(m, dict):
            continue
        # printed manifests bin the class sizes ([band, classes]); exact ones are binned here
        raw = m.get("class_size_histogram") or []
        if raw and not isinstance(raw[0][0], str):
            raw = binned_sizes(raw, int(m.get("min_class_size") or 1) or 1)
        hist = [(str(s), int(c)) for s, c in raw]
        chart = svg_hbar(
            [(f"{s} persons", float(c), PALETTE["hist"]) for s, c in hist],
            title=f"{name}: equivalence classes by size",
        )
        out.append({"name": name, "metrics": m, "histogram": hist, "chart": chart})
    return out


def _relations_text(rel: Any) -> str:
    """The relations an audit used, whatever shape H1's record gives them, as one line."""
    if rel is None:
        return "—"
    if isinstance(rel, dict):
        return ", ".join(f"{k}: {_relations_text(v)}" for k, v in sorted(rel.items())) or "—"
    if isinstance(rel, list | tuple):
        return ", ".join(_relations_text(r) for r in rel) or "—"
    return _fmt(rel) if isinstance(rel, int | float) else str(rel)


def _audit(manifest: dict) -> list[dict[str, Any]]:
    """Per table, what the attacker audit proved: cells, suppressed, narrowest interval, ok.

    Read from ``manifest["disclosure"]`` (the build_stats verdicts), keys
    ``cells, suppressed_cells, min_width, required_width, relations, ok``; a missing key is
    shown as "—", and a table without a verdict is listed as not audited (it cannot be
    published: publish refuses a table whose audit is missing).
    """
    disc = manifest.get("disclosure") or {}
    out = []
    for name in sorted(disc):
        d = disc[name] if isinstance(disc[name], dict) else {}
        out.append(
            {
                "table": name,
                "audited": bool(d),
                "cells": d.get("cells"),
                "suppressed": d.get("suppressed_cells"),
                "min_width": d.get("min_width"),
                "required": d.get("required_width"),
                "relations": _relations_text(d.get("relations")),
                "ok": d.get("ok"),
                "extra": sorted(
                    (k, _relations_text(v))
                    for k, v in d.items()
                    if k
                    not in {
                        "cells",
                        "suppressed_cells",
                        "min_width",
                        "required_width",
                        "relations",
                        "ok",
                    }
                    and isinstance(v, int | float | str | dict)
                ),
            }
        )
    return out


def _ledger_rows(ledger: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Provision ledger entries (``tokumei provide``) for the report, newest first."""
    rows = []
    for e in ledger or []:
        rows.append(
            {
                "at": str(e.get("recorded_at", "")),
                "recipient": str(e.get("recipient", "")),
                "date": str(e.get("date", "")),
                "datasets": ", ".join(sorted((e.get("datasets") or {}).keys())),
                "method": str(e.get("method", "")),
                "release": str(e.get("run_id", "")),
            }
        )
    return sorted(rows, key=lambda r: r["at"], reverse=True)


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2", "html.j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _preview(name: str, df: pl.DataFrame, n: int = 10) -> dict[str, Any]:
    """The largest published cells of a table (what an analyst would look at first)."""
    shown = df
    counts = _count_columns(name, df)
    if counts:  # rows with at least one published count (a row may mix both)
        shown = df.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in counts))
    if "persons" in shown.columns:
        shown = shown.sort("persons", descending=True, nulls_last=True)
    shown = shown.head(n)
    return {
        "columns": shown.columns,
        "rows": [["" if v is None else str(v) for v in row] for row in shown.iter_rows()],
    }


def write_privacy_report(
    manifest: dict,
    tables: dict[str, pl.DataFrame],
    out_path: Path,
    ledger: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Render ``privacy_report.html`` from the manifest and the published tables only.

    ``tables`` maps a statistics table name (``daily_active_users``…) to its published frame;
    ``ledger`` is the provision ledger so far (``tokumei provide``; a provision of this
    release appears in the reports of the releases after it).
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
        "audit": _audit(manifest),
        "ledger": _ledger_rows(ledger),
        "ledger_given": ledger is not None,
        "printed": manifest.get("printed_counts"),
        "previews": {name: _preview(name, df) for name, df in sorted(tables.items())},
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
    "user_agent_os": [
        ("ユーザーエージェント文字列", "user agent string"),
        ("OS種別", "OS family"),
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


#: Items of the record-level release (``anonymized/<dataset>``), (Japanese, English), and the
#: hierarchy each quasi-identifier is generalized on (its level comes from the manifest: the
#: transformation the lattice search chose in this run).
RECORD_COLUMNS: dict[str, tuple[str, str]] = {
    "age": ("年齢（一般化後）", "age (generalized)"),
    "gender": ("性別（一般化後）", "gender (generalized)"),
    "prefecture": ("居住都道府県（一般化後）", "prefecture of residence (generalized)"),
    "device_class": ("端末区分（一般化後）", "device class (generalized)"),
    # the record-level release folds url_template by the same rule as the page_views table
    # (tokumei/anonymize/records.py), so the one description in tokumei.stats.tables is used
    "url_template": COLUMN_DOCS.get(
        "url_template",
        ("閲覧したページのパステンプレート", "path template of the page viewed"),
    ),
}
RECORD_HIERARCHY: dict[str, str] = {
    "age": "age",
    "gender": "categorical",
    "prefecture": "prefecture",
    "device_class": "categorical",
}

#: Columns of the retained keyed-pseudonym layer (``<out>/retained/``), (Japanese, English).
RETAINED_COLUMNS: dict[str, tuple[str, str]] = {
    "person": (
        "仮名（鍵付きハッシュ、日をまたいで同一）",
        "pseudonym (keyed hash, same across days)",
    ),
    "date": ("日付", "date"),
    "active": ("その日に利用があったか", "whether the person used the service that day"),
    "prefecture": ("都道府県", "prefecture"),
    "age_band": ("5歳階級", "5-year age band"),
    "gender": ("性別", "gender"),
    "signup_date": ("登録日", "signup date"),
    "weight_kg": ("その日の体重の平均", "the day's mean body weight"),
    "body_fat_pct": ("その日の体脂肪率の平均", "the day's mean body-fat percentage"),
    "price_band": ("価格帯", "price band"),
    "purchases": ("購入件数", "number of purchases"),
    "amount_jpy": ("購入金額", "purchase amount"),
}


def _datasets(manifest: dict) -> dict[str, list[str]]:
    """Published datasets of the release → their columns, as the manifest recorded them.

    ``publish`` records each output's columns from the staged file itself; an entry without
    them (an older manifest) falls back to the table's declared schema.
    """
    from tokumei.stats.tables import TABLES

    out: dict[str, list[str]] = {}
    for name, rec in sorted((manifest.get("outputs") or {}).items()):
        cols = (rec or {}).get("columns")
        if cols is None:
            spec = TABLES.get(name.removeprefix("stats/"))
            if name.startswith("stats/") and spec is not None:
                cols = [*spec.dims, *spec.counts, *spec.measures, "suppressed"]
            elif name.startswith("anonymized/"):
                cols = list(RECORD_COLUMNS)
            else:
                cols = []
        out[name] = list(cols)
    return out


def _method_lines(rec: dict) -> list[str]:
    """``method`` of an output entry (strings or ``{"ja", "en"}``), as notice bullets."""
    lines = []
    for m in rec.get("method") or []:
        if isinstance(m, dict):
            lines.append(f"- {_md(str(m.get('ja', '')))} / {_md(str(m.get('en', '')))}")
        else:
            lines.append(f"- {_md(str(m))}")
    return lines


def _record_method(manifest: dict, rec: dict) -> list[str]:
    """The privacy model the record-level step reports it applied, and an empty day's reason.

    ``manifest["anonymized"]`` is the anonymize_records step's own account (its
    ``privacy_model`` text, ``released``, ``reason``), so the notice states what ran.
    """
    anon = manifest.get("anonymized") or {}
    lines = []
    if isinstance(anon.get("privacy_model"), str):
        lines.append(f"- 加工の方法 / Method applied: {_md(anon['privacy_model'])}")
    if anon.get("released") is False or rec.get("rows") == 0:
        why = f" ({_md(str(anon['reason']))})" if anon.get("reason") else ""
        lines.append(
            "- この日は条件を満たす記録がなく、0行を公表しました。 / No record met the "
            f"conditions on this day: the dataset was released with 0 rows{why}."
        )
    return lines


def write_items_notice(
    policy: Policy,
    manifest: dict,
    out_path: Path,
    retention_days: int | None = None,
) -> Path:
    """Write ``items_notice.md``: the APPI notice of what this release is, in Japanese and English.

    Generated from what ran: the datasets and their columns are the release's outputs as the
    manifest records them (``publish`` reads the columns from the staged files), the
    generalization levels of the record-level release are the transformation the search chose,
    and the processing is described from the policy roles and thresholds. It names the three
    things that exist (issue 15, finding 6): published statistics, the anonymized records
    (匿名加工情報, Art. 43(3) items) and the retained keyed-pseudonym layer, which is internal and
    whose key is kept (not destroyed) because the same pseudonym is needed across days.
    """
    from tokumei.jobs.retention import DEFAULT_ACTIVITY_DAYS

    t = policy.thresholds
    days = DEFAULT_ACTIVITY_DAYS if retention_days is None else retention_days
    datasets = _datasets(manifest)
    outputs = manifest.get("outputs") or {}
    stats_sets = [n for n in datasets if n.startswith("stats/")]
    record_sets = [n for n in datasets if n.startswith("anonymized/")]
    lines: list[str] = [
        "# 匿名加工情報に含まれる個人に関する情報の項目等の公表",
        "# Public notice of the items of personal information contained in anonymously "
        "processed information, and of the processing",
        "",
        "個人情報保護法第43条第3項に基づき、以下のとおり公表します。本書は実行された処理と"
        "実際に公表されたデータから生成しています。  ",
        "Published under Article 43(3) of the Act on the Protection of Personal Information "
        "(APPI). This notice is generated from the processing that ran and the data actually "
        "released.",
        "",
        f"- 対象日 / Reference date: {_md(str(manifest.get('date', '')))}",
        f"- 実行ID / Run ID: {_md(str(manifest.get('run_id', '')))}",
        f"- 加工方針の版 / Policy version: {_md(policy.version)}",
        f"- 公表データセット / Released datasets: {_code(datasets) if datasets else '—'}",
        "",
        "## 1. 公表するデータの種類 / What is released and what is kept",
        "",
        "1. **統計情報 / Statistics** "
        f"（{_code(n.removeprefix('stats/') for n in stats_sets) or '—'}）: セルごとの人数等の"
        "集計値で、特定の個人との対応関係が排斥されたもの。  "
        "Aggregates per cell (counts of distinct persons, means, ...) from which no record of "
        "an individual can be derived.",
        "2. **匿名加工情報 / Anonymously processed information (APPI Art. 43)** "
        f"（{_code(record_sets) or '—'}）: 1行が1件の行動記録である個票データ。項目は第3節の"
        "とおり。  "
        "Record-level data, one row per recorded action; its items are listed in section 3.",
        "3. **保持する仮名化データ（公表しない）/ Retained pseudonymized layer (never released)**:"
        " 週次・月次の統計のため、鍵付きハッシュによる仮名を付した1人1日1行のデータを社内に"
        f"保持します（`retained/`、保持期間 {days} 日）。第4節を参照。  "
        "For weekly and monthly statistics, one row per person and day under a keyed "
        f"pseudonym is kept internally (`retained/`, kept for {days} days); see section 4.",
        "",
        "## 2. 統計情報の項目 / Items of the statistics",
        "",
    ]
    for name in stats_sets:
        table = name.removeprefix("stats/")
        spec = TABLES.get(table)
        lines.append(f"### `{name}`")
        lines.append("")
        if spec is not None:
            lines.append(TABLE_JA.get(table, _md(spec.description)) + "  ")
            lines.append(_md(spec.description))
            lines.append("")
        lines.append("| 項目 / Item | 説明 | Description |")
        lines.append("|---|---|---|")
        for col in datasets[name]:
            ja, en = OUTPUT_COLUMNS.get(col, ("（説明なし）", "(no description)"))
            lines.append(f"| `{col}` | {_md(ja)} | {_md(en)} |")
        lines += [*_method_lines(outputs.get(name) or {}), ""]
    if not stats_sets:
        lines += ["この実行では統計情報を公表していません。 / No statistics in this release.", ""]

    lines += [
        "## 3. 匿名加工情報に含まれる個人に関する情報の項目 / Items of information contained "
        "in the anonymously processed information (Art. 43(3))",
        "",
    ]
    for name in record_sets:
        rec = outputs.get(name) or {}
        levels = rec.get("transformation") or {}
        lines += [
            f"### `{name}`",
            "",
            f"1行が1件の閲覧記録です。準識別子は、各組合せに {t.k} 人以上が含まれるよう一般化"
            "しました（k-匿名性、人数で数える）。個人を識別する記述、識別子、連絡先は含みません。  ",
            "One row per recorded page view. The quasi-identifiers were generalized so that each "
            f"combination holds at least {t.k} distinct persons (k-anonymity over persons). No "
            "name, identifier or contact detail is contained.",
            "",
            "| 項目 / Item | 説明 | Description | 一般化 / Generalized to |",
            "|---|---|---|---|",
        ]
        for col in datasets[name]:
            ja, en = RECORD_COLUMNS.get(col, ("（説明なし）", "(no description)"))
            gen = "—"
            if col in RECORD_HIERARCHY and col in levels:
                lj, le = _level_text(RECORD_HIERARCHY[col], int(levels[col]))
                gen = f"{_md(lj)} / {_md(le)}"
            lines.append(f"| `{col}` | {_md(ja)} | {_md(en)} | {gen} |")
        lines += [*_method_lines(rec), *_record_method(manifest, rec), ""]
    if not record_sets:
        lines += [
            "この実行では匿名加工情報（個票）を公表していません。 / No record-level data in "
            "this release.",
            "",
        ]

    lines += [
        "## 4. 保持する仮名化データと鍵 / The retained pseudonymized layer and its key",
        "",
        "週次・月次の統計（同じ人を日をまたいで数える）のため、次の項目を1人1日1行で社内に保持"
        "します。これは仮名加工情報に相当する内部データで、公表も第三者提供もしません。"
        "仮名は鍵付きハッシュ（HMAC-SHA256）で、鍵は日をまたいで同じ鍵を使うため破棄せず、"
        "秘密情報の保管庫で他のデータと分けて管理します（削除情報等として扱い、"
        "`retained/KEY_CHECK` は鍵そのものを含まずに鍵の同一性を確かめるためのものです）。"
        f"保持期間は {days} 日で、その後は削除します。利用停止・削除等の求めがあった本人の行は"
        "権利対応ジョブ（1時間ごと）が削除し、同意を撤回した本人を含め、以後の実行では使用"
        "しません。  ",
        "For weekly and monthly statistics (the same person counted across days), the items "
        "below are kept internally, one row per person and day. This is internal "
        "pseudonymized data (comparable to pseudonymously processed information): it is never "
        "released or provided to third parties. The pseudonym is a keyed hash (HMAC-SHA256); "
        "the key is **kept** across runs, because the same key must give the same pseudonym "
        "every day, in the secret store, apart from the data (it is managed as the information "
        "for deletion; `retained/KEY_CHECK` verifies the key without containing it). Rows are "
        f"kept for {days} days (`TOKUMEI_RETENTION_ACTIVITY_DAYS`) and then deleted; the rows "
        "of persons who asked for deletion or ceasing are deleted by the rights-erasure job "
        "(hourly), and no later run uses the rows of an excluded person (consent withdrawn "
        "included).",
        "",
        "| 項目 / Item | 説明 | Description |",
        "|---|---|---|",
    ]
    from tokumei.stats.periods import ACTIVITY_SCHEMA, PURCHASES_SCHEMA

    for layer, schema in (("activity", ACTIVITY_SCHEMA), ("purchases", PURCHASES_SCHEMA)):
        for col in schema:
            ja, en = RETAINED_COLUMNS.get(col, ("（説明なし）", "(no description)"))
            lines.append(f"| `retained/{layer}` `{col}` | {_md(ja)} | {_md(en)} |")

    lines += [
        "",
        "## 5. 実施した加工の方法 / Processing applied",
        "",
        "以下は加工方針（policy）から生成しています。元データの項目ごとの取扱いです。  ",
        "Generated from the processing policy; handling of each item of the source data.",
        "",
        "### 5.1 削除した項目 / Items deleted",
        "",
        "次の項目は全部削除し、公表するデータにも保持するデータにも含まれません。  ",
        "The following items were deleted entirely; neither released nor retained data "
        "contains them.",
        "",
    ]
    for src, sp in _all_sources(policy):
        for role, (ja, en) in _ROLE_TEXT.items():
            cols = sp.by_role(role)
            if cols:
                lines.append(f"- `{src}` — {ja} / {en}: {_code(cols)}")
    special = [(s, c) for s, sp in _all_sources(policy) for c in sp.by_role(Role.SPECIAL_CARE)]
    lines += [
        "",
        "### 5.2 要配慮個人情報 / Special-care-required personal information",
        "",
        "要配慮個人情報（病歴・健康診断の結果、生体情報、信条、犯罪の経歴等）に当たる項目は"
        "読み込みません。値は処理のどの段階にも書き出されず、公表も保持もしません。  ",
        "Items that are special-care-required personal information (medical history and "
        "check-up results, biometric data, creed, criminal records, ...) are not read at all: "
        "their values are never written at any stage, released or retained.",
        "",
    ]
    if special:
        lines += [f"- `{src}`: `{col}`" for src, col in special]
    else:
        lines.append("- 該当する項目はありません。 / The sources hold no such item.")
    lines += [
        "",
        "### 5.3 仮名に置き換えた項目 / Items replaced by pseudonyms",
        "",
        "次の識別子は鍵付きハッシュ（HMAC-SHA256）による仮名に置き換え、人数を重複なく数える"
        "ため、および第4節の保持データにのみ使用しました。仮名は公表データに含まれません。"
        "鍵の扱いは第4節のとおりです。  ",
        "The following identifiers were replaced by keyed pseudonyms (HMAC-SHA256), used only "
        "to count distinct persons and in the retained layer of section 4; the pseudonyms are "
        "not contained in the released data. The key is handled as section 4 says.",
        "",
    ]
    for src, sp in _all_sources(policy):
        cols = sp.by_role(Role.LINKING_KEY)
        if cols:
            lines.append(f"- `{src}`: {_code(cols)}")
    lines += [
        "",
        "### 5.4 一般化した項目 / Items generalized",
        "",
        "| 元データ / Source | 項目 / Item | 加工後 | Generalized to |",
        "|---|---|---|---|",
    ]
    # The per-person sources are described from their compiled plan, the program generalize
    # runs (tokumei/anonymize/compile.py): every output column a source column yields, with
    # the hierarchy and level that make it; so is the users table. Other DB tables (only
    # joined, never generalized) from the policy.
    from tokumei.anonymize.compile import PERSON_SOURCES, PERSONS_SOURCE, compile_policy

    plans = compile_policy(policy, (*PERSON_SOURCES, PERSONS_SOURCE))
    for src, sp in _all_sources(policy):
        for col in sp.by_role(Role.QUASI_IDENTIFIER):
            p = sp.columns[col]
            plan = plans.get(src)
            gens = [g for g in plan.generalizations if col in g.inputs] if plan else []
            if gens:
                parts = [(*_level_text(g.hierarchy, g.level), g) for g in gens]
                ja = "、".join(f"{_md(j)}（`{g.output}`）" for j, _, g in parts)
                en = "; ".join(
                    f"{_md(e)} (hierarchy `{g.hierarchy}`, level {g.level}) → `{g.output}`"
                    for _, e, g in parts
                )
                lines.append(f"| `{src}` | `{col}` | {ja} | {en} |")
                continue
            if p.hierarchy is None:
                ja, en = ("一般化（階層未指定）", "generalized (no hierarchy named)")
            else:
                ja, en = _level_text(p.hierarchy, p.level)
                level = 0 if p.level is None else p.level
                en = f"{_md(en)} (hierarchy `{p.hierarchy}`, level {level})"
            lines.append(f"| `{src}` | `{col}` | {_md(ja)} | {en} |")
    lines += [
        "",
        "### 5.5 自由記述 / Free text",
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
            "### 5.6 取扱いに注意を要する数値項目 / Sensitive measures",
            "",
            "次の数値項目（体重・体脂肪率の測定値、購入金額等）は、範囲外の値を除外したうえで、"
            "個票としては公表しません。公表するのは統計情報（区分ごとの人数、平均値・中央値・"
            "合計等）に限り、第4節の保持データには1人1日単位で含まれます。体重・体脂肪率は"
            "健康に関する測定値ですが、医師等による診断・健康診断の結果ではないため要配慮"
            "個人情報には当たらないと判断し、同等に慎重に扱います。  ",
            "The following measures (body weight and body fat, purchase amounts, ...) were "
            "range-checked and are never released per record: only as statistics (persons per "
            "band, means, medians, totals, ...); the retained layer of section 4 holds them per "
            "person and day. Body weight and body fat are health-related measurements but not "
            "results of a medical examination, so they are not treated as special-care "
            "information; they are handled as carefully.",
            "",
        ]
        for src, col in sensitive:
            lines.append(f"- `{src}`: `{col}`")
    lines += [
        "",
        "### 5.7 少数セルの秘匿 / Small-cell suppression",
        "",
        f"人数が {t.min_cell} 人未満のセルは秘匿し、人数・数値を空欄とし `suppressed` を true と"
        "しています。秘匿したセルが他の公表値から復元されないよう、補完秘匿と検証を行います。"
        f"本書・マニフェスト・報告書に記載する人数・件数も、0 を除き {t.min_cell} 未満の値は"
        "記載しません（丸めまたは「< 基準値」）。  ",
        f"Cells of fewer than {t.min_cell} persons are suppressed: their counts and measures are "
        "empty and `suppressed` is true. Complementary suppression and an audit ensure that a "
        "suppressed cell cannot be recovered from the published values. No count of persons "
        f"or rows below {t.min_cell}, other than 0, is printed in this notice, the manifest or "
        "the reports (they are rounded or shown as '< base').",
        "",
        "### 5.8 本人の求め・同意 / Data-subject requests and consent",
        "",
        "利用停止・削除等の求めがあった本人、および分析目的の同意のない本人のデータは、加工前に"
        "すべて除外し、保持データからも削除しています。  ",
        "All data of persons with a deletion, ceasing or opt-out request, or without consent "
        "to analytics, was excluded before processing and deleted from the retained layer.",
        "",
        "## 6. 第三者提供 / Provision to third parties",
        "",
        "匿名加工情報を第三者に提供するときは、提供する項目と方法を記録し（`provision/ledger."
        "jsonl`）、提供先に匿名加工情報である旨を明示します（法第44条）。  ",
        "Each provision of anonymously processed information to a third party is recorded "
        "with its items and method (`provision/ledger.jsonl`), and the recipient is told that "
        "the data is anonymously processed information (APPI Art. 44).",
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
