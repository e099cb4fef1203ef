"""Make a built GX Data Docs site readable offline: no external URL, no JavaScript needed.

Why post-process instead of vendoring: GX 1.24's Jinja templates load bootstrap, bootstrap-table,
jQuery, popper, font-awesome and vega from public CDNs, and its index page fills the list of
validations *with JavaScript* (bootstrap-table fed from an inline script). Offline, or on a host
that blocks CDNs, the index is blank. None of these assets ships in our environment (no Python
package in the lock carries bootstrap 4 / bootstrap-table), and vendoring ~1 MB of third-party
JS/CSS would only bring back a script-driven index. So after each build:

* every ``<script>`` is removed (external ones fail offline; the inline ones call jQuery), and so
  are the JS-only "Validation Filter" buttons, ``onclick`` handlers and GX's newsletter footer;
* every ``<link>``/``<img>`` to another host is removed, anchors to another host keep their text
  but lose the link, and CSS ``url(http…)`` becomes ``none``; GX's own styles are already inlined
  in each page, and a small stylesheet is added so tables and status icons read without bootstrap;
* font-awesome status icons become text (✔ / ✘ / ⚠) so the status is visible without the font;
* ``index.html`` is replaced by a static HTML table listing every validation (suite, data asset,
  run, run time, success, counts, link) built from the stored validation results, sorted newest
  first: it needs no JavaScript at all.

:func:`external_references` finds what is left; :func:`make_site_offline` raises if anything
external survived (fail closed: a page that would phone a CDN is a bug, not a warning).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import html
import json
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_EXTERNAL: Final[str] = r"(?:https?:)?//"
"""Scheme-relative URLs (``//cdn…``) reach another host too."""

_SCRIPT_BLOCK = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_EXTERNAL_LINK_TAG = re.compile(
    rf"<link\b[^>]*\bhref\s*=\s*[\"']{_EXTERNAL}[^>]*>", re.IGNORECASE | re.DOTALL
)
_EXTERNAL_IMG = re.compile(
    rf"<img\b[^>]*\bsrc\s*=\s*[\"']{_EXTERNAL}[^>]*>", re.IGNORECASE | re.DOTALL
)
_EXTERNAL_ANCHOR = re.compile(
    rf"<a\b[^>]*\bhref\s*=\s*[\"']{_EXTERNAL}[^>]*>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL
)
_CSS_URL = re.compile(rf"url\(\s*[\"']?{_EXTERNAL}[^)]*\)", re.IGNORECASE)
_ONCLICK = re.compile(r"\s+on[a-z]+\s*=\s*\"[^\"]*\"", re.IGNORECASE)
_FILTER_BUTTONS = re.compile(
    r"<div class=\"mb-2\">\s*<p class=\"card-text col-12 p-0 mb-1\">\s*Validation Filter:.*?"
    r"</label>\s*</div>\s*</div>\s*</div>",
    re.DOTALL,
)
_NEWSLETTER = re.compile(r"<footer>\s*<p>Stay current on everything GX.*?</footer>", re.DOTALL)
_ICON = re.compile(r"<i\b[^>]*\bclass\s*=\s*\"([^\"]*\bfa-[^\"]*)\"[^>]*>\s*</i\s*>", re.IGNORECASE)
_ICON_TEXT: Final[tuple[tuple[str, str, str], ...]] = (
    ("fa-check", "✔", "ok"),
    ("fa-times", "✘", "failed"),
    ("fa-exclamation", "⚠", "warning"),
)
_REFERENCE = re.compile(
    rf"(?:\b(?:src|href|action|poster|data)\s*=\s*[\"']?\s*({_EXTERNAL}[^\"'\s>]*))"
    rf"|(?:url\(\s*[\"']?({_EXTERNAL}[^\"')\s]*))"
    rf"|(?:@import\s+[\"']({_EXTERNAL}[^\"']*))",
    re.IGNORECASE,
)

OFFLINE_CSS: Final[str] = """
/* tokumei: readable without bootstrap (Data Docs are rewritten to need no CDN, no JS) */
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1rem 2rem;
       color: #212529; line-height: 1.4; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef; }
.tk-ok, .text-success { color: #176b2c; }
.tk-failed, .text-danger { color: #a61b1b; font-weight: bold; }
.tk-warning, .text-warning { color: #8a5a00; }
.navbar, .sticky { position: static !important; height: auto !important; }
.d-none { display: none; }
"""


@dataclass(frozen=True)
class IndexEntry:
    """One validation as listed on the static index (names, times, counts: never data)."""

    suite: str
    data_asset: str
    run_name: str
    run_time: str
    success: bool
    evaluated: int
    successful: int
    page: str
    """Path of the validation page relative to the site root (``validations/…/….html``)."""


def _icon(match: re.Match[str]) -> str:
    classes = match.group(1)
    for marker, text, css in _ICON_TEXT:
        if marker in classes:
            return f'<span class="tk-{css}" aria-label="{css}">{text}</span>'
    return ""


def offline_html(text: str) -> str:
    """Rewrite one Data Docs page so it loads nothing from another host and needs no JS."""
    text = _SCRIPT_BLOCK.sub("", text)
    text = _FILTER_BUTTONS.sub("", text)
    text = _NEWSLETTER.sub("", text)
    text = _EXTERNAL_LINK_TAG.sub("", text)
    text = _EXTERNAL_IMG.sub("", text)
    text = _EXTERNAL_ANCHOR.sub(lambda m: m.group(1), text)
    text = _CSS_URL.sub("none", text)
    text = _ONCLICK.sub("", text)
    text = _ICON.sub(_icon, text)
    if "tokumei: readable without bootstrap" not in text:
        text = re.sub(
            r"</head\s*>", f"<style>{OFFLINE_CSS}</style>\n</head>", text, count=1, flags=re.I
        )
    return text


def external_references(site_dir: Path) -> list[tuple[str, str]]:
    """``(page, url)`` for every reference to another host left in the site's HTML/CSS files."""
    found: list[tuple[str, str]] = []
    for path in sorted(Path(site_dir).rglob("*")):
        if path.suffix.lower() not in (".html", ".htm", ".css", ".js") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _REFERENCE.finditer(text):
            url = next(g for g in m.groups() if g)
            found.append((path.relative_to(site_dir).as_posix(), url))
    return found


def render_index(entries: Iterable[IndexEntry], suites: Sequence[str], title: str) -> str:
    """The static index: every validation (newest first) and every suite, no JavaScript."""
    rows = sorted(entries, key=lambda e: (e.run_time, e.run_name, e.suite), reverse=True)
    e = html.escape
    body = []
    for r in rows:
        status = (
            '<span class="tk-ok">✔ passed</span>'
            if r.success
            else '<span class="tk-failed">✘ failed</span>'
        )
        body.append(
            f'<tr class="tk-validation"><td>{status}</td><td>{e(r.run_time)}</td>'
            f"<td>{e(r.run_name)}</td>"
            f'<td><a href="{e(r.page)}">{e(r.suite)}</a></td><td>{e(r.data_asset)}</td>'
            f"<td>{r.successful} / {r.evaluated}</td></tr>"
        )
    failed = sum(not r.success for r in rows)
    suite_items = "".join(
        f'<li><a href="expectations/{e(s)}.html">{e(s)}</a></li>' for s in sorted(suites)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{e(title)} — Data Docs</title>
<style>{OFFLINE_CSS}</style>
</head>
<body>
<h1>Data Docs | {e(title)}</h1>
<p>{len(rows)} validations, {failed} failed. Result formats are value-free: pages show counts,
shares and thresholds, never a cell value.</p>
<h2 id="validations">Validation results</h2>
<table id="validation-results">
<thead><tr><th>Status</th><th>Run time (UTC)</th><th>Run</th><th>Expectation suite</th>
<th>Data asset</th><th>Expectations met</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
<h2 id="suites">Expectation suites</h2>
<ul>{suite_items}</ul>
</body>
</html>
"""


def make_site_offline(
    site_dir: Path, entries: Iterable[IndexEntry], suites: Sequence[str], title: str
) -> None:
    """Rewrite every page of ``site_dir`` for offline reading and write the static index.

    Raises ``RuntimeError`` naming the page if a reference to another host is still there.
    """
    site_dir = Path(site_dir)
    for page in site_dir.rglob("*.html"):
        if page == site_dir / "index.html":
            continue
        text = page.read_text(encoding="utf-8")
        new = offline_html(text)
        if new != text:
            page.write_text(new, encoding="utf-8")
    tmp = site_dir / "index.html.tmp"
    tmp.write_text(render_index(entries, suites, title), encoding="utf-8")
    tmp.replace(site_dir / "index.html")
    # GX copies static/styles/*.css that point at its S3 logo; no page uses them
    for css in (site_dir / "static").rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        if _CSS_URL.search(text):
            css.write_text(_CSS_URL.sub("none", text), encoding="utf-8")
    left = external_references(site_dir)
    if left:
        page, _ = left[0]
        raise RuntimeError(
            f"Data Docs page {page} still references another host ({len(left)} references)"
        )


# --------------------------------------------------------------------------------------------
# one site with the history of runs


HISTORY_FILE: Final[str] = "validations.json"
"""The history site's list of every validation (index rows), newest appended last."""


def _read_history(site_dir: Path) -> list[IndexEntry]:
    path = site_dir / HISTORY_FILE
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [IndexEntry(**row) for row in rows]
    except (ValueError, TypeError) as exc:
        raise RuntimeError(
            f"Data Docs history {path} is unreadable ({type(exc).__name__})"
        ) from None


@contextlib.contextmanager
def _locked(site_dir: Path) -> Iterator[None]:
    """Runs of different dates may validate at once on one host: one merge at a time."""
    site_dir.mkdir(parents=True, exist_ok=True)
    with open(site_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def merge_into_history(
    run_site: Path, history_site: Path, entries: Sequence[IndexEntry], title: str
) -> Path:
    """Add one run's (already offline) pages to the history site and rewrite its index.

    Why copy instead of rebuilding: GX's site builder renders every result in its store, so a
    rebuild grows with the history; the run's pages are already rendered and scrubbed, so the
    history only needs them copied (validation pages never collide: their path holds the run
    name and run time) plus the newest rendering of each suite. The index rows are kept in
    ``validations.json`` so the index is rewritten without reading old pages.
    """
    run_site, history_site = Path(run_site), Path(history_site)
    with _locked(history_site):
        if (run_site / "static").is_dir():
            shutil.copytree(run_site / "static", history_site / "static", dirs_exist_ok=True)
        for entry in entries:
            target = history_site / entry.page
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_site / entry.page, target)
        (history_site / "expectations").mkdir(parents=True, exist_ok=True)
        for suite_page in (run_site / "expectations").glob("*.html"):
            shutil.copy2(suite_page, history_site / "expectations" / suite_page.name)
        pages = {e.page for e in entries}
        rows = [e for e in _read_history(history_site) if e.page not in pages] + list(entries)
        tmp = history_site / (HISTORY_FILE + ".tmp")
        tmp.write_text(
            json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False, indent=0),
            encoding="utf-8",
        )
        tmp.replace(history_site / HISTORY_FILE)
        suites = sorted(p.stem for p in (history_site / "expectations").glob("*.html"))
        index = history_site / "index.html"
        tmp = history_site / "index.html.tmp"
        tmp.write_text(render_index(rows, suites, title), encoding="utf-8")
        tmp.replace(index)
    return index
