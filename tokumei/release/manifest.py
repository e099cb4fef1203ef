"""The run manifest (DESIGN §5): what ran, on what, and whether the books balance.

Only names, counts, versions and outcomes go in; never a data value and never a key. A test
scans every manifest for planted PII to keep it so.
"""

from __future__ import annotations

import functools
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


@functools.cache
def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        v = version("tokumei")
    except PackageNotFoundError:  # pragma: no cover
        v = "unknown"
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{v}+g{sha}" if sha else v
    except (OSError, subprocess.SubprocessError):
        return v


def build_manifest(
    *,
    run_id: str,
    day: str,
    policy_version: str,
    sources: dict[str, dict[str, int]],
    outputs: dict[str, dict[str, Any]],
    steps: dict[str, Any],
    status: str,
    reason: str | None = None,
    anonymized: dict[str, Any] | None = None,
    disclosure: dict[str, Any] | None = None,
    privacy_budget: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest dict (JSON-ready)."""
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "date": day,
        "policy_version": policy_version,
        "code_version": code_version(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "outputs": outputs,
        "steps": steps,
        "status": status,
    }
    if reason is not None:
        manifest["reason"] = reason
    if anonymized is not None:
        manifest["anonymized"] = anonymized
    if disclosure is not None:
        manifest["disclosure"] = disclosure
    if privacy_budget is not None:
        manifest["privacy_budget"] = privacy_budget
    return manifest
