"""Behaviour preserved (issue 16): on the same landing and key, the published tables equal a
reference run's.

The reference (``tests/data/reference_run.json``) holds, per published table, its row count and a
digest of its rows in a canonical order; it was written by the code before the one-pass ingest
(docs/architecture.md §2). A change that alters published output on purpose rewrites it with
``python tests/test_reference_run.py --write`` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import DAY, TEST_KEY  # noqa: E402
from published import published_tables, read_published  # noqa: E402

from tokumei.infra.settings import Settings  # noqa: E402
from tokumei.pipeline import steps  # noqa: E402
from tokumei.synthetic.generator import generate  # noqa: E402

REFERENCE = Path(__file__).parent / "data" / "reference_run.json"


def _digest(frame: pl.DataFrame) -> str:
    """Order-free digest of a table: its columns sorted by name, its rows sorted, as CSV."""
    frame = frame.select(sorted(frame.columns))
    frame = frame.sort(frame.columns, nulls_last=True)
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def published_digests(landing: Path, out: Path) -> dict[str, dict[str, object]]:
    """Run one day on ``landing`` and digest every published table."""
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    steps.run_all(settings.resolved(), DAY)
    tables: dict[str, dict[str, object]] = {}
    for name in published_tables(out, DAY):
        frame = read_published(out, *name.split("/"), DAY)
        tables[name] = {"rows": frame.height, "digest": _digest(frame)}
    return tables


def _landing(root: Path) -> Path:
    generate(
        root,
        f"sqlite:///{root / 'ops.db'}",
        date.fromisoformat(DAY),
        days=1,
        users=150,
        seed=11,
        malformed_rate=0.01,
        chunk_size=400,
        max_lines_per_part=700,
    )
    return root


def test_published_tables_equal_the_reference_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    tables = published_digests(_landing(tmp_path / "landing"), tmp_path / "out")
    reference = json.loads(REFERENCE.read_text())
    assert len(tables) >= 8, "the run published fewer tables than a day has"
    assert tables == reference


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import os
    import tempfile

    os.environ["TOKUMEI_PSEUDONYM_KEY"] = TEST_KEY
    with tempfile.TemporaryDirectory() as tmp:
        found = published_digests(_landing(Path(tmp) / "landing"), Path(tmp) / "out")
    REFERENCE.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE} ({len(found)} tables)")
