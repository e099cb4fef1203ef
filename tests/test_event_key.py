"""Row-level de-duplication where the policy declares an event key (issue 17).

A producer that resends part of a day puts the same events in a second file whose content
differs from the first (so file-level de-duplication cannot catch it). With ``event_key`` in
``policies/events.yaml`` each event counts once: the published tables equal those of the day
without the resent file, and the copies are in the books as dropped by rule and reported.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, TEST_KEY, seal_landing, write_handmade_landing
from published import published_tables, read_published

from tokumei.anonymize.policy import PolicyError, default_policy_dir, load_policy
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

KEY = "event_key: [cookie_id, session_id, ts, event, url]\n"


def _policy(tmp: Path, line: str = KEY) -> Path:
    folder = tmp / "policies"
    shutil.copytree(default_policy_dir(), folder)
    events = folder / "events.yaml"
    events.write_text(events.read_text(encoding="utf-8") + line, encoding="utf-8")
    return folder


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def _run(landing: Path, out: Path, policy: Path) -> tuple[dict, dict[str, pl.DataFrame]]:
    settings = Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out, policy_dir=policy
    )
    # the run's own records (the public manifest prints counts rounded to a base)
    records = steps.run_all(settings.resolved(), DAY)["check_inputs"]
    tables = {
        name: read_published(out, *name.split("/"), DAY) for name in published_tables(out, DAY)
    }
    return records, tables


def test_a_resent_event_counts_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    policy = _policy(tmp_path)
    plain = write_handmade_landing(tmp_path / "plain")
    resent = write_handmade_landing(tmp_path / "resent")
    folder = resent / "events" / f"date={DAY}"
    lines = _lines(sorted(folder.glob("*.jsonl*"))[0])
    # three events again, in a file of their own: not a copy of any delivered file
    (folder / "resent-batch.jsonl").write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    seal_landing(resent)
    base_manifest, base = _run(plain, tmp_path / "out-plain", policy)
    manifest, tables = _run(resent, tmp_path / "out-resent", policy)
    assert tables.keys() == base.keys()
    for name, frame in base.items():
        assert tables[name].equals(frame), name
    books, base_books = (
        manifest["filter_rights"]["events"],
        base_manifest["filter_rights"]["events"],
    )
    assert books["input"] == base_books["input"] + 3
    assert books["kept"] == base_books["kept"] > 0
    assert books["dropped_by_rule"] == base_books["dropped_by_rule"] + 3
    assert manifest["extract"]["events"]["duplicates"]["events"] == 3
    assert manifest["extract"]["events"]["input"] == base_manifest["extract"]["events"]["input"] + 3


def test_without_an_event_key_the_copies_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule is the policy's: the shipped events policy declares no key, so resent events
    are rows like any other (the test above is not vacuous)."""
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    assert not load_policy(default_policy_dir()).source("events").event_key
    resent = write_handmade_landing(tmp_path / "resent")
    folder = resent / "events" / f"date={DAY}"
    lines = _lines(sorted(folder.glob("*.jsonl*"))[0])
    (folder / "resent-batch.jsonl").write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    seal_landing(resent)
    manifest, _ = _run(resent, tmp_path / "out", default_policy_dir())
    assert manifest["extract"]["events"]["duplicates"]["events"] == 0
    assert manifest["filter_rights"]["events"]["kept"] > 0


def test_an_event_key_naming_an_unknown_column_is_a_policy_error(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "event_key: [cookie_id, shoe_size]\n")
    with pytest.raises(PolicyError, match="shoe_size"):
        load_policy(policy)
