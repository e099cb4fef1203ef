"""The input side's books: the records of many ``ingest`` tasks merged into one per source.

Why a module: each landing file is read by its own task (docs/architecture.md §2), so what a
source gave (lines, quarantine reasons, the rights filter's counts, the PII discovery sample)
arrives as one small record per file; ``check_inputs`` adds them up before it holds the day
against the policy. Records carry counts only, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokumei.anonymize.pii.discovery import ColumnFinding, DiscoveryReport
from tokumei.ingest.expectations import FileLines


def add_counts(
    into: dict[str, Any], more: Mapping[str, Any], skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Add the numbers of ``more`` to ``into``, nested dicts key by key (``skip``: keys left
    out at the top level).

    >>> add_counts({"a": 1, "e": {"x": 1}}, {"a": 2, "e": {"x": 1, "y": 3}, "rows": 9}, {"rows"})
    {'a': 3, 'e': {'x': 2, 'y': 3}}
    """
    for k, v in more.items():
        if k in skip:
            continue
        if isinstance(v, Mapping):
            add_counts(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v
    return into


def merge_files(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One source's file records (``ingest``) as one: the files' lines, the quarantine reasons,
    the rights filter's books and the discovery counts per column, each summed."""
    lines: list[FileLines] = []
    reasons: dict[str, int] = {}
    rights: dict[str, int] = {}
    discover: dict[str, Any] = {}
    for r in records:
        if r["lines"]:
            lines.append(FileLines.from_dict(r["lines"]))
        add_counts(reasons, r["quarantine_reasons"])
        add_counts(rights, r["rights"])
        for col, found in r["discover"].items():
            add_counts(discover.setdefault(col, {"sampled": 0, "counts": {}}), found)
    return {"lines": lines, "reasons": reasons, "rights": rights, "discover": discover}


def source_entry(
    lines: list[FileLines], reasons: Mapping[str, int], duplicates: Mapping[str, int]
) -> dict[str, Any]:
    """A source's entry in the run's ``extract`` record (the manifest's books read it)."""
    n = sum(f.lines for f in lines)
    bad = sum(f.quarantined for f in lines)
    return {
        "files": len(lines),
        "input": n,
        "kept_after_extract": n - bad,
        "quarantined": bad,
        "quarantine_reasons": dict(sorted(reasons.items())),
        # the same content delivered twice (copy, rename, link) is read once; the same event in
        # two files is counted once (rows, policy event_key)
        "duplicates": dict(duplicates),
    }


def discovery_report(found: Mapping[str, Any], roles: Mapping[str, str]) -> DiscoveryReport:
    """The merged discovery counts of a source as a report (rates over all files' samples)."""
    return DiscoveryReport(
        {
            c: ColumnFinding(c, roles.get(c), f["sampled"], dict(f["counts"]))
            for c, f in found.items()
        }
    )
