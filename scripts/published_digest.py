"""Digest of every published table of two small runs, to compare code versions.

Why: a refactoring of the pipeline (e.g. the policy compiler replacing hard-coded
generalization) must leave the published output equal on the same landing and key. Run this
script against two source trees (``PYTHONPATH=<tree> python scripts/published_digest.py DIR``)
and ``diff`` the JSON it prints: one line per published Parquet file, with its row count and a
hash of its rows in a canonical order (column order and Parquet metadata do not count).

The runs: the hand-written landing of ``tests/conftest.py`` and a generated day of 300 users
(seed 5), each with the test pseudonym key.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

DAY = "2026-11-24"
KEY = "test-key-0123456789abcdef0123456789abcdef"


def _digest(path: Path) -> dict[str, object]:
    frame = pl.read_parquet(path)
    frame = frame.select(sorted(frame.columns))
    frame = frame.sort(frame.columns, nulls_last=True)
    body = frame.write_csv().encode()
    return {"rows": frame.height, "sha256": hashlib.sha256(body).hexdigest()[:16]}


def _run(landing: Path, out: Path) -> dict[str, object]:
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    steps.run_all(settings.resolved(), DAY, isolate=False)
    return {
        str(p.relative_to(out)): _digest(p) for p in sorted((out / "published").rglob("*.parquet"))
    }


def main(root: Path) -> None:
    """Write both landings under ``root``, run them, print the digests as JSON."""
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = KEY
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import write_handmade_landing

    result: dict[str, object] = {}
    handmade = write_handmade_landing(root / "handmade" / "landing")
    result["handmade"] = _run(handmade, root / "handmade" / "out")
    gen_landing = root / "generated" / "landing"
    db = f"sqlite:///{gen_landing / 'ops.db'}"
    cmd = [sys.executable, "-m", "tokumei.cli", "generate", "--landing", str(gen_landing)]
    cmd += ["--db-url", db, "--start", DAY, "--users", "300", "--seed", "5"]
    cmd += ["--events-per-user-day", "8"]
    subprocess.run(cmd, check=True, capture_output=True)
    result["generated"] = _run(gen_landing, root / "generated" / "out")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
