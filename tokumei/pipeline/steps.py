"""The steps of one daily run, one function per DAG task (docs/architecture.md §2, §6).

Every step takes ``(settings, day, run_id)`` — plain values that fit in XCom — reads its inputs
from the run's work layer on disk, writes its outputs there, and returns a small dict of counts
(no values, no keys). The CLI calls them in order in one process; the DAG calls the same
functions in separate tasks, possibly on different workers sharing the output volume.

Data flows one way: landing → (in memory: typed, rights-filtered, pseudonymized, generalized,
validated identifiers masked) → generalized → scrubbed → stats → validated → published. No
layer holds a raw identifier (docs/architecture.md §2).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import polars as pl

from tokumei.anonymize.hierarchies import (
    AgeHierarchy,
    PrefectureHierarchy,
)
from tokumei.anonymize.policy import (
    DB_TABLES,
    DROPPED_ROLES,
    LANDING_SOURCES,
    Policy,
    Role,
    load_policy,
)
from tokumei.anonymize.pseudonymize import pseudonymize
from tokumei.infra import runlock
from tokumei.infra.errors import BooksDoNotBalance, TokumeiError, ValidationFailed
from tokumei.infra.progress import Progress
from tokumei.infra.secrets import pseudonym_key
from tokumei.infra.settings import Settings, check_day
from tokumei.infra.storage import (
    PARQUET_OPTIONS,
    RunPaths,
    build_catalog,
    load_record,
    publish_tree,
    remove_dead_runs,
    remove_run_dirs,
    save_record,
    write_parquet,
)

log = logging.getLogger("tokumei")
if TYPE_CHECKING:
    from tokumei.anonymize.person_rows import RightsDims

T = TypeVar("T")

PERSON = "person"


def _paths(settings: Settings, day: str, run_id: str) -> RunPaths:
    return RunPaths(settings, check_day(day), run_id)


def _policy(settings: Settings) -> Policy:
    return load_policy(settings.policy_dir)


def new_run_id(day: str) -> str:
    """``<day>T<utc time>-<random>``: sortable, unique, and free of any data."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{day}-{stamp}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# 0. start


def start(settings: Settings, day: str, in_airflow: bool = False, run_id: str | None = None) -> str:
    """Check everything that can be checked before reading data; return the run id.

    The key is looked up (and dropped) here so that a run without a key refuses to start
    before it writes anything.
    """
    from tokumei.stats.period_tables import check_retained_key, key_check

    check_day(day)
    _policy(settings)
    check = key_check(pseudonym_key(in_airflow=in_airflow))
    run_id = run_id or new_run_id(day)
    paths = _paths(settings, day, run_id)
    # One run at a time per output (tokumei.infra.runlock): released by cleanup(), or below
    # when start itself fails (under Airflow cleanup gets no run id then).
    took_over = runlock.acquire(settings.out, run_id, in_airflow=in_airflow)
    try:
        # Holding the lock, any other run's work layer or staging is a killed run's leftover.
        dead = remove_dead_runs(settings.out, run_id)
        if dead:
            log.warning("removed the work layer and staging area of %d dead run(s)", dead)
        check_retained_key(paths.retained_at, check)
        # Raw values live under _work/ and quarantine/ only (docs/architecture.md §1.4):
        # owner-only folders, created before anything is written into them.
        private = (paths.work.parent, settings.out / "quarantine")
        for folder in private:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
        paths.work.mkdir(mode=0o700, exist_ok=False)
        save_record(
            paths,
            "start",
            {
                "started_at": datetime.now(UTC).isoformat(),
                "day": day,
                "key_check": check,
                "dead_runs_removed": dead,
                "stale_lock_taken_over": bool(took_over),
            },
        )
    except BaseException:
        runlock.release(settings.out, run_id)
        raise
    return run_id


# --------------------------------------------------------------------------------------------
# 1. extract: the run's dimensions (DB, cookies, devices) → pseudonymous, in memory


#: Landing files read at once, one thread each: the chunk reader, DuckDB and the Parquet
#: writer release the GIL, and one file at a time kept only 1.35 of 2 cores busy. On the 10M-event
#: day (``bench/step_rerun.py step extract``, env ``TOKUMEI_EXTRACT_WORKERS``): 1 -> 67-68 s at
#: 135 % CPU, 2 -> 50-52 s at 187 %. Memory grows with it: each file in flight holds its typed
#: frame (peak RSS 2.0 -> 2.7-2.8 GiB there).
EXTRACT_WORKERS = int(os.environ.get("TOKUMEI_EXTRACT_WORKERS", "2"))


def _db_readers(status: dict[str, Any]) -> int:
    """Processes that read the operational DB tables during extract: two when the landing is
    past the step-process reuse limit, so that the largest tables (consents, users) are read
    side by side, one otherwise.

    Why by the landing: the DB grows with the persons the landing's logs come from. On the
    10M-event day one reader was extract's critical path (consents 3.4 s and users 2.2 s one
    after the other, the main thread waiting 3.8 s for them at 100 % CPU); on a 500-person day
    a second interpreter costs more than it saves (bench/results/scale.md, session 15).
    """
    from tokumei.infra.processes import max_work_bytes

    landing = sum(f.bytes for st in status.values() for f in st.files)
    return 2 if landing > max_work_bytes() else 1


def _owner_sources(policy: Policy) -> list[str]:
    """Landing sources read whole by ``extract``: those with ``owner:`` (they only feed the
    rights dimensions); the others (``PERSON_SOURCES``) are read one file per ``ingest`` task."""
    return [s for s in LANDING_SOURCES if policy.source(s).owner is not None]


def _clear_quarantine(paths: RunPaths, source: str) -> Path:
    """The day's quarantine folder of ``source``, emptied: a rerun replaces it whole."""
    folder = paths.quarantine(source)
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _read_files(
    policy: Policy, paths: RunPaths, source: str, files: list[Path], progress: Progress
) -> tuple[pl.DataFrame, dict[str, Any], list[Any]]:
    """Every landing file of a small source, typed, in memory; its quarantine written per file."""
    from concurrent.futures import ThreadPoolExecutor

    from tokumei.ingest.sources import empty_frame, read_landing_file

    sp = policy.source(source)
    qdir = _clear_quarantine(paths, source)
    with ThreadPoolExecutor(max(1, EXTRACT_WORKERS), thread_name_prefix="tokumei-read") as pool:
        results = list(pool.map(lambda p: read_landing_file(p, sp), files))
    goods, lines = [], []
    reasons: dict[str, int] = {}
    for i, (path, (good, bad)) in enumerate(zip(files, results, strict=True)):
        goods.append(good)
        lines.append(_file_lines(source, paths.day, path, good.height, bad))
        if bad.height:
            write_parquet(bad, qdir / f"part-{i:05d}.parquet")
            for reason, n in bad.group_by("reason").len().iter_rows():
                reasons[reason] = reasons.get(reason, 0) + n
        progress(f"{source}: {i + 1}/{len(files)} files read", last=i + 1 == len(files))
    frame = pl.concat(goods, how="vertical_relaxed") if goods else empty_frame(sp)
    return frame, reasons, lines


def _file_lines(source: str, day: str, path: Path, kept: int, bad: pl.DataFrame) -> Any:
    """What one file gave, for the input expectations: counts and an encoding guess, no line."""
    from tokumei.ingest.expectations import INVALID_UTF8, FileLines, encoding_guess

    not_utf8 = bad.filter(pl.col("reason") == INVALID_UTF8)["raw"].to_list()
    rel = f"{source}/date={day}/{path.name}"
    return FileLines(rel, kept + bad.height, bad.height, len(not_utf8), encoding_guess(not_utf8))


def _discovered(frame: pl.DataFrame, sp: Any, sample: int) -> dict[str, Any]:
    """PII discovery on a sample of ``frame`` (held in memory): counts per column, no verdict."""
    from tokumei.anonymize.pii import discover_columns
    from tokumei.anonymize.pii.discovery import sample_rows

    roles = {c: str(p.role) for c, p in sp.columns.items()}
    rows = sample_rows(frame.lazy(), sample)
    report = discover_columns(rows, roles, sample=sample, max_rate=1.0)
    return {c: {"sampled": f.sampled, "counts": f.counts} for c, f in report.columns.items()}


def _read_db_table(settings: Settings, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One operational DB table typed by the policy: (rows, quarantined rows). Direct
    identifiers, identification codes and card numbers have no use here: not selected unless a
    check reads them (then dropped in memory), never written."""
    from tokumei.ingest.opdb import read_table

    spec = _policy(settings).tables[table]
    frame, bad = read_table(settings.db_url, table, spec, DROPPED_ROLES)
    return frame.drop(spec.by_role(*DROPPED_ROLES), strict=False), bad


def extract(settings: Settings, day: str, run_id: str, in_airflow: bool = False) -> dict[str, Any]:
    """Check the landing, read the DB and the small sources, write pseudonymous dimensions.

    Raw values stay in memory, this process's and its DB reader's (issue 16: no raw identifier
    at rest): the DB tables lose their direct identifiers as they are read; consents, requests
    and the cookie and device owners become
    :class:`~tokumei.anonymize.person_rows.RightsDims` on pseudonyms; the users become the
    generalized ``persons`` dimension; the persons excluded today become pseudonyms. Returns
    (and records) the list of event and measurement files that ``ingest`` then reads one task
    each.
    """
    from concurrent.futures import Executor, ThreadPoolExecutor

    from tokumei.anonymize.compile import PERSON_SOURCES
    from tokumei.anonymize.person_rows import rights_dims
    from tokumei.anonymize.rights import allowed_users
    from tokumei.infra.objectstore import stage_landing
    from tokumei.infra.processes import may_start_processes, spawned_pool
    from tokumei.ingest.landing import check_landing, refuse_incomplete, select_files
    from tokumei.ingest.sources import LANDING_SUFFIXES

    paths = _paths(settings, day, run_id)
    policy = _policy(settings)
    key = pseudonym_key(in_airflow=in_airflow)
    # s3:// landing → verified local copy (the markers, *.json, come along)
    landing = stage_landing(
        settings, day, paths.work, sources=LANDING_SOURCES, suffixes=LANDING_SUFFIXES
    )
    # docs/landing.md: an incomplete, missing or empty source-day stops the run before anything
    # is read, unless --allow-incomplete (the release is then marked partial)
    status = check_landing(landing, day, LANDING_SOURCES, lines=False)  # checksums, sizes
    partial = refuse_incomplete(status, day, allow=settings.allow_incomplete)
    chosen = {s: select_files(landing, s, day, status[s]) for s in LANDING_SOURCES}

    def db_table(table: str, read: tuple[pl.DataFrame, pl.DataFrame]) -> pl.DataFrame:
        frame, bad = read
        if bad.height:
            write_parquet(bad, paths.quarantine(f"db_{table}") / "part-0.parquet")
        record[f"db.{table}"] = {"rows": frame.height + bad.height, "quarantined": bad.height}
        return frame

    record: dict[str, Any] = {}
    progress = Progress("extract")
    # The DB's row-wise Python in processes of their own beside the file readers: in a thread
    # the two convoyed on the GIL (10M-event day: extract 14-16 s; bench/results/scale.md).
    # A Celery task may not start processes: there, a thread.
    db_pool: Executor = (
        spawned_pool(_db_readers(status))
        if may_start_processes()
        else ThreadPoolExecutor(1, "tokumei-extract-db")
    )
    with db_pool:
        read = functools.partial(_in_worker, "extract", settings, _read_db_table, settings)
        tables = {t: db_pool.submit(read, t) for t in DB_TABLES}
        small = {
            s: _read_files(policy, paths, s, chosen[s].files, progress)
            for s in _owner_sources(policy)
        }
        # what needs no DB table is done while the DB process reads
        sample = policy.thresholds.pii_sample
        found = {
            s: _discovered(frame, policy.source(s), sample) for s, (frame, _, _) in small.items()
        }
        db = {t: db_table(t, f.result()) for t, f in tables.items()}
    files: list[dict[str, Any]] = []
    for source in PERSON_SOURCES:
        _clear_quarantine(paths, source)
        # relative to the landing root; None: an empty source-day (its partitions are written
        # empty, with the plan's columns)
        names = [str(p.relative_to(landing)) for p in chosen[source].files] or [None]
        files += [{"source": source, "part": i, "name": n} for i, n in enumerate(names)]
        # the marker's checksums: a worker that stages a file again for ingest checks its copy
        known = {f.name: f.sha256 for f in status[source].files} if status[source].complete else {}
        for entry in files[len(files) - len(names) :]:
            if entry["name"] and (digest := known.get(Path(entry["name"]).name)):
                entry["sha256"] = digest
    persons = policy.persons
    assert persons.person is not None  # Policy.persons finds the table that declares it
    allowed = allowed_users(db["consents"].lazy(), db["rights_requests"].lazy()).collect()
    owners = {s: (frame.lazy(), policy.source(s)) for s, (frame, _, _) in small.items()}
    dims = rights_dims(allowed.lazy(), owners, persons.domain(persons.person.id), key)
    dims.write(paths.layer("dims"))
    record["persons"] = {"rows": _generalize_persons(paths, policy, day, db[persons.source], key)}
    record["excluded_persons"] = {"rows": _excluded_persons(paths, policy, key, db, allowed, dims)}
    for source, (frame, reasons, lines) in small.items():
        record[source] = {
            **_source_record(lines, reasons),
            "rights": _dimension_books(frame, policy.source(source), allowed),
            "discover": found[source],
        }
    record[persons.source] = {"rights": _dimension_books(db[persons.source], persons, allowed)}
    record["files"] = files
    record["landing_root"] = str(landing)
    record["landing"] = {
        "partial": bool(partial),
        "sources": {s: st.as_dict() for s, st in status.items()},
    }
    record["duplicates"] = {
        s: {"files": chosen[s].duplicates, "lines": chosen[s].duplicate_lines}
        for s in LANDING_SOURCES
    }
    del key
    save_record(paths, "extract-dims", record)
    return record


def _source_record(lines: list[Any], reasons: dict[str, int]) -> dict[str, Any]:
    """What an owner: source gave, kept in ``extract-dims`` for ``check_inputs``."""
    return {
        "quarantine_reasons": dict(sorted(reasons.items())),
        "lines": [f.as_dict() for f in lines],
    }


def _dimension_books(frame: pl.DataFrame, sp: Any, allowed: pl.DataFrame) -> dict[str, int]:
    """The rights filter's books of a dimension source or the persons table (counts only: its
    rows are not kept): a row counts as kept when its user (``owner.user`` / ``person.id``) may
    be counted, or, without a user, when its consent (``owner.consent``) allows it."""
    from tokumei.anonymize.rights import keep_expr, mark_allowed

    user = sp.owner.user if sp.owner else sp.person.id
    consent = sp.owner.consent if sp.owner else None
    flagged = mark_allowed(
        frame.lazy().with_columns(pl.col(user).alias("_user")), "_user", allowed.lazy()
    )
    keep = keep_expr("_user", consent)
    row = (
        flagged.select(pl.len().alias("input"), keep.sum().alias("kept"))
        .collect()
        .row(0, named=True)
    )
    return {
        "input": int(row["input"]),
        "excluded_by_rights": int(row["input"] - row["kept"]),
        "dropped_by_rule": 0,
        "kept": int(row["kept"]),
    }


def _generalize_persons(
    paths: RunPaths, policy: Policy, day: str, users: pl.DataFrame, key: str
) -> int:
    """One row per known person: the compiled persons plan (age on the run date and its band,
    gender, prefecture with the postal-code fallback, occupation, signup day).

    Global (not partitioned): the table is small, and every partition joins it. Persons
    without analytics consent or with a binding request are left out (their events are too).
    """
    from tokumei.anonymize.compile import compile_policy
    from tokumei.anonymize.person_rows import ALLOWED, pseudonyms

    sp = policy.persons
    assert sp.person is not None
    plan = compile_policy(policy, (sp.source,))[sp.source]
    allowed = pl.read_parquet(paths.work / "dims" / "allowed.parquet")[ALLOWED]
    linking = [c for c in sp.by_role(Role.LINKING_KEY) if c in users.columns]
    pid = sp.person.id
    person = pl.col(pid) if pid in linking else pseudonymize(pl.col(pid), key, sp.domain(pid))
    persons = (
        users.lazy()
        .with_columns(pseudonyms(sp, linking, key))
        .with_columns(person.alias(PERSON))
        .filter(pl.col(PERSON).is_in(allowed.implode()))
        .select(plan.select(date.fromisoformat(day)))
        .unique(PERSON, keep="first", maintain_order=True)
    )
    return write_parquet(persons, paths.layer("generalized") / "persons.parquet")


def _excluded_persons(
    paths: RunPaths,
    policy: Policy,
    key: str,
    db: dict[str, pl.DataFrame],
    allowed: pl.DataFrame,
    dims: RightsDims,
) -> int:
    """Pseudonyms of everyone excluded *today*, so rights apply to the retained history too.

    Today's rows of excluded persons never reach the work layer; the retained activity layer
    still holds their earlier days under the same pseudonyms. Excluded: every known user id
    (persons, consents, requests) without analytics consent or with a binding request, the ids
    those users own (cookies, devices: ``owner:``), and owned ids whose own consent refuses
    analytics (a cookie's banner). The owned ids come from the run's pseudonymous owner maps
    (:class:`~tokumei.anonymize.person_rows.RightsDims`), which hold the same last owner and
    consent per id, so the raw owners sources are not grouped a second time (10M-event day:
    extract 8.8-9.1 -> 8.7-8.8 s, bench/results/scale.md, session 15).
    """
    persons = policy.persons
    assert persons.person is not None
    # the operational DB's user ids (schema: tokumei/ingest/opdb_schema.py)
    known = pl.concat(
        [
            db[persons.source]
            .lazy()
            .select(pl.col(persons.person.id).cast(pl.String).alias("user_id")),
            *(
                db[t].lazy().select(pl.col("user_id").cast(pl.String))
                for t in ("consents", "rights_requests")
            ),
        ]
    ).unique()
    excluded = known.join(allowed.lazy(), on="user_id", how="anti").collect()["user_id"]
    user_domain = persons.domain(persons.person.id)
    users = pl.DataFrame({"_id": excluded}).select(pseudonymize(pl.col("_id"), key, user_domain))
    frames = [users]
    for owned in dims.owners.values():  # _fb → _owner (and _consent), on pseudonyms
        refused = pl.col("_owner").is_in(users["_id"].implode())
        if "_consent" in owned.columns:
            refused = refused | (pl.col("_consent") == False)  # noqa: E712
        frames.append(owned.filter(refused).select(pl.col("_fb").alias("_id")))
    frame = pl.concat(frames).select(pl.col("_id").alias(PERSON)).unique().sort(PERSON)
    return write_parquet(frame, paths.layer("dims") / "excluded_persons.parquet")


# --------------------------------------------------------------------------------------------
# 2. ingest: one landing file → typed, rights-filtered, pseudonymous, generalized rows


def ingest(
    settings: Settings, day: str, run_id: str, file: int | None = None, in_airflow: bool = False
) -> dict[str, Any]:
    """One event or measurement file (``file``: its index in ``extract``'s list), or all.

    Read → type and quarantine → pseudonymize → rights and day filter → the compiled policy
    plan → validated identifiers masked in the free text → written once, partitioned by person
    hash (tokumei/anonymize/person_rows.py). Nothing raw is written: the free text keeps only
    what NER (``scrub``) still has to find. Files run ``EXTRACT_WORKERS`` at a time when
    ``file`` is None (``tokumei run``): in that many worker processes when there are more
    files than workers (threads convoyed on the GIL: the 10M-event day's ingest ran at 173 %
    CPU of 200), else in threads (unless the workers were started and warmed ahead,
    :func:`warm_ingest_workers`); under Airflow, one mapped task each.
    """
    from concurrent.futures import Executor, ThreadPoolExecutor

    from tokumei.infra.processes import may_start_processes, spawned_pool

    paths = _paths(settings, day, run_id)
    files = load_record(paths, "extract-dims")["files"]
    chosen = range(len(files)) if file is None else [file]
    if file is not None and not 0 <= file < len(files):
        raise TokumeiError(f"file {file} outside 0..{len(files) - 1} of this run's landing")
    done = Progress("ingest")
    record: dict[str, Any] = {}
    workers = max(1, EXTRACT_WORKERS)
    pool: Executor
    warmed = _WARM_INGEST_POOLS.pop() if _WARM_INGEST_POOLS else None
    # a warmed pool is taken whatever the file count: its workers have built what a file
    # needs, which a thread here would build again in this process
    if file is None and (
        (warmed is not None) or (len(chosen) > workers > 1 and may_start_processes())
    ):
        pool = warmed or spawned_pool(workers)
        task: Any = functools.partial(
            _in_worker, "ingest", settings, _ingest_in_worker, settings, day, run_id, in_airflow
        )
    else:
        if warmed is not None:
            warmed.shutdown()
        pool = ThreadPoolExecutor(workers, thread_name_prefix="tokumei-ingest")
        task = _FileIngest.load(settings, day, run_id, in_airflow)
    with pool:
        for n, (i, rec) in enumerate(zip(chosen, pool.map(task, chosen), strict=True), 1):
            record[str(i)] = rec
            done(
                f"{n}/{len(chosen)} files: {sum(r['lines_read'] for r in record.values()):,} lines",
                last=n == len(chosen),
            )
    return record


@dataclass
class _FileIngest:
    """What the files of one ingest call share (policy, key, rights dimensions), loaded once
    per process; called with a file's index, ingests it and saves its record."""

    settings: Settings
    paths: RunPaths
    policy: Policy
    key: str
    dims: Any
    landing: Path
    files: list[dict[str, Any]]

    @classmethod
    def load(cls, settings: Settings, day: str, run_id: str, in_airflow: bool) -> _FileIngest:
        from tokumei.anonymize.person_rows import RightsDims

        paths = _paths(settings, day, run_id)
        dims_record = load_record(paths, "extract-dims")
        # an s3:// landing is staged by each worker under its own work dir
        # (airflow_tasks.ingest); the recorded root is the extract worker's
        landing = (
            paths.work / "landing" if settings.landing_url else Path(dims_record["landing_root"])
        )
        return cls(
            settings,
            paths,
            _policy(settings),
            pseudonym_key(in_airflow=in_airflow),
            RightsDims.read(paths.work / "dims"),
            landing,
            dims_record["files"],
        )

    def __call__(self, i: int) -> dict[str, Any]:
        entry = self.files[i]
        share = sum(1 for f in self.files if f["source"] == entry["source"])
        rec = _ingest_file(
            self.settings, self.paths, self.policy, self.key, self.dims, self.landing, entry, share
        )
        save_record(self.paths, f"ingest-{i:05d}", rec)
        return {k: rec[k] for k in ("source", "lines_read", "kept")}


def _survives_pickling(exc: Exception) -> bool:
    """``exc`` is one of ours (its message is all its reason: no traceback is needed to name
    the file) and comes back from a pool worker as the same type with the same message."""
    import pickle

    from tokumei.infra.errors import SafeMessage

    if not isinstance(exc, TokumeiError | SafeMessage):
        return False
    try:
        copy = pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return type(copy) is type(exc) and str(copy) == str(exc)


def _in_worker(step: str, settings: Settings, fn: Callable[..., T], *args: Any) -> T:
    """Pool task of a step's worker process: ``fn(*args)``. Our own failures come back as
    themselves (the caller sees what a thread would have raised); any other as its safe
    one-line reason, made here while the traceback still names the file, as :func:`_run_step`
    does for a step process."""
    try:
        return fn(*args)
    except Exception as exc:
        if _survives_pickling(exc):
            raise
        raise _step_failed(exc, step, settings) from None


def _step_failed(exc: BaseException, step: str, settings: Settings) -> StepFailed:
    """``exc`` as its safe one-line reason, for a failure that crosses a process boundary;
    without the step, which the parent's report adds (``run_all``)."""
    from tokumei.infra.errors import safe_reason

    return StepFailed(safe_reason(exc, step, settings.error_roots()).removeprefix(f"{step}: "))


#: The worker process's :class:`_FileIngest` of its run (a worker lives for one ingest call).
_WORKER_INGEST: dict[str, _FileIngest] = {}

#: Ingest's worker pool, started and warmed by :func:`warm_ingest_workers` before the step.
_WARM_INGEST_POOLS: list[ProcessPoolExecutor] = []


def warm_ingest_workers() -> None:
    """Start ingest's worker processes now, and have each import and build what a file needs.

    Why: a big day's ingest process is started while extract runs (``STEP_IMPORTS``), and
    extract leaves part of a core idle (10M-event day: ~160 % CPU of 200), while each worker's
    start (interpreter, Presidio and DuckDB imports, the analyzer's regexes, the prefilter's
    Unicode tables) took 2-4 CPU-s on the critical path when ingest began. Does not wait:
    :func:`ingest` takes the pool (its first files queue behind the warm-up).
    """
    from tokumei.infra.processes import may_start_processes, spawned_pool

    if EXTRACT_WORKERS > 1 and may_start_processes() and not _WARM_INGEST_POOLS:
        pool = spawned_pool(EXTRACT_WORKERS)
        for _ in range(EXTRACT_WORKERS):  # one each: a task takes seconds, so none idles
            pool.submit(_warm_ingest_worker)
        _WARM_INGEST_POOLS.append(pool)


def _warm_ingest_worker() -> None:
    """What every landing file's ingest builds first, built once in this worker."""
    from tokumei.anonymize import compile, person_rows  # noqa: F401
    from tokumei.anonymize.pii import analyzer, prefilter
    from tokumei.ingest import sources  # noqa: F401

    for language in analyzer.LANGUAGES:
        analyzer._direct_recognizers(language)
    prefilter.candidate_pattern()


def _ingest_in_worker(
    settings: Settings, day: str, run_id: str, in_airflow: bool, i: int
) -> dict[str, Any]:
    """File ``i`` of :func:`ingest` in a worker process. The worker reads the key from the
    secret store itself (it never crosses the pipe) and the run's dimensions once."""
    if run_id not in _WORKER_INGEST:
        _WORKER_INGEST[run_id] = _FileIngest.load(settings, day, run_id, in_airflow)
    return _WORKER_INGEST[run_id](i)


def _ingest_file(
    settings: Settings,
    paths: RunPaths,
    policy: Policy,
    key: str,
    dims: Any,
    landing: Path,
    entry: dict[str, Any],
    files_of_source: int,
) -> dict[str, Any]:
    """One landing file through the one-pass plan; its record (counts, never a value)."""
    from tokumei.anonymize.compile import compile_policy
    from tokumei.anonymize.person_rows import (
        count_flags,
        flag_rows,
        generalized_rows,
        kept_rows,
    )
    from tokumei.ingest.sources import empty_frame, empty_quarantine, read_landing_file

    source, part, name = entry["source"], entry["part"], entry["name"]
    sp = policy.source(source)
    day = date.fromisoformat(paths.day)
    if name is None:
        good, bad = empty_frame(sp), empty_quarantine()
        path = None
    else:
        path = landing / name
        good, bad = read_landing_file(path, sp)
    if bad.height:
        write_parquet(bad, paths.quarantine(source) / f"part-{part:05d}.parquet")
    lines = _file_lines(source, paths.day, path, good.height, bad) if path else None
    # discovery looks at the raw values here, in memory, on this file's share of the sample
    sample = -(-policy.thresholds.pii_sample // max(1, files_of_source))
    discovered = _discovered(good, sp, sample)
    plan = compile_policy(policy, (source,))[source]
    flagged = generalized_rows(flag_rows(good.lazy(), sp, key, dims, day), plan, day).collect()
    del good
    books = count_flags(flagged)
    rows, premask = _premask(kept_rows(flagged.lazy()), plan)
    folder = paths.layer(f"generalized/{source}")
    written = _write_partitioned(rows, folder, settings.partitions, f"f-{part:05d}.parquet")
    if written != books["kept"]:
        raise BooksDoNotBalance(
            f"ingest {source} part {part}: wrote {written} of {books['kept']} kept rows"
        )
    reasons = bad.group_by("reason").len().iter_rows() if bad.height else []
    return {
        "source": source,
        "part": part,
        "lines_read": lines.lines if lines else 0,
        "kept": books["kept"],
        "quarantine_reasons": {r: int(n) for r, n in sorted(reasons)},
        "lines": lines.as_dict() if lines else None,
        "rights": books,
        "discover": discovered,
        "premask": premask,
    }


def _group_entities(group: Any) -> list[str] | None:
    """The entities a scrub group replaces: every personal one but its ``kept_entities`` (a
    hierarchy's output keeps the entity it is made of: a URL template is a URL)."""
    from tokumei.anonymize.pii.scrub import default_entities

    if not group.kept_entities:
        return None
    return [e for e in default_entities(False) if e not in group.kept_entities]


def _premask(rows: pl.LazyFrame, plan: Any) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """Mask what the patterns find (validated identifiers: e-mail, phone, My Number, card, …;
    URLs, addresses, user names) in the free-text columns before they are written, group by
    group; NER names are left to ``scrub``, which runs per partition (issue 16: free text at
    rest only with its identifiers masked)."""
    from tokumei.anonymize.pii import Scrubber

    columns: dict[str, Any] = {}
    for group in plan.scrub:
        rows, stats = Scrubber(ner=False, entities=_group_entities(group)).scrub_lazy(
            rows, list(group.columns), lang="auto"
        )
        columns.update(_jsonable(stats)["columns"])
    return rows, columns


def check_inputs(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """The day's input expectations, once every file is ingested; the run's books of the input.

    Stops the run (nothing is computed past this) on a quarantine share or a day volume off the
    policy's ``input:`` bounds, or on PII in a column the policy calls insensitive. Merges the
    per-file records into the ``extract``, ``discover`` and ``filter_rights`` records the
    manifest and the books read.
    """
    from tokumei.anonymize.person_rows import duplicate_rows
    from tokumei.anonymize.pii.discovery import check_insensitive
    from tokumei.ingest.books import add_counts, discovery_report, merge_files, source_entry
    from tokumei.ingest.expectations import FileLines, check_quarantine, check_volume
    from tokumei.release.manifest import ROW_BASE, printed_share

    paths = _paths(settings, day, run_id)
    policy = _policy(settings)
    t = policy.thresholds
    dims = load_record(paths, "extract-dims")
    per_file = [load_record(paths, f"ingest-{i:05d}") for i in range(len(dims["files"]))]
    if any(not r for r in per_file):
        missing = sum(1 for r in per_file if not r)
        raise TokumeiError(f"{missing} landing file(s) were not ingested; nothing was computed")
    extract_rec: dict[str, Any] = {}
    rights: dict[str, Any] = {}
    found: dict[str, dict[str, Any]] = {}
    for source in LANDING_SOURCES:
        dups = 0
        if source in dims:  # read whole by extract (owner: sources)
            merged = {**dims[source], "reasons": dims[source]["quarantine_reasons"]}
            merged["lines"] = [FileLines.from_dict(d) for d in merged["lines"]]
        else:
            merged = merge_files(r for r in per_file if r["source"] == source)
            # the same event in two files (policy event_key) is kept once: the copies are
            # dropped by rule and reported (docs/landing.md)
            dups = duplicate_rows(
                pl.scan_parquet(paths.work / "generalized" / source / "part-*" / "*.parquet")
            )
            add_counts(merged["rights"], {"kept": -dups, "dropped_by_rule": dups})
        rights[source], found[source] = merged["rights"], merged["discover"]
        duplicates = {**dims["duplicates"][source], "events": dups}
        extract_rec[source] = source_entry(merged["lines"], merged["reasons"], duplicates)
        # input expectations (policy input:), with the quarantine written for the operator
        check_quarantine(source, merged["lines"], merged["reasons"], policy.input)
    rights[policy.persons.source] = dims[policy.persons.source]["rights"]
    for key in (k for k in dims if k.startswith("db.")):
        extract_rec[key] = dims[key]
    status = dims["landing"]["sources"]
    extract_rec["landing"] = {
        **dims["landing"],
        # a day far smaller or larger than the earlier runs stops here (policy input:)
        "volume": check_volume(
            settings.out,
            day,
            {s: extract_rec[s]["input"] for s in LANDING_SOURCES},
            policy.input,
            skip={s for s, st in status.items() if not st["complete"]},
        ),
    }
    # PII discovery: the per-file samples together; an insensitive column with PII stops here
    row_base = max(ROW_BASE, t.min_cell)
    discover_rec: dict[str, Any] = {}
    for source, cols in found.items():
        roles = {c: str(p.role) for c, p in policy.source(source).columns.items()}
        report = discovery_report(cols, roles)
        check_insensitive(report, t.insensitive_pii_max_rate)
        # a rate of a sample is hits / sampled: printed from the printed counts of both
        # (rows base), so 0.025 of a 40-value column no longer tells "1 value" (issue 15)
        discover_rec[source] = {
            col: {
                k: printed_share(round(v * info["sampled"]), info["sampled"], row_base)
                for k, v in info["rates"].items()
            }
            for col, info in report.to_dict().items()
            if info["rates"]
        }
    premask: dict[str, Any] = {}
    for r in per_file:  # the rows are counted once, by scrub
        for col, st in r["premask"].items():
            add_counts(premask.setdefault(col, {}), st, skip=frozenset({"rows"}))
    save_record(paths, "extract", extract_rec)
    save_record(paths, "filter_rights", rights)
    save_record(paths, "discover", discover_rec)
    save_record(paths, "scrub-premask", {"premask": {"columns": premask}})
    return {"extract": extract_rec, "filter_rights": rights}


def partition_of(person: pl.Expr, partitions: int) -> pl.Expr:
    """Partition number of a person: the first 32 bits of the HMAC pseudonym modulo N.

    The pseudonym is already uniformly distributed, so no further hashing is needed, and a
    person always lands in the same partition whatever the source.
    """
    return person.str.slice(0, 8).str.to_integer(base=16) % partitions


def _write_partitioned(
    frame: pl.LazyFrame, folder: Path, partitions: int, name: str = "data.parquet"
) -> int:
    """Write ``folder/part-<p>/<name>`` for every partition p (empty ones included).

    One streaming pass with Polars' partitioned sink (``pl.PartitionBy``, one file per key):
    writing the whole frame once and then filtering it once per partition read it N + 1 times
    (4 partitions of the 10M-event day: 27.7 -> 13.2 s, same rows; bench/results/scale.md).
    Files are written under ``_writing-<name>/`` and renamed into place, so a crash leaves no
    part; several writers (one per landing file) share ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"_writing-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    if partitions == 1:  # every person is in partition 0: one write instead of two
        write_parquet(frame, staging / "part-0000.parquet")
    else:

        def path_of(args: pl.io.partition.FileProviderArgs) -> Path:
            # one file per partition: a second file of the same partition would be a bug here
            if args.index_in_partition != 0:
                raise RuntimeError("partitioned sink split a partition into several files")
            return staging / f"part-{int(args.partition_keys['_part'][0]):04d}.parquet"

        frame.sink_parquet(
            pl.PartitionBy(
                staging,
                key=partition_of(pl.col(PERSON), partitions).alias("_part"),
                include_key=False,
                file_path_provider=path_of,
                approximate_bytes_per_file=None,
            ),
            mkdir=True,
            **PARQUET_OPTIONS,
        )
    total = 0
    for p in range(partitions):
        part = staging / f"part-{p:04d}.parquet"
        if part.exists():
            total += pl.scan_parquet(part).select(pl.len()).collect().item()
        else:  # no person of this partition here: an empty file with the frame's schema
            write_parquet(pl.DataFrame(schema=frame.collect_schema()), part)
        target = folder / f"part-{p:04d}"
        target.mkdir(exist_ok=True)
        os.replace(part, target / name)
    staging.rmdir()
    return total


def partition_scan(paths: RunPaths, layer: str, source: str, p: int) -> pl.LazyFrame:
    """Every file of partition ``p`` of a partitioned work layer (one per landing file), each
    event once where the policy declares an event key (the copies share a partition)."""
    from tokumei.anonymize.person_rows import dedup_events

    return dedup_events(
        pl.scan_parquet(paths.work / layer / source / f"part-{p:04d}" / "*.parquet")
    )


def partitions_of(settings: Settings) -> list[int]:
    """The partition numbers a run fans out over (the DAG maps tasks over this list)."""
    return list(range(settings.partitions))


def _parts(settings: Settings, partition: int | None) -> list[int]:
    if partition is None:
        return partitions_of(settings)
    if not 0 <= partition < settings.partitions:
        raise TokumeiError(f"partition {partition} outside 0..{settings.partitions - 1}")
    return [partition]


# --------------------------------------------------------------------------------------------
# 5. scrub


def scrub(
    settings: Settings, day: str, run_id: str, partition: int | None = None
) -> dict[str, Any]:
    """NER on the free-text columns the policy marks ``ner: true``; writes what it replaces.

    The patterns (validated identifiers, URLs, addresses, …) already ran in ``ingest``
    (``_premask``), so only NER is left, and the step keeps its replacements (column, old,
    new; a few thousand distinct texts) instead of a scrubbed copy of the partition: readers
    see the scrubbed rows through :func:`scrubbed_scan`. Each distinct candidate is read once.
    """
    from tokumei.anonymize.compile import PERSON_SOURCES, compile_policy

    paths = _paths(settings, day, run_id)
    # The columns come from the compiled policy (role free_text; NER where ner: true). Sources
    # without free text have nothing to map.
    plans = {
        s: plan
        for s, plan in compile_policy(_policy(settings), PERSON_SOURCES).items()
        if plan.scrub
    }
    record: dict[str, Any] = {}
    parts = _parts(settings, partition)
    done = Progress("scrub")
    for i, p in enumerate(parts, 1):
        name = f"part-{p:04d}.parquet"
        for source, plan in plans.items():
            mapping, stats = _ner_map(partition_scan(paths, "generalized", source, p), plan)
            write_parquet(mapping, paths.layer(f"scrubbed/{source}") / name)
            # one source (events) keeps the record's shape: {partition: stats}
            key = str(p) if len(plans) == 1 else f"{source}-{p}"
            record[key] = _jsonable(stats)
            done(f"{source} partition {p}: {i}/{len(parts)} scrubbed", last=i == len(parts))
    save_record(paths, f"scrub-{partition if partition is not None else 'all'}", record)
    return record


def _ner_map(rows: pl.LazyFrame, plan: Any) -> tuple[pl.DataFrame, Any]:
    """NER's replacements in the plan's ``ner_columns`` (the group's patterns with it, as
    before ingest masked them: on masked text they find nothing new), and the stats of every
    free-text column (the rows; the findings of the others were counted by ``_premask``)."""
    from tokumei.anonymize.pii import Scrubber
    from tokumei.anonymize.pii.scrub import ColumnScrubStats, ScrubStats
    from tokumei.anonymize.streaming import MAP_SCHEMA

    rows_n = int(rows.select(pl.len()).collect().item())
    stats = ScrubStats()
    maps = [pl.DataFrame(schema=MAP_SCHEMA)]
    for group in plan.scrub:
        ner = [c for c in group.columns if c in group.ner_columns]
        found = ScrubStats()
        if ner:
            mapping, found = Scrubber(ner=False, entities=_group_entities(group)).replacement_map(
                rows, ner, lang="auto", ner_columns=ner
            )
            maps.append(mapping)
        for column in group.columns:
            stats.columns[column] = found.columns.get(column, ColumnScrubStats(rows=rows_n))
    return pl.concat(maps), stats


def scrubbed_scan(paths: RunPaths, source: str, p: int | None = None) -> pl.LazyFrame:
    """Partition ``p`` (every partition when None) of the generalized layer with the scrub
    step's NER replacements applied: the rows past ``scrub``."""
    from tokumei.anonymize.streaming import apply_replacements

    folder = paths.work / "scrubbed" / source
    maps = [folder / f"part-{p:04d}.parquet"] if p is not None else sorted(folder.glob("part-*"))
    if not maps or not maps[0].exists():
        raise TokumeiError(f"scrub has not run for {source} (no {folder.name}/ replacements)")
    return pl.concat(
        [
            apply_replacements(
                partition_scan(paths, "generalized", source, int(m.stem.removeprefix("part-"))),
                pl.read_parquet(m),
            )
            for m in maps
        ]
    )


def _merged_records(paths: RunPaths, prefix: str) -> dict[str, Any]:
    """Per-partition step records of a mapped step, merged (counts summed per column)."""
    merged: dict[str, Any] = {}
    for path in sorted(paths.layer("steps").glob(f"{prefix}-*.json")):
        for part in json.loads(path.read_text()).values():
            for col, st in part.get("columns", {}).items():
                acc = merged.setdefault(col, {})
                for k, v in st.items():
                    if isinstance(v, dict):
                        inner = acc.setdefault(k, {})
                        for e, n in v.items():
                            inner[e] = inner.get(e, 0) + n
                    else:
                        acc[k] = acc.get(k, 0) + v
    return {"events": {"columns": merged}}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return obj


# --------------------------------------------------------------------------------------------
# 6. statistics


def stats_map(
    settings: Settings, day: str, run_id: str, partition: int | None = None
) -> dict[str, Any]:
    """Per partition: the small histograms the statistics tables are reduced from."""
    from tokumei.stats import periods
    from tokumei.stats import tables as stats

    paths = _paths(settings, day, run_id)
    persons = pl.scan_parquet(paths.work / "generalized" / "persons.parquet")
    special_care = _policy(settings).special_care_values.matcher()
    record: dict[str, Any] = {}
    for p in _parts(settings, partition):
        name = f"part-{p:04d}.parquet"
        events = scrubbed_scan(paths, "events", p)
        ms = partition_scan(paths, "generalized", "measurements", p)
        # The distinct page-view pairs are written once and the template histogram is read
        # back from them, instead of deduplicating the partition's events twice.
        pairs_path = paths.layer("stats_map/pv_pairs") / name
        written = {"pv_pairs": write_parquet(stats.page_view_pairs(events), pairs_path)}
        out = {
            "dau": stats.dau_map(events, persons),
            "pv_templates": stats.template_persons(pl.scan_parquet(pairs_path)),
            "measurements": stats.measurements_map(ms, persons),
            "sessions": stats.sessions_map(events),
            "search_volume": stats.search_volume_map(events, special_care),
            "funnel": stats.funnel_map(events),
            "revenue": stats.revenue_map(events),
        }
        written.update(
            {
                key: write_parquet(lf, paths.layer(f"stats_map/{key}") / name)
                for key, lf in out.items()
            }
        )
        # This day's part of the retained pseudonymous activity layer (tokumei/stats/periods.py);
        # staged now, moved into <out>/retained/ by publish together with the release.
        written["activity"] = write_parquet(
            periods.activity_rows(events, ms, persons, day),
            paths.staged_retained("activity") / name,
        )
        written["purchases"] = write_parquet(
            periods.purchase_rows(events, day, stats.price_band(pl.col("amount_jpy"))),
            paths.staged_retained("purchases") / name,
        )
        record[str(p)] = written
    return record


def stats_reduce(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """Reduce the partition histograms to the daily tables; add the period tables due today.

    Suppression, the cross-release rules (``tokumei.stats.period_tables``), optional noise and
    rounding, then the LP attacker audit over everything about to be published (fail closed).
    """
    from tokumei.stats import grids
    from tokumei.stats import tables as stats
    from tokumei.stats.disclosure import diversity, dp_tables

    paths = _paths(settings, day, run_id)
    policy = _policy(settings)
    t = policy.thresholds
    maps = paths.work / "stats_map"
    rare = stats.rare_templates(
        pl.scan_parquet(maps / "pv_templates" / "*.parquet"),
        t.k,
        policy.special_care_values.matcher(),
    )
    rare = rare.collect().lazy()
    pv_hist = pl.concat(
        stats.page_views_map(
            pl.scan_parquet(maps / "pv_pairs" / f"part-{p:04d}.parquet"), rare
        ).collect()
        for p in partitions_of(settings)
    )
    ms_grid = grids.grid("measurements_summary", policy)
    budget = dp_tables.ledger(policy)
    grid = dp_tables.demographic_grid(policy)
    dau_hists = pl.scan_parquet(maps / "dau" / "*.parquet")
    if budget is not None and dp_tables.wants_noise(policy, "daily_active_users"):
        exact = dau_hists.group_by(dp_tables.DEMOGRAPHIC_DIMS).agg(pl.col("persons").sum())
        noisy, entry = dp_tables.noisy_persons(
            exact.collect(), grid, policy.noise, "daily_active_users"
        )
        budget = budget.spend(entry)
        dau_hists = noisy.lazy()  # one row per public cell; the reduce sums nothing more
    tables = {
        # zero cells of the public grid are published (suppressed) too: see stats.on_grid
        "daily_active_users": stats.dau_reduce(dau_hists, day, t.min_cell, grid),
        "page_views": stats.page_views_reduce(pv_hist.lazy(), day, t.min_cell),
        "measurements_summary": stats.measurements_reduce(
            pl.scan_parquet(maps / "measurements" / "*.parquet"),
            day,
            t.min_cell,
            ms_grid,
            policy.disclosure,
        ),
        "sessions": stats.sessions_reduce(
            pl.scan_parquet(maps / "sessions" / "*.parquet"), day, t.min_cell
        ),
        "search_volume": stats.search_volume_reduce(
            pl.scan_parquet(maps / "search_volume" / "*.parquet"), day, t.min_cell
        ),
        "funnel": stats.funnel_reduce(
            pl.scan_parquet(maps / "funnel" / "*.parquet"), day, t.min_cell
        ),
        "revenue": stats.revenue_reduce(
            pl.scan_parquet(maps / "revenue" / "*.parquet"), day, t.min_cell, policy.disclosure
        ),
    }
    from tokumei.stats import period_tables
    from tokumei.stats.disclosure.rounding import round_expr

    # Attribute disclosure (tokumei/stats/disclosure/diversity.py): a group whose published
    # band distribution is possibly homogeneous is suppressed whole, before the period tables
    # are checked against the daily ones. Before keeping the previous release's pattern (a
    # re-run of the date then keeps nothing the rule hides anyway, so its record is the first
    # run's) and again after it (cells kept hidden can make a group possibly homogeneous).
    daily, _ = diversity.protect_tables(
        {name: lf.collect() for name, lf in tables.items()}, policy.disclosure
    )
    daily, kept_hidden = period_tables.keep_previous(paths, daily)
    daily, _ = diversity.protect_tables(daily, policy.disclosure)
    from tokumei.stats import release_truth
    from tokumei.stats.disclosure import release as sdc

    truth = release_truth.daily_truth(  # in memory, never published
        maps,
        pv_hist,
        {"daily_active_users": grid, "measurements_summary": ms_grid},
    )
    period, period_rec, budget = period_tables.build(
        paths, daily, t.min_cell, policy, grid, budget, truth
    )
    period, _ = diversity.protect_tables(period, policy.disclosure)
    period, kept_period = period_tables.keep_previous(paths, period)
    period, _ = diversity.protect_tables(period, policy.disclosure)
    kept_hidden.update(kept_period)
    # One disclosure model for the release (tokumei/stats/disclosure/release.py): complements
    # chosen on the joint system of every declared relation; the audit below re-attacks it.
    model = release_truth.model_inputs(paths, policy) | {"rounding_base": t.rounding_base}
    try:
        protected, complements, _ = sdc.protect_release(
            {**daily, **period}, t.min_cell, truth=truth, **model
        )
    except (sdc.InconsistentReleaseError, sdc.UndeclaredRelationsError) as e:
        raise TokumeiError(f"disclosure model: {e}; nothing was published") from e
    daily = {n: protected[n] for n in daily}
    period = {n: protected[n] for n in period}
    record: dict[str, Any] = {}
    frames: dict[str, pl.DataFrame] = {}
    for name, df in {**daily, **period}.items():
        if t.rounding_base > 1:  # after suppression and the cross-release checks (it only blurs)
            counts = stats.TABLES[name].counts
            df = df.with_columns(round_expr(pl.col(c), t.rounding_base).alias(c) for c in counts)
        frames[name] = df
        write_parquet(df, paths.staged_table("stats", name))
        published = [v for c in stats.TABLES[name].counts for v in df[c].drop_nulls().to_list()]
        record[name] = {
            "rows": df.height,
            "suppressed_cells": int(df["suppressed"].sum()),
            "min_published_count": min(published) if published else None,
            "release": stats.TABLES[name].release,
            "rounding_base": t.rounding_base,
            "kept_hidden_from_previous_release": kept_hidden.get(name, 0),
            "complements_by_release_model": complements.get(name, 0),
            **({"period": period_rec[name]} if name in period_rec else {}),
        }
    # The attacker: the release's declared system rebuilt from the published frames alone (plus
    # the primary labels, the worst case) and solved per suppressed cell; fail closed.
    from tokumei.stats.disclosure.audit import failing

    try:
        audit = sdc.audit(frames, t.min_cell, truth=truth, **model)
    except sdc.InconsistentReleaseError as e:
        raise TokumeiError(f"disclosure audit: {e}; nothing was published") from e
    for name, verdict in audit.items():
        record[name]["disclosure"] = verdict
        # no published band distribution may be homogeneous (attacker's view); fail closed
        # How many groups the rule hid is not printed: with the daily tables it points at the
        # hidden homogeneous group (attack of bench/attack_release.py, bench/results/attack.md).
        verdict["diversity"] = diversity.audit(frames[name], name, policy.disclosure)
        if not verdict["diversity"]["ok"]:
            verdict["ok"] = False
        cross = (period_rec.get(name) or {}).get("cross_release") or {}
        if cross.get("ok") is False:
            verdict["ok"] = False  # a period cell narrows a suppressed daily cell: fail closed
    save_record(paths, "build_stats", record)
    skipped = {n: r for n, r in period_rec.items() if r["status"] == "skipped"}
    save_record(paths, "period_tables", skipped)
    if budget is not None:
        save_record(
            paths,
            "privacy_budget",
            {
                "mechanism": policy.noise.mechanism if policy.noise else None,
                "epsilon_spent": budget.epsilon,
                "delta_spent": budget.delta,
                "epsilon_limit": budget.limit_epsilon,
                "releases": budget.as_dicts(),
            },
        )
    if bad := failing(audit):
        raise TokumeiError(f"disclosure audit: suppressed cells recoverable in {', '.join(bad)}")
    return record


# --------------------------------------------------------------------------------------------
# 6b. k-anonymous records

#: The record-level release: one row per page view of a known person. Quasi-identifiers are
#: generalized by the optimal lattice search; k counts distinct persons, never rows.
ANONYMIZED_DATASET = "page_views"
ANONYMIZED_QIS = ("age", "gender", "prefecture", "device_class")
ANONYMIZED_ATTRIBUTES = ("url_template",)
#: GX suite / Data Docs name of that output (GX store keys cannot contain "/").
ANONYMIZED_VALIDATION_NAME = f"anonymized_{ANONYMIZED_DATASET}"


def _demographics(paths: RunPaths) -> pl.LazyFrame:
    """Known persons with demographics (age, gender, prefecture), each with ``_pid``: a dense
    integer id given in pseudonym order.

    Why: the record release holds several copies of its 4.9M records on the 10M-event day,
    and the 64-character pseudonym on each was most of their size (peak 4.5 GiB,
    bench/results/scale.md); the ids keep every person distinct and sort like the pseudonyms,
    so the release is the same. The person column is dropped before anything is written.
    """
    return (
        pl.scan_parquet(paths.work / "generalized" / "persons.parquet")
        .select(PERSON, "age", "gender", "prefecture")
        .filter(pl.col("age").is_not_null())  # persons without demographics: nothing to release
        .sort(PERSON)
        .with_row_index("_pid")
    )


def page_view_records(paths: RunPaths) -> pl.DataFrame:
    """The records ``anonymize_records`` starts from: one row per page view of a known person
    with demographics (person as its integer id, device_class, url_template, age, gender,
    prefecture), in no particular order.

    Why unsorted: the release never sees this order. ``bound_contributions`` groups the records
    and sorts them by person, class, occurrence and a keyed hash before the engine shuffles
    them, so any input order gives the same release; sorting 4.9M records here cost 2.3 of
    ``anonymize_records``' CPU-s on the 10M-event day (bench/results/scale.md, session 16).
    """
    return (
        scrubbed_scan(paths, "events")
        .filter(pl.col("event") == "page_view")
        .select(PERSON, "device_class", pl.col("url_template").fill_null("unknown"))
        .join(_demographics(paths), on=PERSON, how="inner")  # known persons only: anonymous
        .drop(PERSON)  # cookies have no demographics to release
        .rename({"_pid": PERSON})
        .with_columns(pl.col("device_class").fill_null("unknown"))
        .collect()
    )


def anonymized_qis() -> dict[str, Any]:
    """The quasi-identifiers of ``anonymized/page_views`` and their hierarchies."""
    from tokumei.anonymize.hierarchies import CategoricalHierarchy

    return {
        "age": AgeHierarchy(),
        "gender": CategoricalHierarchy(),
        "prefecture": PrefectureHierarchy(),
        "device_class": CategoricalHierarchy(),
    }


def anonymize_records(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """The record-level release: page views k-anonymized over persons, url_template folded,
    bounded per person and l-diverse (tokumei/anonymize/records.py; docs/architecture.md §5).

    Wiring only: read the records, run :func:`tokumei.anonymize.records.release_records`, add
    each row's class size in persons for GX while the person key still exists, write.
    """
    from tokumei.anonymize.records import RecordRules, check_column_model, release_records
    from tokumei.expectations.specs import add_class_persons

    paths = _paths(settings, day, run_id)
    policy = _policy(settings)
    t = policy.thresholds
    records = page_view_records(paths)
    qis = anonymized_qis()
    record: dict[str, Any] = {"input_records": records.height}
    if records.height == 0:
        save_record(paths, "anonymize_records", record)
        return record
    rules = RecordRules(
        k=t.k,
        l=policy.records.l,
        max_records_per_person_class=policy.records.max_records_per_person_class,
        max_suppression=t.max_suppression,
        special_care=policy.special_care_values.matcher(),
        t=policy.records.t_closeness,
    )
    (attribute,) = ANONYMIZED_ATTRIBUTES
    # the day's page_views table as it will be published: records of its suppressed cells are
    # withheld, else they would be lower bounds on those cells (bench/results/attack.md)
    stats_table = pl.read_parquet(paths.staged_table("stats", "page_views"))
    # journalist/marketer risk population: the run's known persons with demographics
    population = _demographics(paths).drop(PERSON).rename({"_pid": PERSON}).collect()
    result = release_records(
        records, qis, PERSON, attribute, rules, stats_table, population=population
    )
    frame = add_class_persons(result.frame, list(ANONYMIZED_QIS), PERSON).drop(PERSON)
    frame = frame.select(*ANONYMIZED_QIS, *ANONYMIZED_ATTRIBUTES, "_class_persons")
    check_column_model([c for c in frame.columns if c != "_class_persons"])
    write_parquet(frame, paths.layer("anonymized") / f"{ANONYMIZED_DATASET}.parquet")
    m = result.metrics
    engine = {k: v for k, v in result.engine.items() if k != "class_size_histogram"}
    record.update(
        {
            **engine,
            **m,
            "rows": frame.height,
            "transformation": result.transformation,
            # classes and their sizes as released (after bounding, folding and withholding)
            "classes": m.get("classes", 0),
            "min_class_size": m.get("min_class_persons", 0),
            "withheld_suppressed_records": m["withheld_records"]
            if m.get("released")
            else records.height,
            "seconds": round(result.seconds, 3),
            "class_size_histogram": result.engine.get("class_size_histogram"),
        }
    )
    save_record(paths, "anonymize_records", record)
    return record


# --------------------------------------------------------------------------------------------
# 7. validate


def _stats_specs(policy: Policy) -> dict[str, Any]:
    from tokumei.expectations.specs import ColumnSpec, OutputSpec
    from tokumei.stats.tables import DIM_VALUES, TABLES

    def _allowed(dim: str) -> list[str] | None:
        return list(DIM_VALUES[dim]) if dim in DIM_VALUES else None

    forbidden = sorted(
        {
            c
            for sp in (*policy.sources.values(), *policy.tables.values())
            for c, p in sp.columns.items()
            if p.role in (*DROPPED_ROLES, Role.LINKING_KEY)
        }
        | {PERSON}
    )
    specs = {}
    for name, t in TABLES.items():
        cols = [ColumnSpec("date", "date", nullable=False)]
        cols += [
            ColumnSpec(d, "string", nullable=False, allowed=_allowed(d))
            for d in t.dims
            if d != "date"
        ]
        cols += [
            ColumnSpec(c, "int", nullable=True, min=policy.thresholds.min_cell) for c in t.counts
        ]
        cols += [ColumnSpec(m, t.dtype(m), nullable=True, min=0) for m in t.measures]
        cols += [ColumnSpec("suppressed", "bool", nullable=False)]
        specs[name] = OutputSpec(
            name=name,
            kind="stats",
            columns=cols,
            forbidden_columns=forbidden,
            pii_checked_columns=[d for d in t.dims if d != "date"],
            count_columns=list(t.counts),
            min_cell=policy.thresholds.min_cell,
        )
    return specs


def _anonymized_spec(policy: Policy, name: str) -> Any:
    from tokumei.expectations.specs import ColumnSpec, OutputSpec

    stats_spec = next(iter(_stats_specs(policy).values()))
    return OutputSpec(
        name=name,
        kind="anonymized",
        columns=[
            ColumnSpec(c, "string", nullable=False)
            for c in (*ANONYMIZED_QIS, *ANONYMIZED_ATTRIBUTES)
        ],
        forbidden_columns=stats_spec.forbidden_columns,
        pii_checked_columns=[*ANONYMIZED_QIS, *ANONYMIZED_ATTRIBUTES],
        k=policy.thresholds.k,
        qi_columns=list(ANONYMIZED_QIS),
        person_count_column="_class_persons",
    )


def validate(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """Run the GX suites over every staged output and build Data Docs; fail closed."""
    from tokumei.expectations.runner import validate_outputs
    from tokumei.expectations.suites import default_gx_dir

    paths = _paths(settings, day, run_id)
    policy = _policy(settings)
    built = load_record(paths, "build_stats")
    specs = {n: s for n, s in _stats_specs(policy).items() if n in built}
    outputs = {name: pl.read_parquet(paths.staged_table("stats", name)) for name in specs}
    anon_path = paths.work / "anonymized" / f"{ANONYMIZED_DATASET}.parquet"
    if anon_path.exists():
        # validated with its per-row class size in persons, published without it
        anon_name = ANONYMIZED_VALIDATION_NAME
        specs[anon_name] = _anonymized_spec(policy, anon_name)
        outputs[anon_name] = pl.read_parquet(anon_path)
    # the day's input expectations, recorded by extract_step: one GX run, one Data Docs
    from tokumei.expectations.inputs import INPUT_NAME, input_output

    specs[INPUT_NAME], outputs[INPUT_NAME] = input_output(paths, policy)
    # The day's Data Docs travel with the release; the same pages join one site with every
    # run's validations, passed or failed (docs/architecture.md §5), locally or on the bucket.
    from tokumei.expectations.history import history_site

    with history_site(settings) as history:
        report = validate_outputs(
            outputs,
            specs,
            docs_dir=paths.staged_reports / "data_docs",
            run_name=run_id,
            history_dir=history.folder,
            # the data-quality team's hand-written suites (gx/README.md) run with the generated
            gx_dir=default_gx_dir(),
        )
    record = {
        name: {
            "passed": r.passed,
            "evaluated": r.evaluated,
            "failed_expectations": [str(f) for f in r.failed_expectations],
        }
        for name, r in report.outputs.items()
    }
    save_record(paths, "validate", record)
    if report.passed and anon_path.exists():
        from tokumei.expectations.specs import strip_validation_columns

        name = ANONYMIZED_VALIDATION_NAME
        published = strip_validation_columns(outputs[name], specs[name])
        write_parquet(published, paths.staged_table("anonymized", ANONYMIZED_DATASET))
    if not report.passed:
        failed = sorted(n for n, r in report.outputs.items() if not r.passed)
        # The data-quality team needs the failing Data Docs; they show no values (GX result
        # formats are value-free), so they are kept under reports/…/failed/, outside published/.
        target = paths.reports / "failed" / run_id / "data_docs"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(paths.staged_reports / "data_docs", target)
        raise ValidationFailed(
            f"validation failed for {', '.join(failed)}; nothing was published "
            f"(Data Docs: {target / 'index.html'}"
            + (f"; all runs: {history.index})" if report.history_index else ")")
        )
    return record


# --------------------------------------------------------------------------------------------
# 8. publish


def _accounting(paths: RunPaths) -> dict[str, dict[str, int]]:
    ex, fr = load_record(paths, "extract"), load_record(paths, "filter_rights")
    books: dict[str, dict[str, int]] = {}
    for source in LANDING_SOURCES:
        e, f = ex.get(source, {}), fr.get(source, {})
        entry = {
            "input": e.get("input", 0),
            "kept": f.get("kept", 0),
            "quarantined": e.get("quarantined", 0),
            "excluded_by_rights": f.get("excluded_by_rights", 0),
            "suppressed": 0,
            "dropped_by_rule": f.get("dropped_by_rule", 0),
        }
        total = (
            entry["kept"]
            + entry["quarantined"]
            + entry["excluded_by_rights"]
            + entry["suppressed"]
            + entry["dropped_by_rule"]
        )
        if total != entry["input"] or f.get("input", 0) != e.get("kept_after_extract", 0):
            raise BooksDoNotBalance(
                f"source {source}: input {entry['input']} != kept + quarantined + excluded + "
                f"suppressed + dropped ({total}); nothing was published"
            )
        books[source] = entry
    return books


def _anonymized_outputs(paths: RunPaths, val_rec: dict[str, Any]) -> dict[str, Any]:
    rec = load_record(paths, "anonymize_records")
    name = f"anonymized/{ANONYMIZED_DATASET}"
    vname = ANONYMIZED_VALIDATION_NAME
    if "rows" not in rec:
        return {}
    return {
        name: {
            "rows": rec["rows"],
            "k_min": rec.get("min_class_size"),
            "suppressed_persons": rec.get("suppressed"),
            "withheld_suppressed_records": rec.get("withheld_suppressed_records"),
            "transformation": rec.get("transformation"),
            "granularity_loss": rec.get("granularity_loss"),
            "validation": "passed" if val_rec.get(vname, {}).get("passed") else "failed",
        }
    }


def _partial_reasons(extract_rec: dict[str, Any]) -> list[str]:
    """Why the landing was incomplete in a run with --allow-incomplete (docs/landing.md)."""
    landing = extract_rec.get("landing") or {}
    if not landing.get("partial"):
        return []
    return [r["reason"] for r in landing["sources"].values() if not r["complete"]]


def _staged_tables(paths: RunPaths) -> dict[str, Path]:
    """``<kind>/<table>`` -> the run's staged partition of every table it publishes."""
    staged = paths.staging / "published"
    return {
        f"{part.parts[-4]}/{part.parts[-3]}": part
        for part in sorted(staged.glob("*/*/date=*/part-0.parquet"))
    }


def publish(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """Check the books, write the manifest, move staged outputs into place, refresh the catalog."""
    from tokumei.release.manifest import build_manifest, public_manifest
    from tokumei.release.reports import write_items_notice, write_privacy_report

    paths = _paths(settings, day, run_id)
    policy = _policy(settings)
    books = _accounting(paths)
    stats_rec, val_rec = load_record(paths, "build_stats"), load_record(paths, "validate")
    if not val_rec or not all(v["passed"] for v in val_rec.values()):
        raise ValidationFailed("outputs were not validated; nothing was published")
    if bad := sorted(n for n, r in stats_rec.items() if not (r.get("disclosure") or {}).get("ok")):
        raise TokumeiError(f"disclosure audit missing or failed for {', '.join(bad)}")
    manifest = build_manifest(
        run_id=run_id,
        day=day,
        policy_version=policy.version,
        sources=books,
        outputs={
            **{
                f"stats/{name}": {
                    "rows": rec["rows"],
                    "k_min": rec["min_published_count"],
                    "suppressed_cells": rec["suppressed_cells"],
                    "validation": "passed" if val_rec[name]["passed"] else "failed",
                    "release": rec.get("release", "daily"),
                    "kept_hidden_from_previous_release": rec.get(
                        "kept_hidden_from_previous_release", 0
                    ),
                    **({"period": rec["period"]} if "period" in rec else {}),
                }
                for name, rec in stats_rec.items()
            },
            **_anonymized_outputs(paths, val_rec),
        },
        anonymized=load_record(paths, "anonymize_records") or None,
        privacy_budget=load_record(paths, "privacy_budget") or None,
        disclosure={name: rec.get("disclosure") for name, rec in stats_rec.items()},
        steps={
            **{s: load_record(paths, s) for s in ("extract", "discover")},
            "scrub": _merged_records(paths, "scrub"),
            "partitions": settings.partitions,
            # weekly/monthly tables due today but not released, and why (missing days)
            "period_tables_skipped": load_record(paths, "period_tables"),
        },
        status="published",
        partial=_partial_reasons(load_record(paths, "extract")),
    )
    for out_name, out_rec in manifest["outputs"].items():  # the columns as staged, for the notice
        staged = paths.staged_table(*out_name.split("/", 1))
        if staged.exists():
            out_rec["columns"] = list(pl.read_parquet_schema(staged))
    # The published Delta tables (docs/adr/0008-published-tables-delta-lake.md), in the local
    # published/ or under the s3:// output: columns a table gains are recorded with the
    # release that adds them; a non-additive change stops here, before anything is written.
    from tokumei.infra.tableformat import RELEASES, next_release, recover, schema_changes

    tables_at, staged = paths.tables_at, _staged_tables(paths)
    recover(tables_at)  # a killed publish's commits go before the release number is taken
    added = schema_changes(tables_at, staged, day)
    for out_name, columns in added.items():
        if out_name in manifest["outputs"]:
            manifest["outputs"][out_name]["columns_added"] = columns
    manifest["table_format"] = {
        "format": "delta",
        "marker": f"published/delta/{RELEASES}",
        "release": next_release(tables_at),
    }
    # Exact figures stay in the run's internal records (_work, deleted by cleanup); the
    # published manifest and the reports print every count of persons or rows by one rule
    # (tokumei/release/manifest.py: printed_count), so no small count is printed anywhere.
    save_record(paths, "manifest_exact", manifest)
    manifest = public_manifest(manifest, policy.thresholds.min_cell)
    paths.staged_reports.mkdir(parents=True, exist_ok=True)
    (paths.staged_reports / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True)
    )
    tables = {name: pl.read_parquet(paths.staged_table("stats", name)) for name in stats_rec}
    from tokumei.release.provision import read_ledger

    write_privacy_report(
        manifest,
        tables,
        paths.staged_reports / "privacy_report.html",
        ledger=read_ledger(settings.out),  # provisions so far (tokumei provide)
    )
    from tokumei.jobs.retention import activity_days_from_env

    write_items_notice(
        policy,
        manifest,
        paths.staged_reports / "items_notice.md",
        retention_days=activity_days_from_env(),
    )
    from tokumei.infra.tableformat import publish_release as publish_delta
    from tokumei.release.catalog import view_docs
    from tokumei.stats.period_tables import write_retained_key

    # The Delta tables and their release marker first: the marker's commit is the readers'
    # commit point (docs/adr/0008-published-tables-delta-lake.md), locally and under an s3://
    # output alike. What may fail before it is done before it (the retained key check: written
    # once, never overwritten; start() verified this run's key against it). After it the
    # release *is* published: the reports and the day's retained partitions follow, and a
    # retried publish writes the same release again (a new release number, same rows).
    write_retained_key(paths.retained_at, load_record(paths, "start")["key_check"])
    release = publish_delta(tables_at, staged, day, run_id)
    result: dict[str, Any] = {"delta_release": release.release, "tables": sorted(staged)}
    if not settings.out_url:
        result["published"] = publish_tree(paths)
        result["catalog_views"] = build_catalog(paths.published, view_docs())
        return result
    # s3:// output: the reports and the day's retained partitions go under the output URL,
    # nothing stays on this worker (workers share no disk, docs/architecture.md §7)
    from tokumei.infra.objectstore import upload_folder, upload_reports

    result["reports"] = upload_reports(settings.out_url, paths.staged_reports, day)
    staged_retained = paths.staging / "retained"
    for part in sorted(staged_retained.glob(f"*/date={day}")):
        rel = part.relative_to(staged_retained).as_posix()
        upload_folder(part, f"{paths.retained_at}/{rel}")
    result["tables_at"] = str(tables_at)
    return result


# --------------------------------------------------------------------------------------------
# 9. cleanup


def cleanup(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """Delete the run's work layer and staging area (with an ``s3://`` output the bucket's
    copies too, then the bucket's run lock). Safe to call twice."""
    paths = _paths(settings, day, run_id)
    remove_run_dirs(paths)
    runlock.release(settings.out, run_id)  # after the work layer is gone (runlock docstring)
    if settings.out_url:
        from tokumei.infra import worklayer

        worklayer.remove_remote(settings, run_id)
        runlock.release_url(settings.out_url, run_id)
    return {"removed": True}


def extract_step(
    settings: Settings, day: str, run_id: str, in_airflow: bool = False
) -> dict[str, Any]:
    """``extract`` with its input expectations observed for GX: recorded for ``validate``, or
    validated into Data Docs at once when they stop the run (tokumei/expectations/inputs.py)."""
    from tokumei.expectations.inputs import observed_extract

    with observed_extract(settings, _paths(settings, day, run_id)):
        return extract(settings, day, run_id, in_airflow=in_airflow)


def check_inputs_step(settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """``check_inputs`` observed for GX like ``extract_step``: the quarantine and volume
    expectations are checked here, once every file is ingested."""
    from tokumei.expectations.inputs import observed_extract

    with observed_extract(settings, _paths(settings, day, run_id)):
        return check_inputs(settings, day, run_id)


def record_failure(settings: Settings, day: str, run_id: str, reason: str) -> Path:
    """Write ``reports/date=…/failed/<run_id>.json`` (reason has no values: see safe_reason)."""
    from tokumei.release.manifest import build_manifest

    paths = _paths(settings, day, run_id)
    policy_version = ""
    with contextlib.suppress(Exception):  # the failure may be the policy itself
        policy_version = _policy(settings).version
    manifest = build_manifest(
        run_id=run_id,
        day=day,
        policy_version=policy_version,
        sources={},
        outputs={},
        steps={},
        status="failed",
        reason=reason,
    )
    target = paths.reports / "failed" / f"{run_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True))
    return target


#: The order the CLI runs them in (the DAG wires the same order).
STEPS = (
    ("extract", extract_step),
    ("ingest", ingest),
    ("check_inputs", check_inputs_step),
    ("scrub", scrub),
    ("stats_map", stats_map),
    ("stats_reduce", stats_reduce),
    ("anonymize_records", anonymize_records),
    ("validate", validate),
    ("publish", publish),
)

#: What a step imports beyond this module: a big day's next step process imports them while
#: the step before runs (``StepProcess.run(ahead=...)``; GX alone is ~3 s of a fresh start);
#: ``"module:function"`` also calls the function (ingest: its worker processes start and warm up).
#: None for check_inputs: its process would wait beside ingest's workers, the day's memory
#: peak (10M-event day: process tree 3.80 GiB with it, against the 4 GiB target).
STEP_IMPORTS: dict[str, tuple[str, ...]] = {
    "ingest": ("tokumei.pipeline.steps:warm_ingest_workers",),
    "scrub": ("tokumei.anonymize.pii",),
    "stats_map": ("tokumei.stats.tables", "tokumei.stats.periods"),
    "stats_reduce": ("tokumei.stats.grids", "tokumei.stats.disclosure.dp_tables"),
    "anonymize_records": ("tokumei.anonymize.records", "tokumei.expectations.specs"),
    "validate": ("tokumei.expectations.runner", "tokumei.expectations.custom"),
    "publish": ("tokumei.release.manifest", "tokumei.release.reports"),
}


#: Steps that get a process of their own on a small day, started at the run's start with what
#: it imports (``StepProcess.reserve``): validate's GX import and GX's first validation
#: (``runner.warm_up``) are ~8 CPU-s, a third of a 500-person day, and would otherwise run on
#: the critical path of the one reused step process. (A big day's look-ahead process imports
#: GX but does not warm it up: validate took 5.8 / 8.4 s with it, 5.6 / 8.6 s without.)
RESERVED_STEPS: dict[str, tuple[str, ...]] = {
    "validate": ("tokumei.expectations.custom", "tokumei.expectations.runner:warm_up"),
}


#: A landing this many times the step-process reuse limit is a big day from the start (its
#: work directory will pass the limit: the 10M-event day lands 1.4 GB and writes GiBs).
BIG_LANDING_FACTOR = 4


def landing_scale(settings: Settings, day: str) -> Literal["small", "big"] | None:
    """How big the day is, told from its landing files before the first step, in one listing.

    ``"small"``: within the step-process reuse limit (``keep_step_process`` in
    ``tokumei.infra.processes``), so the steps will share one reused process, where a reserved
    process pays. ``"big"``: past :data:`BIG_LANDING_FACTOR` times it, so every step will get a fresh
    process and the next one can start ahead from the first step on
    (``StepProcess.expect_fresh``: ingest's process and workers start during extract).
    None in between, and for an s3:// landing (not listed here).
    """
    from tokumei.infra.processes import max_work_bytes, tree_bytes
    from tokumei.ingest.landing import day_folder

    if settings.landing_url:
        return None
    limit = max_work_bytes()
    stop = BIG_LANDING_FACTOR * limit
    total = 0
    for source in LANDING_SOURCES:
        total += tree_bytes(day_folder(settings.landing, source, day), stop - total)
        if total > stop:
            return "big"
    return "small" if total <= limit else None


class StepFailed(TokumeiError):
    """A step failed in its own process; the message is ``safe_reason`` without the step."""


def _run_step(step: str, settings: Settings, day: str, run_id: str) -> dict[str, Any]:
    """Entry point of a step in a step process (``run_all(isolate=True)``).

    Exceptions cross the process boundary by pickling; ours carry constructor arguments that
    do not round-trip (and a raw message could carry data), so the child turns any failure
    into its safe one-line reason, exactly what the in-process run would report.
    """
    try:
        return dict(STEPS)[step](settings, day, run_id)
    except BaseException as exc:
        raise _step_failed(exc, step, settings) from None


def run_all(
    settings: Settings,
    day: str,
    progress: Any = None,
    in_airflow: bool = False,
    isolate: bool = False,
) -> dict[str, Any]:
    """Run every step; on failure record it, clean up, and re-raise.

    ``isolate``: steps in a spawned step process, as Airflow tasks are, never in this one. Why:
    steps hand over through files, and whatever a step leaves resident (allocator caches of
    Polars, DuckDB and numpy are not returned to the OS) would otherwise add to every later
    step's peak. A step process is reused for the next step only while the day is small
    (``tokumei.infra.processes.keep_step_process``), so a big day still gets a fresh process
    per step and its peak is the largest single step's, while a small day does not pay an
    interpreter start and the imports (~1 s) per step. Tests, which inject failures by
    patching functions in-process, leave it off.
    """
    from tokumei.infra.errors import safe_reason
    from tokumei.infra.processes import StepProcess, keep_step_process

    # The run id exists before start() so that a failure anywhere, start included, can be
    # recorded and cleaned up under it.
    run_id = new_run_id(check_day(day))
    results: dict[str, Any] = {"run_id": run_id}
    step = "start"
    work = _paths(settings, day, run_id).work
    if settings.out_url:  # the bucket's lock: runs on other machines (a Celery cluster) wait
        runlock.acquire_url(settings.out_url, run_id, in_airflow=in_airflow)
    # step processes die with this one (and what they fork), even on SIGKILL
    process = StepProcess(lambda rss: keep_step_process(rss, work))
    try:
        with process:
            if isolate:  # the first step process starts while start() checks key, lock, policy
                process.prestart(__name__)
            start(settings, day, in_airflow=in_airflow, run_id=run_id)
            scale = landing_scale(settings, day) if isolate else None
            if scale == "small":
                for step, modules in RESERVED_STEPS.items():
                    process.reserve(step, modules)
            elif scale == "big":
                process.expect_fresh()
            for n, (step, fn) in enumerate(STEPS):
                t0 = time.perf_counter()
                if progress:
                    progress(step, "start", None)
                if isolate:
                    after = STEPS[n + 1][0] if n + 1 < len(STEPS) else ""
                    ahead = () if process.reserved(after) else STEP_IMPORTS.get(after, ())
                    results[step] = process.run(
                        _run_step, step, settings, day, run_id, ahead=ahead, name=step
                    )
                else:
                    results[step] = fn(settings, day, run_id)
                if progress:
                    progress(step, "done", time.perf_counter() - t0)
    except BaseException as exc:
        reason = safe_reason(exc, step, settings.error_roots())
        started = _paths(settings, day, run_id).work.exists()
        try:
            # A run that never started (no key, bad policy) wrote nothing and records nothing.
            if started:
                record_failure(settings, day, run_id, reason)
        except Exception as also:  # noqa: BLE001 - a full disk must not hide the first reason
            log.error("the failure record was not written: %s", safe_reason(also, step))
        finally:
            cleanup(settings, day, run_id)
        if isinstance(exc, StepFailed):  # from a step process: its message lacks the step
            raise StepFailed(reason) from None
        if isinstance(exc, TokumeiError):
            raise
        raise TokumeiError(reason) from exc
    cleanup(settings, day, run_id)
    return results
