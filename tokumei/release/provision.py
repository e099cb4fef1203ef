"""The provision ledger: every hand-over of a release to a third party (APPI Art. 44).

A business that provides anonymously processed information (匿名加工情報) to a third party must
publish the items and the method of provision and state to the recipient that the data *is*
anonymously processed information (Art. 44). ``tokumei provide`` does both for one release:

* it appends one JSON line to ``<out>/provision/ledger.jsonl``: recipient, release date, the
  datasets with their items (columns, read from the published files themselves), the method,
  the release's run id and the SHA-256 of its ``manifest.json``, the time, and the SHA-256 of the
  previous line (a hash chain: an edited or deleted line breaks every later one, which
  :func:`read_ledger` checks, so the ledger is append-only in fact, not only by convention);
* it writes the statement to the recipient (Japanese and English) next to it, under
  ``provision/statements/``.

It refuses a dataset the release does not hold and a release that was not published, so the
ledger can never claim a hand-over of something that does not exist. The ledger holds names and
hashes only, never a data value; the privacy report of later releases shows it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tokumei.infra.errors import TokumeiError

LEDGER = Path("provision") / "ledger.jsonl"
STATEMENTS = Path("provision") / "statements"
DEFAULT_METHOD = "electronic file transfer"


class ProvisionError(TokumeiError):
    """A provision cannot be recorded (no such release or dataset, a broken ledger)."""


@dataclass(frozen=True)
class Provision:
    """One recorded hand-over: the ledger entry and the statement written for it."""

    entry: dict[str, Any]
    statement: Path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_ledger(out: Path) -> list[dict[str, Any]]:
    """All entries of ``<out>/provision/ledger.jsonl``, oldest first; checks the hash chain.

    Raises :class:`ProvisionError` when a line does not parse or does not name the hash of
    the line before it (the ledger was edited): a provision record that may have been altered
    is not shown as if it were intact.
    """
    path = Path(out) / LEDGER
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    prev = ""
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise ProvisionError(f"{LEDGER}: line {n} is not valid JSON") from None
        if entry.get("previous_sha256", "") != prev:
            raise ProvisionError(f"{LEDGER}: line {n} does not follow the line before it")
        prev = _sha256(line)
        entries.append(entry)
    return entries


def _release(out: Path, day: str) -> tuple[dict[str, Any], str]:
    manifest_path = Path(out) / "reports" / f"date={day}" / "manifest.json"
    if not manifest_path.exists():
        raise ProvisionError(f"no release for {day}: {manifest_path} does not exist")
    raw = manifest_path.read_bytes()
    manifest = json.loads(raw)
    if manifest.get("status") != "published":
        raise ProvisionError(f"the release of {day} was not published")
    return manifest, _sha256(raw)


def _resolve(manifest: dict[str, Any], name: str) -> str:
    """``stats/x`` / ``anonymized/y`` as written, or a bare name that matches one output."""
    outputs = manifest.get("outputs") or {}
    if name in outputs:
        return name
    matches = [o for o in outputs if o.split("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    raise ProvisionError(
        f"dataset {name!r} is not in the release of {manifest.get('date')} "
        f"(it holds: {', '.join(sorted(outputs))})"
    )


def _items(out: Path, day: str, dataset: str) -> list[str]:
    """The columns of ``dataset`` under ``day`` at the newest release of the published Delta
    tables (what is actually handed over; docs/adr/0008-published-tables-delta-lake.md)."""
    from tokumei.infra.tableformat import read_day

    frame = read_day(Path(out) / "published", dataset, day)
    if frame is None:
        raise ProvisionError(f"dataset {dataset!r} of {day} is not in the published tables")
    return frame.columns


def _slug(text: str) -> str:
    ascii_part = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40]
    return f"{ascii_part or 'recipient'}-{_sha256(text.encode())[:8]}"


def statement_text(entry: dict[str, Any]) -> str:
    """The statement to the recipient (Art. 44: 匿名加工情報である旨の明示), ja + en."""
    lines = [
        "# 匿名加工情報である旨の明示 / Statement: anonymously processed information",
        "",
        f"提供先 / Recipient: {entry['recipient']}  ",
        f"提供日時 / Provided at: {entry['recorded_at']}  ",
        f"対象データの日付 / Release date: {entry['date']}  ",
        f"実行ID / Release (run id): {entry['run_id']}  ",
        f"マニフェストの SHA-256 / Manifest SHA-256: {entry['manifest_sha256']}  ",
        f"提供の方法 / Method of provision: {entry['method']}",
        "",
        "提供するデータのうち次の匿名加工情報は、個人情報の保護に関する法律第2条第6項に規定する"
        "匿名加工情報です（同法第44条に基づき明示します）。受領者は、本人を識別するために他の"
        "情報と照合すること、および加工の方法に関する情報を取得することを禁じられています"
        "（同法第45条）。  ",
        "The anonymously processed information listed below is anonymously processed "
        "information as defined in Article 2(6) of the Act on the Protection of Personal "
        "Information (stated under Article 44). The recipient must not collate it with other "
        "information to identify a person, nor acquire information about the processing "
        "method (Article 45).",
        "",
        "統計情報は個人に関する情報を含まない集計値です。 / The statistics are aggregates "
        "that contain no information about an individual.",
        "",
        "## 提供するデータと項目 / Datasets and items provided",
        "",
    ]
    for name, cols in sorted(entry["datasets"].items()):
        kind = (
            "匿名加工情報 / anonymously processed information"
            if name.startswith("anonymized/")
            else "統計情報 / statistics"
        )
        lines.append(f"- `{name}` ({kind}): " + ", ".join(f"`{c}`" for c in cols))
    return "\n".join(lines) + "\n"


def provide(
    out: Path,
    day: str,
    recipient: str,
    datasets: list[str],
    method: str = DEFAULT_METHOD,
    now: datetime | None = None,
) -> Provision:
    """Record one hand-over of ``datasets`` of the release of ``day`` to ``recipient``.

    Checks everything first (the release is published, each dataset is in it and has its
    file, the ledger's chain is intact), then writes the statement and appends the ledger
    line with one ``write`` on a file opened for appending, flushed to disk.
    """
    out = Path(out)
    if not recipient.strip():
        raise ProvisionError("the recipient must be named")
    if not datasets:
        raise ProvisionError("name at least one dataset to provide")
    manifest, digest = _release(out, day)
    names = sorted({_resolve(manifest, d.strip()) for d in datasets if d.strip()})
    items = {name: _items(out, day, name) for name in names}
    previous = read_ledger(out)
    ledger = out / LEDGER
    prev_hash = ""
    if previous:
        last = [ln for ln in ledger.read_bytes().splitlines() if ln.strip()][-1]
        prev_hash = _sha256(last)
    at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    entry: dict[str, Any] = {
        "recorded_at": at,
        "recipient": recipient.strip(),
        "date": day,
        "run_id": manifest.get("run_id", ""),
        "manifest_sha256": digest,
        "datasets": items,
        "anonymously_processed": [n for n in names if n.startswith("anonymized/")],
        "method": method.strip() or DEFAULT_METHOD,
        "previous_sha256": prev_hash,
    }
    stamp = re.sub(r"[^0-9T]", "", at)[:15]
    statement = out / STATEMENTS / f"{day}_{_slug(entry['recipient'])}_{stamp}.md"
    entry["statement"] = str(statement.relative_to(out))
    statement.parent.mkdir(parents=True, exist_ok=True)
    statement.write_text(statement_text(entry), encoding="utf-8")
    line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Provision(entry, statement)


__all__ = ["LEDGER", "Provision", "ProvisionError", "provide", "read_ledger", "statement_text"]
