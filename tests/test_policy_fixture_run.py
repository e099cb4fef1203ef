"""A whole run under a policy fixture: a new quasi-identifier is a YAML change (issue 16, part 1).

The landing gains a column ``proxy_ip``. Under the shipped policy the run stops before writing
(the column is not classified); under a copy of ``policies/`` that declares it a
quasi-identifier with hierarchy ``ip`` at level 1 and output ``proxy_net``, the run generalizes
it (the work layer holds the /24 network, never the address) and the published items notice
lists it with the hierarchy, level and output the compiled plan ran. A new ``free_text`` column
``note`` is scrubbed by the same plan. No code changes.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import DAY, PLANTED, TEST_KEY, seal_landing, write_handmade_landing

from tokumei.anonymize.policy import UnclassifiedColumnError, default_policy_dir
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

pytestmark = pytest.mark.slow


def _add_proxy_ip(landing: Path) -> None:
    path = landing / "events" / f"date={DAY}" / "part-0.jsonl.gz"
    out: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh.read().splitlines()):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                out.append(line)  # the malformed lines stay malformed
                continue
            if isinstance(row, dict) and row.get("event") == "page_view":
                row["proxy_ip"] = f"192.0.2.{n % 250}"
            if isinstance(row, dict) and row.get("event") == "search":
                row["note"] = f"返信先 {PLANTED['email2']}"
            out.append(json.dumps(row, ensure_ascii=False))
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    seal_landing(landing)


def _policy_with_proxy_ip(root: Path) -> Path:
    directory = root / "policies"
    shutil.copytree(default_policy_dir(), directory)
    path = directory / "events.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"]["proxy_ip"] = {
        "type": "string",
        "role": "quasi_identifier",
        "hierarchy": "ip",
        "level": 1,
        "output": "proxy_net",
    }
    data["columns"]["note"] = {"type": "string", "role": "free_text"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return directory


def test_a_quasi_identifier_added_in_yaml_is_generalized_and_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    landing = write_handmade_landing(tmp_path / "landing")
    _add_proxy_ip(landing)
    db = f"sqlite:///{landing / 'ops.db'}"

    shipped = Settings(landing=landing, db_url=db, out=tmp_path / "out0").resolved()
    with pytest.raises(TokumeiError) as err:
        steps.run_all(shipped, DAY)
    assert isinstance(err.value.__cause__, UnclassifiedColumnError)
    assert "proxy_ip" in str(err.value) and "192.0.2." not in str(err.value)

    policy_dir = _policy_with_proxy_ip(tmp_path)
    out = tmp_path / "out"
    settings = Settings(landing=landing, db_url=db, out=out, policy_dir=policy_dir).resolved()
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    try:
        for name, fn in steps.STEPS:
            fn(settings, DAY, run_id)
            if name == "ingest":
                work = pl.read_parquet(
                    settings.out / "_work" / run_id / "generalized" / "events" / "*" / "*.parquet"
                )
                assert "proxy_ip" not in work.columns
                nets = set(work["proxy_net"].drop_nulls())
                assert nets == {"192.0.2.0/24"}
                views = work.filter(pl.col("event") == "page_view").height
                assert work["proxy_net"].is_not_null().sum() == views > 0
            if name == "scrub":
                work = steps.scrubbed_scan(steps._paths(settings, DAY, run_id), "events").collect()
                notes = work["note"].drop_nulls()
                searches = work.filter(pl.col("event") == "search").height
                assert notes.len() == searches > 0
                assert notes.str.contains("<EMAIL_ADDRESS>").all()
                assert not notes.str.contains(PLANTED["email2"], literal=True).any()
    finally:
        steps.cleanup(settings, DAY, run_id)
    notice = (out / "reports" / f"date={DAY}" / "items_notice.md").read_text(encoding="utf-8")
    row = next(ln for ln in notice.splitlines() if ln.startswith("| `events` | `proxy_ip` |"))
    assert "(hierarchy `ip`, level 1) → `proxy_net`" in row and "/24" in row
    assert "192.0.2." not in notice
