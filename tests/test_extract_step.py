"""extract and ingest read landing files in parallel (threads; ingest in worker processes when
there are more files than workers) without changing their output.

File ``i`` of a source must write ``f-<i>`` in every partition, the quarantine must keep the
landing's order, and the counts must add up, whichever thread finishes first; a file that stops
the run (an unknown column) must stop it with the same clear error as in series.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, TEST_KEY, seal_landing

from tokumei.anonymize.policy import UnclassifiedColumnError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps
from tokumei.synthetic.generator import generate


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated day split into many small files per source, with malformed lines."""
    root = tmp_path_factory.mktemp("landing")
    generate(
        root,
        f"sqlite:///{root / 'ops.db'}",
        date.fromisoformat(DAY),
        days=1,
        users=120,
        seed=7,
        malformed_rate=0.02,
        chunk_size=400,
        max_lines_per_part=500,
    )
    return root


def _extract(
    landing: Path, out: Path, workers: int, monkeypatch: pytest.MonkeyPatch, warm: bool = False
):
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setattr(steps, "EXTRACT_WORKERS", workers)
    settings = Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out, partitions=3
    )
    settings = settings.resolved()
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    if warm:  # as a big day's ingest process does while extract runs (steps.STEP_IMPORTS)
        steps.warm_ingest_workers()
        assert len(steps._WARM_INGEST_POOLS) == 1
    steps.extract(settings, DAY, run_id)
    steps.ingest(settings, DAY, run_id)
    assert not steps._WARM_INGEST_POOLS  # ingest took the warmed pool (and shut it down)
    record = steps.check_inputs(settings, DAY, run_id)
    work = steps._paths(settings, DAY, run_id).work / "generalized"
    files = {str(p.relative_to(work)): pl.read_parquet(p) for p in sorted(work.rglob("*.parquet"))}
    quarantine = {
        str(p.relative_to(out)): pl.read_parquet(p)
        for p in sorted((out / "quarantine").rglob("*.parquet"))
    }
    return record, files, quarantine


def _assert_same_run(got: tuple, want: tuple) -> None:
    """Two ``_extract`` results are equal: books, generalized files and quarantine."""
    assert got[0] == want[0]
    for i in (1, 2):
        assert got[i].keys() == want[i].keys()
        assert all(got[i][name].equals(frame) for name, frame in want[i].items())


def test_parallel_ingest_equals_serial(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_files = len(list((landing / "events" / f"date={DAY}").glob("part-*")))
    assert n_files >= 4, "the fixture must give the workers several files to race on"
    # more files than workers: ingest runs them in worker processes (steps.ingest)
    serial = _extract(landing, tmp_path / "serial", 1, monkeypatch)
    parallel = _extract(landing, tmp_path / "parallel", 3, monkeypatch)
    assert parallel[0] == serial[0]
    assert serial[0]["extract"]["events"]["files"] == n_files
    assert serial[0]["extract"]["events"]["quarantined"] > 0
    # every file wrote its own part in every partition
    for p in range(3):
        for i in range(n_files):
            assert f"events/part-{p:04d}/f-{i:05d}.parquet" in serial[1]
    assert parallel[1].keys() == serial[1].keys()
    for name, frame in serial[1].items():
        assert parallel[1][name].equals(frame), name
    assert parallel[2].keys() == serial[2].keys()
    for name, frame in serial[2].items():
        assert parallel[2][name].equals(frame), name
    # the quarantine keeps the landing's order: one part per file, lines ascending per file
    events_q = [f for n, f in sorted(serial[2].items()) if "/events/" in n]
    order = pl.concat(events_q).select("file", "line").rows()
    assert order == sorted(order)
    # the books: every line read is kept, quarantined, excluded or dropped by rule
    books = serial[0]["filter_rights"]["events"]
    first = sorted((landing / "events" / f"date={DAY}").glob("part-*"))[0]
    opener = gzip.open if first.name.endswith(".gz") else open
    with opener(first, "rb") as fh:
        assert len(fh.read().splitlines()) > 0
    kept = sum(f.height for n, f in serial[1].items() if n.startswith("events/"))
    assert kept == books["kept"]
    ex = serial[0]["extract"]["events"]
    assert ex["input"] == ex["quarantined"] + books["input"]
    assert books["input"] == books["kept"] + books["excluded_by_rights"] + books["dropped_by_rule"]


def test_ingest_in_workers_warmed_ahead_equals_serial(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = _extract(landing, tmp_path / "serial", 1, monkeypatch)
    warmed = _extract(landing, tmp_path / "warmed", 3, monkeypatch, warm=True)
    _assert_same_run(warmed, serial)


def test_unknown_column_in_a_later_file_stops_the_parallel_extract(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    folder = copy / "events" / f"date={DAY}"
    row = {"ts": "2026-11-24T10:00:00+09:00", "event": "click", "cookie_id": "c", "shoe_size": 27}
    (folder / "zz-late.jsonl").write_text(json.dumps(row) + "\n")
    seal_landing(copy)
    with pytest.raises(UnclassifiedColumnError, match="shoe_size"):
        _extract(copy, tmp_path / "out", 2, monkeypatch)


def test_db_tables_read_in_batches_equal_one_read(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.ingest import opdb

    policy = load_policy(default_policy_dir())
    url = f"sqlite:///{landing / 'ops.db'}"
    for table in ("users", "consents"):
        monkeypatch.setattr(opdb, "FETCH_ROWS", 10**9)
        whole, whole_bad = opdb.read_table(url, table, policy.tables[table])
        monkeypatch.setattr(opdb, "FETCH_ROWS", 7)
        batched, batched_bad = opdb.read_table(url, table, policy.tables[table])
        assert whole.height > 3 * 7, "the table must span several batches"
        assert batched.equals(whole), table
        assert batched_bad.equals(whole_bad), table


def test_a_big_day_reads_the_db_in_two_processes_with_the_same_result(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the reuse limit extract reads the DB tables in two processes (steps._db_readers);
    the books, the generalized layer and the quarantine equal those of one reader."""
    from tokumei.infra.processes import MAX_WORK_MB_ENV
    from tokumei.ingest.landing import check_landing

    status = check_landing(landing, DAY, steps.LANDING_SOURCES, lines=False)
    assert steps._db_readers(status) == 1  # the fixture's landing is within 64 MiB
    one = _extract(landing, tmp_path / "one", 2, monkeypatch)
    monkeypatch.setenv(MAX_WORK_MB_ENV, "0")
    assert steps._db_readers(status) == 2
    two = _extract(landing, tmp_path / "two", 2, monkeypatch)
    _assert_same_run(two, one)
    assert two[0]["extract"]["db.consents"]["rows"] > 0


def _read_both_ways(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each DB table read through the driver's own cursor equals the read through SQLAlchemy's
    result (tokumei.ingest.opdb._batches), rows, types and quarantine."""
    import sqlalchemy as sa

    from tokumei.anonymize.policy import DB_TABLES, default_policy_dir, load_policy
    from tokumei.ingest import opdb

    assert sa.engine.make_url(url).get_dialect().driver in opdb.DRIVER_CURSORS
    policy = load_policy(default_policy_dir())
    monkeypatch.setattr(opdb, "FETCH_ROWS", 13)
    rows = {}
    for table in DB_TABLES:
        driver, driver_bad = opdb.read_table(url, table, policy.tables[table])
        with monkeypatch.context() as m:
            m.setattr(opdb, "DRIVER_CURSORS", {})
            through_sa, through_sa_bad = opdb.read_table(url, table, policy.tables[table])
        assert driver.equals(through_sa), table
        assert driver_bad.equals(through_sa_bad), table
        rows[table] = driver.height
    assert rows["users"] > 3 * 13 and rows["consents"] > 3 * 13, "several batches each"


def test_the_driver_cursor_reads_what_sqlalchemy_reads_sqlite(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _read_both_ways(f"sqlite:///{landing / 'ops.db'}", monkeypatch)


def test_the_driver_cursor_reads_what_sqlalchemy_reads_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on PostgreSQL with the generator's typed columns (date, timestamptz, boolean,
    integer), through psycopg's server-side cursor."""
    import secrets

    import sqlalchemy as sa

    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    name = f"tokumei_opdb_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        generate(tmp_path / "landing", url, date.fromisoformat(DAY), days=1, users=60, seed=3)
        _read_both_ways(url, monkeypatch)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_excluded_persons_from_the_pseudonymous_owner_maps_equal_the_raw_rule(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """extract's excluded persons (steps._excluded_persons, from the run's pseudonymous owner
    maps) equal the rule applied to the raw owners sources: users without analytics consent or
    with a binding request, the cookies and devices they own, and cookies whose own consent
    refuses analytics."""
    from tokumei.anonymize.person_rows import owner_map
    from tokumei.anonymize.policy import default_policy_dir, load_policy
    from tokumei.anonymize.pseudonymize import pseudonymize
    from tokumei.anonymize.rights import allowed_users
    from tokumei.ingest import opdb
    from tokumei.ingest.sources import read_landing_file

    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    settings = Settings(
        landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=tmp_path / "out"
    ).resolved()
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    steps.extract(settings, DAY, run_id)
    dims = steps._paths(settings, DAY, run_id).work / "dims"
    got = pl.read_parquet(dims / "excluded_persons.parquet")["person"].to_list()

    policy = load_policy(default_policy_dir())
    url = f"sqlite:///{landing / 'ops.db'}"
    db = {t: opdb.read_table(url, t, policy.tables[t])[0] for t in ("users", "consents")}
    db["rights_requests"] = opdb.read_table(
        url, "rights_requests", policy.tables["rights_requests"]
    )[0]
    allowed = allowed_users(db["consents"].lazy(), db["rights_requests"].lazy()).collect()
    known = pl.concat([db[t].select(pl.col("user_id").cast(pl.String)) for t in db]).unique()
    excluded = known.join(allowed, on="user_id", how="anti")["user_id"]
    ids = [pl.DataFrame({"_id": excluded}).select(pseudonymize(pl.col("_id"), TEST_KEY, "user"))]
    for source in ("cookies", "devices"):
        sp = policy.source(source)
        files = sorted((landing / source / f"date={DAY}").glob("part-*"))
        raw = pl.concat([read_landing_file(f, sp)[0] for f in files])
        owned = owner_map(raw.lazy(), sp).collect()
        refused = pl.col("_owner").is_in(excluded.implode())
        if "_consent" in owned.columns:
            refused = refused | (pl.col("_consent") == False)  # noqa: E712
        ids.append(
            owned.filter(refused).select(
                pseudonymize(pl.col("_fb"), TEST_KEY, sp.domain(sp.owner.key)).alias("_id")
            )
        )
    expected = pl.concat(ids)["_id"].unique().sort().to_list()
    assert len(expected) > len(excluded) > 0, "owned ids and users are both excluded here"
    assert got == expected


def test_a_warmed_pool_ingests_a_day_of_no_more_files_than_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers started and warmed ahead (a big day) ingest the files even when there are no
    more files than workers, where a cold ingest reads in threads: the threads would build
    again what the workers have built. The same output as one thread."""
    root = tmp_path / "landing"
    # the module fixture's day, one file per source
    generate(
        root, f"sqlite:///{root / 'ops.db'}", date.fromisoformat(DAY), 1, 120, 7, chunk_size=400
    )
    files = [p for s in ("events", "measurements") for p in (root / s).rglob("part-*")]
    assert len(files) == 2, "one file per person source"
    serial = _extract(root, tmp_path / "serial", 1, monkeypatch)
    with monkeypatch.context() as m:

        def no_threads(*_: object) -> None:
            raise AssertionError("ingest read in threads instead of the warmed workers")

        m.setattr(steps._FileIngest, "load", no_threads)  # the parent's; the workers' are real
        warmed = _extract(root, tmp_path / "warmed", 2, monkeypatch, warm=True)
    _assert_same_run(warmed, serial)
