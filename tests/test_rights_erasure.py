"""Rights erasure: a deletion request removes every row of the person from landing and quarantine,
leaves everyone else's bytes alone, is audited without personal data and is applied only once."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, airflow_env, write_handmade_landing

from tokumei.anonymize.policy import default_policy_dir, load_policy
from tokumei.infra.errors import TokumeiError
from tokumei.jobs.rights_erasure import AUDIT_LOG, apply_rights_requests

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
NOW = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
EARLIER = "2026-11-23"
# the ids of user-0032 in the hand-written landing: user, cookie (cookies file), scale (devices
# file), app device (events); none may survive anywhere, nor appear in the audit log
THEIRS = ("user-0032", "cookie-0032", "scale-32", "dev-32")

EXTRA_EVENTS = [
    b'{"ts": "2026-11-23T09:00:00+09:00", "event": "page_view", "cookie_id": "cookie-0032"}',
    b'{"ts": "2026-11-23T09:00:00+09:00", "event": "page_view", "cookie_id": "cookie-0031"}',
    b'{"ts": "2026-11-23T09:01:00+09:00", "event": "click", "user_id": "user-0032", "cookie_id"',
    b'{"ts": "2026-11-23T09:02:00+09:00", "event": "click", "user_id": "user-0005", "cookie_id"',
    b'{"ts": "2026-11-23T09:03:00+09:00", "event": "click", "user_id": "user-0032", "x": "\xff"}',
    b'{"ts": "2026-11-23T09:03:00+09:00", "event": "click", "cookie_id": "\xfe\xff"}',
    b'{"ts": "2026-11-23T09:04:00+09:00", "event": "click", "user_id": "user-00321", "cookie_id": "k"}',
    b'{"ts": "2026-11-23T09:05:00+09:00", "event": "click", "cookie_id": "cookie-0006"}\r',
    b'[1, 2, "dev-32"]',
    b"not json at all, mentions user-0003 only",
]
QUARANTINE = {
    ("events", DAY): [
        b'{"ts": "2026-11-24T25:00:00+09:00", "event": "click", "cookie_id": "cookie-0032"}',
        b'{"ts": null, "event": "click", "user_id": "user-0032"}',
        b'{"ts": null, "event": "click", "user_id": "user-0004", "cookie_id": "cookie-0004"}',
        b"\xff\xfe broken bytes",
        b'{"user_id": "user-00320"}',
    ],
    ("db_users", DAY): [b'{"user_id": "user-0032", "birth_date": "1999-02-31"}'],
    ("measurements", EARLIER): [
        b'{"device_id": "scale-32", "ts": "x"}',
        b'{"device_id": "scale-3"}',
    ],
}


def _landing(tmp_path: Path) -> tuple[Path, Path]:
    landing, out = write_handmade_landing(tmp_path / "landing"), tmp_path / "out"
    ev = landing / "events" / f"date={EARLIER}"
    ev.mkdir(parents=True)
    (ev / "part-0.jsonl").write_bytes(b"\n".join(EXTRA_EVENTS))  # no trailing newline
    ms = landing / "measurements" / f"date={EARLIER}"
    ms.mkdir(parents=True)
    with gzip.open(ms / "part-0.csv.gz", "wb") as fh:
        fh.write(
            b"device_id,user_id,ts,weight_kg,body_fat_pct\n"
            b"scale-32,,2026-11-23T07:00:00+09:00,66.0,21.0\n"
            b'scale-5,user-0005,2026-11-23T07:00:00+09:00,52.5,"20.5"\n'
        )
    for (source, day), raws in QUARANTINE.items():
        q = out / "quarantine" / source / f"date={day}"
        q.mkdir(parents=True)
        pl.DataFrame(
            {
                "file": ["part-0.jsonl"] * len(raws),
                "line": list(range(1, len(raws) + 1)),
                "reason": ["malformed JSON"] * len(raws),
                "raw": raws,
            },
            schema={"file": pl.String, "line": pl.Int64, "reason": pl.String, "raw": pl.Binary},
        ).write_parquet(q / "part-0.parquet")
    return landing, out


def _is_theirs(line: bytes) -> bool:
    """The test's own definition of a line of user-0032 (independent of the implementation)."""
    try:
        obj = json.loads(line)
    except ValueError:
        return any(f'"{i}"'.encode() in line for i in THEIRS)
    if isinstance(obj, list):
        return any(v in THEIRS for v in obj)
    return any(obj.get(k) in THEIRS for k in ("user_id", "cookie_id", "device_id"))


def _lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.split(b"\n")


def _snapshot(*roots: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(r.parent)): p.read_bytes()
        for r in roots
        if r.exists()
        for p in sorted(r.rglob("*"))
        if p.is_file()
    }


def _frames(root: Path) -> dict[str, pl.DataFrame]:
    return {str(p.relative_to(root)): pl.read_parquet(p) for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def policy():  # noqa: ANN201
    return load_policy(default_policy_dir())


def test_erases_every_row_of_the_person_and_nothing_else(tmp_path: Path, policy) -> None:
    landing, out = _landing(tmp_path)
    db = f"sqlite:///{landing / 'ops.db'}"
    text_files = [p for p in landing.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz", ".csv"))]
    text_files.append(landing / "measurements" / f"date={EARLIER}" / "part-0.csv.gz")
    before = {p: _lines(p) for p in text_files}
    parquet_before = _frames(landing)
    quarantine_before = _frames(out / "quarantine")

    report = apply_rights_requests(landing, out, db, policy, NOW)

    # JSON Lines / CSV: exactly the person's lines are gone, every other line is the same bytes
    for path, lines in before.items():
        after = _lines(path)
        if path.name.endswith(".csv.gz"):
            assert after == [lines[0], lines[2], lines[3]]  # header, scale-5, trailing ""
        elif path.suffix == ".csv":
            assert after == [ln for ln in lines if b"scale-32," not in ln]
        else:
            assert after == [ln for ln in lines if not _is_theirs(ln)], path
    extra = _lines(landing / "events" / f"date={EARLIER}" / "part-0.jsonl")
    assert len(extra) == len(EXTRA_EVENTS) - 4  # cookie-0032, 2 malformed with the id, [.., dev-32]
    assert b"user-00321" in b"".join(extra) and EXTRA_EVENTS[-1] in extra  # no prefix collision
    # Parquet (devices): the person's row only
    for name, frame in _frames(landing).items():
        expected = parquet_before[name].filter(pl.col("user_id") != "user-0032")
        assert frame.equals(expected), name
        assert frame.height == 39
    # quarantine: rows whose raw line holds one of the ids
    for name, frame in _frames(out / "quarantine").items():
        old = quarantine_before[name]
        gone = [r for r in old["raw"].to_list() if any(f'"{i}"'.encode() in r for i in THEIRS)]
        assert frame.height == old.height - len(gone), name
        assert frame.equals(old.filter(~pl.col("raw").is_in(gone))), name
    # nothing of the person is left anywhere (user, cookie, scale, app device ids)
    for path in landing.rglob("*"):
        if path.is_file() and path.name != "ops.db":
            content = (
                str(pl.read_parquet(path).rows())
                if path.suffix == ".parquet"
                else b"\n".join(_lines(path)).decode("utf-8", "replace")
            )
            for ident in THEIRS:
                assert f"{ident}," not in content and f'{ident}"' not in content, (path, ident)
                assert f"'{ident}'" not in content, (path, ident)
    assert not list(landing.rglob("*.tmp")) and not list(out.rglob("*.tmp"))

    # the audit log: one entry (request 1; user-0033's opt-out is not an erasure), no PII
    audit_text = (out / AUDIT_LOG).read_text()
    entries = [json.loads(ln) for ln in audit_text.splitlines()]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["request_id"] == 1 and entry["kind"] == "deletion"
    assert entry["applied_at"] == NOW.isoformat()
    assert entry["rows_removed"] == {
        f"landing/cookies/date={DAY}": 1,
        f"landing/devices/date={DAY}": 1,
        f"landing/events/date={DAY}": 4,
        f"landing/events/date={EARLIER}": 4,
        f"landing/measurements/date={DAY}": 1,
        f"landing/measurements/date={EARLIER}": 1,
        f"quarantine/db_users/date={DAY}": 1,
        f"quarantine/events/date={DAY}": 2,
        f"quarantine/measurements/date={EARLIER}": 1,
    }
    assert entry["datasets_touched"] == sorted(entry["rows_removed"])
    assert "published" in entry and "anonymized" in entry["published"]
    for needle in (*THEIRS, "user-0033", "0032", "scale-", "cookie-"):
        assert needle not in audit_text, needle
    summary = report.to_dict()
    assert summary["applied"] == 1 and summary["remaining"] == 0
    assert summary["rows_removed"] == 16 and summary["files_rewritten"] == 9
    assert "user-0032" not in json.dumps(summary)

    # a second call applies nothing and changes nothing
    snap = _snapshot(landing, out)
    again = apply_rights_requests(landing, out, db, policy, NOW)
    assert again.applied == [] and again.to_dict()["already_applied"] == 1
    assert _snapshot(landing, out) == snap


def test_dry_run_changes_nothing_and_reports_the_same(tmp_path: Path, policy) -> None:
    landing, out = _landing(tmp_path)
    db = f"sqlite:///{landing / 'ops.db'}"
    snap = _snapshot(landing, out)
    dry = apply_rights_requests(landing, out, db, policy, NOW, dry_run=True)
    assert _snapshot(landing, out) == snap and not (out / AUDIT_LOG).exists()
    real = apply_rights_requests(landing, out, db, policy, NOW)
    assert dry.applied[0]["rows_removed"] == real.applied[0]["rows_removed"]
    assert dry.to_dict()["rows_removed"] == real.to_dict()["rows_removed"] == 16


def test_bounded_batches_rejected_requests_and_later_requests(tmp_path: Path, policy) -> None:
    landing, out = _landing(tmp_path)
    con = sqlite3.connect(landing / "ops.db")
    con.executemany(
        "INSERT INTO rights_requests VALUES (?,?,?,?,?)",
        [
            (3, "user-0010", "ceasing", "2026-11-20 00:00:00", None),
            (4, "user-0011", "deletion", "2026-11-03 00:00:00", "rejected"),
            (5, "user-0032", "ceasing", "2026-11-21 00:00:00", "pending"),
        ],
    )
    con.commit()
    con.close()
    db = f"sqlite:///{landing / 'ops.db'}"
    first = apply_rights_requests(landing, out, db, policy, NOW, max_requests=1)
    assert [e["request_id"] for e in first.applied] == [1]  # the oldest first
    assert first.remaining == 2
    second = apply_rights_requests(landing, out, db, policy, NOW)
    assert [e["request_id"] for e in second.applied] == [3, 5]
    by_id = {e["request_id"]: e for e in second.applied}
    assert by_id[5]["rows_removed"] == {}  # user-0032's data was already erased by request 1
    assert by_id[3]["rows_removed"][f"landing/events/date={DAY}"] == 4
    devices = pl.read_parquet(landing / "devices" / f"date={DAY}" / "part-0.parquet")
    assert sorted(set(devices["user_id"]) & {"user-0010", "user-0011"}) == ["user-0011"]
    assert len((out / AUDIT_LOG).read_text().splitlines()) == 3


def test_rights_requests_dag_parses_and_runs(tmp_path: Path) -> None:
    """DagBag of the DAG file in a subprocess, then its task callable with the DAG's params."""
    landing, out = _landing(tmp_path)
    env = airflow_env(
        tmp_path / "af",
        TOKUMEI_LANDING=str(landing),
        TOKUMEI_OUT=str(out),
        TOKUMEI_TASK_RETRIES="0",
    )
    code = textwrap.dedent(f"""
        import datetime, json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS / "rights_requests.py")!r})
        dag = bag.dags["rights_requests"]
        print("INFO", json.dumps({{"errors": {{k: str(v)[:300] for k, v in bag.import_errors.items()}},
                          "tasks": sorted(t.task_id for t in dag.tasks),
                          "schedule": str(dag.schedule), "catchup": dag.catchup,
                          "max_active_runs": dag.max_active_runs,
                          "retries": dag.default_args.get("retries"),
                          "params": sorted(dag.params.keys())}}))
        # the task body without a metadata DB (initdb alone takes most of a minute on CI):
        # the DAG's own callable, with the Airflow context replaced by the params it reads
        fn = dag.get_task("apply_rights_requests").python_callable
        fn.__globals__["get_current_context"] = lambda: {{"params": dict(dag.params)}}
        print("RESULT", json.dumps(fn()))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines() if ln[:4] in {"INFO", "RESU"})
    assert json.loads(lines["INFO"]) == {
        "errors": {},
        "tasks": ["apply_rights_requests"],
        "schedule": "@hourly",
        "catchup": False,
        "max_active_runs": 1,
        "retries": 0,
        "params": ["dry_run", "max_requests"],
    }
    xcom = json.loads(lines["RESULT"])
    assert xcom["applied"] == 1 and xcom["rows_removed"] == 16 and xcom["remaining"] == 0
    assert not any(i in json.dumps(xcom) for i in THEIRS)
    assert len((out / AUDIT_LOG).read_text().splitlines()) == 1


def retained_persons() -> list[str]:
    """Pseudonyms (test key) of user-0032, cookie-0032 (both the requester's) and user-0001,
    as the retained layer holds them."""
    from conftest import TEST_KEY

    from tokumei.anonymize.pseudonymize import pseudonymize

    ids = pl.DataFrame(
        {"i": ["user-0032", "cookie-0032", "user-0001"], "d": ["user", "cookie", "user"]}
    )
    return [
        ids.slice(n, 1).select(pseudonymize(pl.col("i"), TEST_KEY, d)).item()
        for n, d in enumerate(ids["d"])
    ]


def test_erases_the_person_from_the_retained_pseudonymous_layer(tmp_path: Path, policy) -> None:
    """The retained activity layer knows persons by pseudonym only: found with the key."""
    from conftest import TEST_KEY

    landing, out = _landing(tmp_path)
    db = f"sqlite:///{landing / 'ops.db'}"
    persons = retained_persons()
    part = out / "retained" / "activity" / f"date={EARLIER}" / "part-0000.parquet"
    part.parent.mkdir(parents=True)
    pl.DataFrame({"person": persons, "active": [True] * 3}).write_parquet(part)

    with pytest.raises(TokumeiError, match="needs the pseudonym key"):
        apply_rights_requests(landing, out, db, policy, NOW)  # fail closed, nothing touched
    assert not (out / AUDIT_LOG).exists() and pl.read_parquet(part).height == 3

    report = apply_rights_requests(landing, out, db, policy, NOW, key=TEST_KEY).to_dict()
    assert pl.read_parquet(part)["person"].to_list() == [persons[2]]  # only user-0001 left
    assert report["rows_removed"] >= 2
    log = (out / AUDIT_LOG).read_text()
    assert f"retained/activity/date={EARLIER}" in log  # the audit entry names the dataset
    assert not any(p in log for p in persons) and TEST_KEY not in log
