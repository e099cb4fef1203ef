"""Special-care data (要配慮個人情報) is never read: role ``special_care`` (issue 15).

A column with that role is classified (so it does not stop the run as unclassified) but its
values are never typed, never written to the work layer, the quarantine, the retained layer or
the release. The end-to-end test plants special-care values in a JSON Lines landing file (good
and quarantined lines), a CSV landing file and the operational DB, declares them in a copy of
the policy, and after every step of a run looks for the values in everything under ``out/``.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import DAY, TEST_KEY, all_text_under, seal_landing, write_handmade_landing

from tokumei.anonymize.policy import Role, load_policy
from tokumei.ingest.sources import read_landing_file, type_records

POLICIES = Path(__file__).resolve().parent.parent / "policies"

#: One marker per place the values are planted; none may appear under out/.
DIAGNOSIS = "SCDIAG-hiv-positive-4711"
DIAGNOSIS_BAD = "SCDIAG-quarantined-4712"
DIAGNOSIS_BROKEN = "SCDIAG-broken-json-4713"
FACE = "SCFACE-template-b64-AAAAQ"
FACE_BAD = "SCFACE-quarantined-AAAAR"
CREED = "SCCREED-member-of-x"


def _policy_dir(tmp: Path) -> Path:
    """The shipped policy plus one special-care column in events, measurements and users."""
    target = tmp / "policies"
    shutil.copytree(POLICIES, target)
    for name, col in (
        ("events", "diagnosis"),
        ("measurements", "face_template"),
        ("users", "creed"),
    ):
        path = target / f"{name}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["columns"][col] = {"type": "string", "role": "special_care"}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target


def _plant(landing: Path) -> None:
    ev = landing / "events" / f"date={DAY}"
    good = {
        "ts": f"{DAY}T12:00:00+09:00",
        "event": "page_view",
        "cookie_id": "cookie-0002",
        "user_id": "user-0002",
        "url": "https://shop.example.jp/",
        "diagnosis": DIAGNOSIS,
    }
    bad = {**good, "ts": "not a time", "diagnosis": DIAGNOSIS_BAD}
    with gzip.open(ev / "part-3.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        fh.write('{"ts": "x", "diagnosis": "' + DIAGNOSIS_BROKEN + '"\n')  # broken JSON
    ms = landing / "measurements" / f"date={DAY}" / "part-0.csv"
    lines = ms.read_text().splitlines()
    out = [lines[0] + ",face_template"]
    out += [ln + f",{FACE}" for ln in lines[1:-1]]
    out.append(lines[-1] + f",{FACE_BAD}")  # the impossible weight: quarantined
    ms.write_text("\n".join(out) + "\n")
    seal_landing(landing)
    con = sqlite3.connect(landing / "ops.db")
    con.execute("ALTER TABLE users ADD COLUMN creed")
    con.execute("UPDATE users SET creed = ?", (CREED,))
    con.commit()
    con.close()


NEEDLES = (DIAGNOSIS, DIAGNOSIS_BAD, DIAGNOSIS_BROKEN, FACE, FACE_BAD, CREED)


def _assert_absent(root: Path, when: str) -> None:
    for path, text in all_text_under(root):
        for needle in NEEDLES:
            assert needle not in text, f"special-care value in {path} after {when}"


def test_special_care_columns_are_never_read(tmp_path: Path) -> None:
    policy = load_policy(_policy_dir(tmp_path)).source("events")
    assert policy.columns["diagnosis"].role is Role.SPECIAL_CARE
    path = tmp_path / "e.jsonl"
    path.write_text(
        json.dumps(
            {
                "ts": f"{DAY}T12:00:00+09:00",
                "event": "click",
                "cookie_id": "c",
                "diagnosis": DIAGNOSIS,
            }
        )
        + "\n"
        + json.dumps({"ts": "no", "event": "click", "cookie_id": "c", "diagnosis": DIAGNOSIS_BAD})
        + "\n"
        + '{"ts": "x", "diagnosis": "'
        + DIAGNOSIS_BROKEN
        + '"\n'
    )
    good, bad = read_landing_file(path, policy)
    assert "diagnosis" not in good.columns and good.height == 1
    assert bad.height == 2
    raws = [r for r in bad["raw"].to_list() if r is not None]
    assert len(raws) == 1  # the JSON object, redacted
    assert json.loads(raws[0]) == {"ts": "no", "event": "click", "cookie_id": "c"}
    for text in (str(good.rows()), str(bad.rows())):
        assert not any(n in text for n in NEEDLES)
    # the same through the DB path (type_records) and a CSV
    users = load_policy(_policy_dir(tmp_path / "u")).tables["users"]
    frame = pl.DataFrame({"user_id": ["u1"], "creed": [CREED]})
    good, bad = type_records(frame, users, "table users")
    assert "creed" not in good.columns and CREED not in str(good.rows())


def test_special_care_values_appear_nowhere_under_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    landing = write_handmade_landing(tmp_path / "landing")
    _plant(landing)
    out = tmp_path / "out"
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    settings = Settings(
        landing=landing,
        db_url=f"sqlite:///{landing / 'ops.db'}",
        out=out,
        policy_dir=_policy_dir(tmp_path),
    ).resolved()
    checked: list[str] = []

    def after_each_step(step: str, phase: str, _seconds: float | None) -> None:
        if phase == "done":  # the work layer, staging, quarantine: everything written so far
            _assert_absent(out, step)
            checked.append(step)

    result = steps.run_all(settings, DAY, progress=after_each_step, isolate=False)
    assert result["publish"]["published"]
    assert "extract" in checked and "publish" in checked
    _assert_absent(out, "the run")
    # the planted lines were read: the good one counted, the bad ones quarantined
    q = pl.read_parquet(out / "quarantine" / "events" / f"date={DAY}" / "*.parquet")
    assert {"field ts: not a valid timestamp", "malformed JSON"} <= set(q["reason"])
    notice = (out / "reports" / f"date={DAY}" / "items_notice.md").read_text()
    for col in ("diagnosis", "face_template", "creed"):
        assert f"`{col}`" in notice  # declared as not read, by name only
    assert "要配慮個人情報" in notice
