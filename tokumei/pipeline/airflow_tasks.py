"""What the tokumei DAGs do and how they are operated; the DAG files in ``dags/`` only wire it.

Each task body is a function here that reads the JST day and the settings and calls one step of
``tokumei.pipeline.steps`` (docs/architecture.md §2, "How a task maps to a function"), so the DAG
files stay declarations and ``tokumei run`` and Airflow run the same code. The operating
settings live here too: per-task ``execution_timeout`` and pools (overridable from the
environment), the failure notifier, the landing sensor and the Assets ``publish`` emits
(docs/deploy.md, "Operating under Airflow").

The DAG processor imports this module on every parse, so it imports only the standard library
and ``airflow.sdk`` at top level; Polars, DuckDB, GX and spaCy load inside the task bodies.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import urllib.request
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetAlias, BaseNotifier, BaseSensorOperator, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Operating settings: timeouts, pools, retries


#: Default ``execution_timeout`` per task, in minutes. A hung task (a child process blocked on a
#: pipe, a stalled mount) fails and is retried instead of holding a worker slot and the run's
#: ``max_active_runs=1`` forever. Sized from the 10M-event day on 2 shared cores
#: (bench/results/scale.md: extract ~1 min, the whole run ~4 min) with a wide margin for larger
#: days and busier workers; NER (scrub) is the slowest step per row. Override one task with
#: ``TOKUMEI_TIMEOUT_<TASK>`` (minutes, e.g. ``TOKUMEI_TIMEOUT_SCRUB=360``).
TIMEOUT_MINUTES: dict[str, int] = {
    "start": 10,
    # one poke (reschedule mode; it hashes the day's files once the marker is there); the wait
    # itself is the sensor's own timeout, TOKUMEI_LANDING_WAIT_MINUTES
    "landing_complete": 30,
    "extract": 120,
    "ingest": 60,
    "check_inputs": 30,
    "scrub": 180,
    "stats_map": 60,
    "stats_reduce": 60,
    "anonymize_records": 60,
    "validate": 60,
    "publish": 60,
    "cleanup": 30,
    "apply_retention": 60,
    "apply_rights_requests": 50,  # the hourly DAG has dagrun_timeout=55 min
}

#: Tasks that hold a lot of memory, and the pool that bounds how many run at once across all
#: workers: extract holds one typed frame per landing file in flight (~1 GiB per 1M-line part,
#: TOKUMEI_EXTRACT_WORKERS at once), scrub loads Presidio and GiNZA per process (~0.5 GiB each,
#: TOKUMEI_PII_WORKERS processes). The pools are declared in ``dags/pools.json`` (create them with
#: ``airflow pools import dags/pools.json``); ``TOKUMEI_POOL_<NAME>`` renames one, e.g. to
#: ``default_pool`` on a machine where the limit is not wanted.
POOLS: dict[str, str] = {
    "extract": "tokumei_extract",
    "ingest": "tokumei_extract",
    "scrub": "tokumei_ner",
}


def _positive_int(name: str, default: int, minimum: int = 1) -> int:
    """An environment setting in whole units ≥ ``minimum``; anything else is a DAG import error
    naming the variable (a typo must not silently become "no timeout")."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number ≥ {minimum}, got a non-integer") from None
    if value < minimum:
        raise ValueError(f"{name} must be a whole number ≥ {minimum}")
    return value


def execution_timeout(task_id: str) -> timedelta:
    """The task's ``execution_timeout``: ``TOKUMEI_TIMEOUT_<TASK>`` minutes, else the default."""
    default = TIMEOUT_MINUTES.get(task_id, 60)
    return timedelta(minutes=_positive_int(f"TOKUMEI_TIMEOUT_{task_id.upper()}", default))


def pool(task_id: str) -> str | None:
    """The pool of a memory-heavy task (``TOKUMEI_POOL_<POOL NAME>`` overrides), else None."""
    name = POOLS.get(task_id)
    if name is None:
        return None
    return os.environ.get(f"TOKUMEI_POOL_{name.upper()}") or name


def task_args(task_id: str, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of one ``@task``: its id, timeout, pool and lineage (plus ``extra``;
    outlets in ``extra`` are added to the task's lineage outlets)."""
    args: dict[str, Any] = {"task_id": task_id, "execution_timeout": execution_timeout(task_id)}
    if (name := pool(task_id)) is not None:
        args["pool"] = name
    inlets, outlets = lineage(task_id)
    if inlets:
        args["inlets"] = inlets
    outlets = outlets + list(extra.pop("outlets", []))
    if outlets:
        args["outlets"] = outlets
    return {**args, **extra}


def default_args() -> dict[str, Any]:
    """Retries absorb transient storage/DB hiccups; every step is idempotent on its work layer."""
    return {
        "retries": int(os.environ.get("TOKUMEI_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=60),  # for a task not in TIMEOUT_MINUTES
    }


# --------------------------------------------------------------------------------------------
# The day and the settings of a task


def day() -> str:
    """The JST calendar day this run processes.

    Scheduled runs and backfills cover the data interval [D 00:00 JST, D+1 00:00 JST) whose
    logical date is D 00:00 JST; ``airflow dags test usage_analytics D`` passes D itself. Both
    give D in JST. The ``date`` param overrides it for a manual run of a single day.
    """
    ctx = get_current_context()
    override = (ctx.get("params") or {}).get("date")
    if override:
        return str(override)
    return ctx["logical_date"].in_timezone("Asia/Tokyo").strftime("%Y-%m-%d")


#: The Airflow connection of the operational DB (docs/deploy.md, "The operational DB"). Under
#: Airflow it is where the DB's URL and credentials live, like every other connection of the
#: platform; ``TOKUMEI_DB_URL`` is the fallback for local runs and Compose.
OPSDB_CONN_ID = "tokumei_opsdb"


def opsdb_url(conn: Any) -> str:
    """The SQLAlchemy URL of an Airflow connection to the operational DB.

    ``postgres`` connections become ``postgresql+psycopg`` (the driver in uv.lock; Airflow's own
    ``get_uri`` gives ``postgres://``, which SQLAlchemy 2 refuses), ``sqlite`` ones a file URL
    (``host`` is the path), and any type may give its exact URL in the extra ``sqlalchemy_url``.
    """
    from sqlalchemy.engine import URL

    from tokumei.infra.errors import TokumeiError

    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    if conn.conn_type in ("postgres", "postgresql"):
        url = URL.create(
            "postgresql+psycopg",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query={k: str(v) for k, v in extra.items() if k in ("sslmode", "application_name")},
        )
        return url.render_as_string(hide_password=False)
    if conn.conn_type == "sqlite" and conn.host:
        return f"sqlite:///{conn.host}"
    raise TokumeiError(
        f"Airflow connection {conn.conn_id!r}: type {conn.conn_type!r} is not an operational DB "
        "tokumei reads (postgres, sqlite, or any type with the extra 'sqlalchemy_url')"
    )


def _opsdb_connection_url() -> str | None:
    """The operational DB's URL from the Airflow connection ``OPSDB_CONN_ID`` (renamed by
    ``TOKUMEI_OPSDB_CONN_ID``), or None when there is no such connection."""
    from airflow.sdk import Connection

    conn_id = os.environ.get("TOKUMEI_OPSDB_CONN_ID") or OPSDB_CONN_ID
    try:
        conn = Connection.get(conn_id)
    except Exception:  # noqa: BLE001 - "not found" has several exception types across backends
        return None
    return opsdb_url(conn)


def _settings():  # noqa: ANN202 - imported lazily on purpose
    from tokumei.infra.settings import Settings

    return Settings.from_env(db_url=_opsdb_connection_url())


# --------------------------------------------------------------------------------------------
# The run's folders on workers that share no disk (an s3:// output)

#: What each task reads of the run's work layer and staging (``tokumei.infra.worklayer``):
#: with an ``s3://`` output a task pulls only these from ``<out>/_work/<run_id>/`` and
#: ``<out>/_staging/<run_id>/`` (of a partitioned layer only its own partition) and pushes what
#: it wrote. Finer than ``LINEAGE`` (files, not datasets), from what the steps open.
WORK_NEEDS: dict[str, tuple[str, ...]] = {
    "extract": ("work/steps",),
    "ingest": ("work/steps", "work/dims"),
    "check_inputs": ("work/steps", "work/generalized"),
    "scrub": ("work/steps", "work/generalized"),
    "stats_map": (
        "work/steps",
        "work/generalized/persons.parquet",
        "work/generalized/events",
        "work/generalized/measurements",
        "work/scrubbed",
    ),
    "stats_reduce": (
        "work/steps",
        "work/dims",
        "work/generalized/persons.parquet",
        "work/stats_map",
        "staging",
    ),
    "anonymize_records": (
        "work/steps",
        "work/dims",
        "work/generalized/persons.parquet",
        "work/generalized/events",
        "work/scrubbed",
        "staging",
    ),
    "validate": ("work/steps", "work/anonymized", "staging"),
    "publish": ("work/steps", "staging"),
}


@contextlib.contextmanager
def _synced(
    settings: Any, run_id: str, task: str, partition: int | None = None, push: bool = True
) -> Iterator[None]:
    """The task's step against this worker's scratch copy of the run, synced with the bucket
    (an ``s3://`` output; with a local one the folders are the shared ones: nothing to do)."""
    from tokumei.infra.worklayer import synced

    needs = WORK_NEEDS.get(task, ("work", "staging"))
    with synced(settings, run_id, task, needs, partition, upload=push):
        yield


def _start_on_bucket(settings: Any, the_day: str) -> str:
    """``start`` with an ``s3://`` output: the run's lock is the bucket's ``_run.lock`` (its
    tasks run on workers that share no disk), the bucket's leftovers of dead runs go, and the
    start record is pushed for the next tasks."""
    from tokumei.infra import runlock, worklayer
    from tokumei.pipeline import steps

    assert settings.out_url
    run_id = steps.new_run_id(the_day)
    runlock.acquire_url(settings.out_url, run_id, in_airflow=True)
    try:
        if dead := worklayer.remove_dead_remote(settings, run_id):
            log.warning("removed the bucket's work layer and staging of %d dead run(s)", dead)
        # Holding the bucket's lock, a local lock of another Airflow run on this worker is a
        # killed run's: its scratch would keep it "alive" (runlock.stale_reason).
        held = runlock.read(settings.out)
        if held and held.get("run_id") != run_id and held.get("mode") == "airflow":
            runlock.release(settings.out, str(held["run_id"]))
        steps.start(settings, the_day, in_airflow=True, run_id=run_id)
        # cleanup may run on another worker: the local lock must not outlive this task
        runlock.release(settings.out, run_id)
        worklayer.push(settings, run_id)
    except BaseException:
        with contextlib.suppress(Exception):
            worklayer.remove_remote(settings, run_id)
        runlock.release_url(settings.out_url, run_id)
        raise
    return run_id


def _stage_ingest_file(settings: Any, run_id: str, file: int) -> str | None:
    """This worker's own verified copy of the landing file an ``ingest`` task reads (raw data
    never goes to the bucket's work layer; ``extract`` may have run elsewhere); its name."""
    from tokumei.infra.worklayer import stage_landing_file

    record = settings.out / "_work" / run_id / "steps" / "extract-dims.json"
    files = json.loads(record.read_text())["files"]
    if not (0 <= file < len(files) and files[file]["name"]):
        return None  # steps.ingest explains a wrong index; an empty source-day has no file
    name = str(files[file]["name"])
    stage_landing_file(settings, run_id, name, files[file].get("sha256"))
    return name


# --------------------------------------------------------------------------------------------
# usage_analytics: task bodies (one step each; only run ids and small dicts go through XCom)


def start() -> str:
    """Setup task: check key and policy, take the output's lock; create the run's private
    work directory."""
    from tokumei.pipeline import steps

    settings, the_day = _settings(), day()
    if settings.out_url:
        return _start_on_bucket(settings, the_day)
    return steps.start(settings, the_day, in_airflow=True)


def extract(tokumei_run: str) -> list[int]:
    """The run's pseudonymous dimensions; returns the landing files' indices for ``ingest``
    (XCom carries only numbers)."""
    from tokumei.pipeline import steps

    settings = _settings()
    try:
        with _synced(settings, tokumei_run, "extract"):
            # with the input suite's record
            record = steps.extract_step(settings, day(), tokumei_run, in_airflow=True)
    finally:
        if settings.out_url and settings.landing_url:  # raw: not left on this worker
            from tokumei.infra.worklayer import drop_landing

            drop_landing(settings, tokumei_run)
    return list(range(len(record["files"])))


def ingest(tokumei_run: str, file: int) -> int:
    """One landing file → generalized, pseudonymous rows (one mapped task per file)."""
    from tokumei.pipeline import steps

    settings = _settings()
    name = None
    try:
        with _synced(settings, tokumei_run, "ingest"):
            if settings.out_url and settings.landing_url:
                name = _stage_ingest_file(settings, tokumei_run, file)
            steps.ingest(settings, day(), tokumei_run, file, in_airflow=True)
    finally:
        if name is not None:  # raw: not left on this worker
            from tokumei.infra.worklayer import drop_landing

            drop_landing(settings, tokumei_run, name)
    return file


def check_inputs(tokumei_run: str) -> list[int]:
    """The input expectations over every file; returns the partitions to fan out over
    (TOKUMEI_PARTITIONS)."""
    from tokumei.pipeline import steps

    settings = _settings()
    with _synced(settings, tokumei_run, "check_inputs"):
        steps.check_inputs_step(settings, day(), tokumei_run)
    return steps.partitions_of(settings)


def scrub(tokumei_run: str, partition: int) -> int:
    from tokumei.pipeline import steps

    settings = _settings()
    with _synced(settings, tokumei_run, "scrub", partition):
        steps.scrub(settings, day(), tokumei_run, partition)
    return partition


def stats_map(tokumei_run: str, partition: int) -> int:
    from tokumei.pipeline import steps

    settings = _settings()
    with _synced(settings, tokumei_run, "stats_map", partition):
        steps.stats_map(settings, day(), tokumei_run, partition)
    return partition


def stats_reduce(tokumei_run: str) -> str:
    from tokumei.pipeline import steps

    settings = _settings()
    with _synced(settings, tokumei_run, "stats_reduce"):
        steps.stats_reduce(settings, day(), tokumei_run)
    return tokumei_run


def anonymize_records(tokumei_run: str) -> str:
    from tokumei.pipeline import steps

    settings = _settings()
    with _synced(settings, tokumei_run, "anonymize_records"):
        steps.anonymize_records(settings, day(), tokumei_run)
    return tokumei_run


def validate(tokumei_run: str) -> str:
    from tokumei.pipeline import steps

    settings = _settings()
    with _synced(settings, tokumei_run, "validate"):
        steps.validate(settings, day(), tokumei_run)
    return tokumei_run


def publish(tokumei_run: str) -> list[str]:
    """Publish the release, then emit one Asset event per published table (see below)."""
    from tokumei.pipeline import steps

    the_day = day()
    settings = _settings()
    # nothing to push: what publish writes goes to the output, and cleanup follows
    with _synced(settings, tokumei_run, "publish", push=False):
        result = steps.publish(settings, the_day, tokumei_run)
    emit_published_assets(
        get_current_context()["outlet_events"],
        result["tables"],
        the_day,
        result["delta_release"],
    )
    return result["tables"]


def cleanup(tokumei_run: str) -> None:
    """Teardown: delete the run's work layer (raw data) and staging, whatever happened; with
    an ``s3://`` output also the bucket's copies, then the bucket's run lock."""
    from tokumei.pipeline import steps

    steps.cleanup(_settings(), day(), tokumei_run)


# --------------------------------------------------------------------------------------------
# Assets: one event per published table and date

#: ``publish`` declares this alias as its outlet and attaches one event per table it actually
#: published: which tables a day publishes is only known at run time (weekly tables on a
#: week's Sunday, monthly ones on a month's last day), and a statically declared outlet gets
#: an event on every successful run, published or not.
PUBLISHED_ALIAS = AssetAlias("tokumei_published")

_PUBLISHED_NAME = re.compile(r"^(?P<kind>stats|anonymized)/(?P<table>[A-Za-z0-9_]+)$")


def table_asset(kind: str, table: str) -> Asset:
    """The Asset of one published table (all dates; the date is in each event's ``extra``).

    A downstream DAG schedules on it with ``schedule=[table_asset("stats", "page_views")]`` or
    ``Asset.ref(name="tokumei.stats.page_views")`` and reads the date from
    ``triggering_asset_events``. The ``x-tokumei`` URI names the table, not a location, so it
    is the same for a folder and an ``s3://`` output (Airflow leaves ``x-`` schemes as written).
    """
    return Asset(
        name=f"tokumei.{kind}.{table}",
        uri=f"x-tokumei://published/{kind}/{table}",
        group="tokumei",
    )


def emit_published_assets(outlet_events: Any, tables: Iterable[str], day: str, release: int) -> int:
    """Attach one Asset event per published table to the ``publish`` task's alias outlet.

    ``tables`` are the ``<kind>/<table>`` names the release published. ``extra`` carries the
    date, the Delta table's path relative to the output root and the release number
    (docs/adr/0008-published-tables-delta-lake.md: read the table at the version the marker
    names for that release), and the run's day: enough for a consumer to read exactly the new
    rows; no data value and no tokumei run id (the OpenLineage provider copies event extras
    into its events, which name datasets and dates only; the day's manifest has the run id).
    Returns the number of events.
    """
    accessor = outlet_events[PUBLISHED_ALIAS]
    names = [m for name in dict.fromkeys(tables) if (m := _PUBLISHED_NAME.match(name))]
    for m in names:
        accessor.add(
            table_asset(m["kind"], m["table"]),
            extra={
                "date": day,
                "path": f"published/delta/{m['kind']}/{m['table']}",
                "release": release,
                "run_day": day,
            },
        )
    return len(names)


# --------------------------------------------------------------------------------------------
# Lineage: what each task reads and writes, by dataset (never a value)

#: Datasets read and written per task, as ``x-tokumei://`` paths (tokumei/pipeline/lineage.py):
#: layers and tables, not files or runs. The OpenLineage provider reports a task's inlets as
#: its input datasets and its outlets as its outputs; the converter registered for
#: ``x-tokumei`` resolves them to the worker's storage locations. ``plan`` only counts
#: partitions and reads nothing. The tables ``publish`` writes are known only at run time
#: (weekly on a week's Sunday, monthly on a month's last day): they reach OpenLineage as the
#: alias events it emits (``published/<kind>/<table>``). Outlets are Assets, so Airflow also
#: records one Asset event per successful task and work layer (no ``extra``, no data);
#: ``retention`` and ``rights_requests`` declare inlets only, as an hourly event on the landing
#: would tell a downstream DAG nothing.
LANDING_DATASETS = ("events", "devices", "measurements", "cookies")  # policy.LANDING_SOURCES
PERSON_DATASETS = ("events", "measurements")  # read one file per ingest task
DIMENSION_DATASETS = ("devices", "cookies")  # read by extract into the rights dimensions
DB_DATASETS = ("users", "consents", "rights_requests")  # policy.DB_TABLES
_STAGED = ("staging/stats", "staging/anonymized", "staging/retained")
LINEAGE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "start": (("policy",), ()),
    "landing_complete": (tuple(f"landing/{s}" for s in LANDING_DATASETS), ()),
    "extract": (
        (*(f"landing/{s}" for s in LANDING_DATASETS), *(f"opsdb/{t}" for t in DB_DATASETS)),
        ("work/dims", "work/generalized", *(f"quarantine/{s}" for s in DIMENSION_DATASETS)),
    ),
    "ingest": (
        (*(f"landing/{s}" for s in PERSON_DATASETS), "work/dims"),
        ("work/generalized", *(f"quarantine/{s}" for s in PERSON_DATASETS)),
    ),
    "check_inputs": (("work/generalized",), ()),
    "scrub": (("work/generalized",), ("work/scrubbed",)),
    "stats_map": (("work/generalized", "work/scrubbed"), ("work/stats_map", "staging/retained")),
    "stats_reduce": (
        ("work/stats_map", "retained/activity", "retained/purchases"),
        ("staging/stats",),
    ),
    "anonymize_records": (
        ("work/generalized", "work/scrubbed", "staging/stats"),
        ("work/anonymized",),
    ),
    "validate": (("staging/stats", "work/anonymized"), ("staging/anonymized",)),
    "publish": (_STAGED, ("retained/activity", "retained/purchases")),
    "cleanup": (("work", "staging"), ()),
    "apply_retention": ((*(f"landing/{s}" for s in LANDING_DATASETS), "quarantine"), ()),
    "apply_rights_requests": (("opsdb/rights_requests",), ()),
}


def dataset_asset(path: str) -> Asset:
    """The Asset of one logical dataset, e.g. ``work/pseudo`` → ``x-tokumei://work/pseudo``.

    The URI names the dataset, not its location (which the DAG processor does not need to
    know), so it can carry no path, credential or run id; published tables keep the
    ``tokumei.<kind>.<table>`` names of :func:`table_asset`.
    """
    kind, _, rest = path.partition("/")
    if kind == "published" and rest.count("/") == 1:
        return table_asset(*rest.split("/"))
    return Asset(
        name="tokumei." + path.replace("/", "."), uri=f"x-tokumei://{path}", group="tokumei"
    )


def lineage(task_id: str) -> tuple[list[Asset], list[Asset]]:
    """The inlets and outlets of a task (empty for a task that reads and writes nothing)."""
    inputs, outputs = LINEAGE.get(task_id, ((), ()))
    return [dataset_asset(p) for p in inputs], [dataset_asset(p) for p in outputs]


# --------------------------------------------------------------------------------------------
# Landing completeness: wait for every source-day before extract


def landing_wait() -> timedelta:
    """How long ``landing_complete`` waits in total: ``TOKUMEI_LANDING_WAIT_MINUTES``, default
    360 (the producers' delivery window); 0 checks once and fails at once when incomplete
    (useful for backfills of old days, whose landing will not change any more)."""
    return timedelta(minutes=_positive_int("TOKUMEI_LANDING_WAIT_MINUTES", 360, minimum=0))


class LandingCompleteSensor(BaseSensorOperator):
    """Waits until every landing source of the day is complete (docs/landing.md).

    Reschedule mode: between pokes the task gives its worker slot back. A poke is
    ``tokumei.ingest.landing.check_day`` per source: cheap while a producer has not written
    its marker (the only thing worth waiting for), a read of the day's files once it has. On an
    ``s3://`` landing it is ``check_day_url``: one listing and the marker per source, never a
    download of data (sizes are checked here, checksums by ``extract`` on its verified copy).
    So a deferrable trigger would add a triggerer dependency for no gain. Two ways to fail,
    both without retry and naming the day and, per source, the reason the check gave (file
    names relative to the landing, never data values):

    * the wait (``TOKUMEI_LANDING_WAIT_MINUTES``) runs out while a marker or folder is missing;
    * at once, when a producer *has* written its marker but the day does not match it (a file
      missing, unlisted or changed, a broken marker, an empty day, a link out of the landing):
      waiting cannot fix a finished delivery, and re-reading it every poke would only cost I/O.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", timedelta(minutes=5))
        kwargs.setdefault("timeout", landing_wait())
        super().__init__(**kwargs)
        self._pending: dict[str, str] = {}
        self._day = ""

    def poke(self, context: Any) -> bool:
        from tokumei.ingest.landing import Problem, check_day, check_day_url

        settings = _settings()
        self._day = day()
        if getattr(settings, "allow_incomplete", False):
            # TOKUMEI_ALLOW_INCOMPLETE: extract runs the day anyway and marks it partial
            log.warning(
                "landing_complete: not waiting for %s (TOKUMEI_ALLOW_INCOMPLETE); extract "
                "checks the markers",
                self._day,
            )
            return True
        if settings.landing_url:  # one s3fs client per poke, no listing cache (objectstore)
            from tokumei.infra.objectstore import filesystem

            fs = filesystem()
        self._pending = {}
        broken: dict[str, str] = {}
        for source in landing_sources(settings):
            if settings.landing_url:
                status = check_day_url(settings.landing_url, source, self._day, fs)
            else:
                status = check_day(settings.landing, source, self._day)
            if status.complete:
                continue
            reason = status.reason or "incomplete"
            if status.problem in (Problem.NO_FOLDER, Problem.NO_MARKER):
                self._pending[source] = reason
            else:
                broken[source] = reason
        if broken:
            raise AirflowFailException(
                f"landing for {self._day} was delivered but does not match its marker: "
                + "; ".join(f"{s}: {r}" for s, r in sorted(broken.items()))
                + "; nothing was extracted. The producer must deliver the day again (withdraw "
                "the marker, rewrite, write the marker: docs/landing.md), then clear the run"
            )
        if self._pending:
            log.info(
                "landing for %s not complete yet: %s",
                self._day,
                "; ".join(f"{s}: {r}" for s, r in sorted(self._pending.items())),
            )
        return not self._pending

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            waited = timedelta(seconds=int(self.timeout))
            reasons = "; ".join(f"{s}: {r}" for s, r in sorted(self._pending.items()))
            raise AirflowSensorTimeout(
                f"landing for {self._day} still incomplete after waiting {waited} "
                f"(TOKUMEI_LANDING_WAIT_MINUTES): {reasons or 'no source reported'}; nothing was "
                "extracted. Have the producer finish the day (docs/landing.md), then clear the run"
            ) from None


def landing_sources(settings: Any) -> list[str]:
    """The sources read from the landing zone (the policy's ``sources``; DB tables are not)."""
    from tokumei.anonymize.policy import load_policy

    return sorted(load_policy(settings.policy_dir).sources)


# --------------------------------------------------------------------------------------------
# Failure notifier


def failure_alert(context: Any) -> dict[str, Any]:
    """The value-free facts of a failed DAG run: DAG, run, failed task, Airflow's reason.

    Only identifiers Airflow made (ids, dates, try number, the log URL) and the failure reason
    Airflow gives (``task_failure``, ``all_tasks_deadlocked``, a timeout): never an exception
    message, which could quote a value, and never a parameter or XCom.
    """
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    dag_id = getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", None) or "unknown"
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None) or "unknown"
    logical = getattr(dag_run, "logical_date", None) or context.get("logical_date")
    alert: dict[str, Any] = {
        "dag_id": str(dag_id),
        "run_id": str(run_id),
        "logical_date": logical.isoformat() if hasattr(logical, "isoformat") else None,
        "task_id": str(getattr(ti, "task_id", None) or "unknown"),
        "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None),
        "reason": str(context.get("reason") or "task_failure"),
        "log_url": getattr(ti, "log_url", None),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if alert["map_index"] is None or alert["map_index"] < 0:
        alert.pop("map_index")
    return alert


def alert_text(alert: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of an alert."""
    task = alert["task_id"] + (f"[{alert['map_index']}]" if "map_index" in alert else "")
    subject = f"[tokumei] {alert['dag_id']} failed at {task} ({alert['run_id']})"
    lines = [
        f"DAG:     {alert['dag_id']}",
        f"run:     {alert['run_id']}",
        f"date:    {alert['logical_date'] or '-'}",
        f"task:    {task} (try {alert['try_number'] or '-'})",
        f"reason:  {alert['reason']}",
        f"log:     {alert['log_url'] or '-'}",
        "",
        "Nothing was published for this run. The task log names the step, the file or table and",
        "the cause; fix it and clear the run (docs/deploy.md, 'When a run fails').",
    ]
    return subject, "\n".join(lines)


class FailureNotifier(BaseNotifier):
    """Sends one alert per failed DAG run by e-mail (SMTP) and/or to a webhook.

    Configured from the environment of the process that runs DAG callbacks (the dag-processor;
    ``dag.test()`` runs them in-process), read when a run fails, so changing a recipient needs
    no DAG change:

    * ``TOKUMEI_ALERT_EMAIL_TO`` (comma-separated) — sent through the Airflow SMTP connection
      ``TOKUMEI_ALERT_SMTP_CONN_ID`` (default ``smtp_default``) with the provider's ``SmtpHook``,
      so server, TLS and credentials stay in Airflow's connection store.
    * ``TOKUMEI_ALERT_WEBHOOK_CONN_ID`` — an Airflow connection whose ``host`` (or extra ``url``)
      is the webhook URL (it often embeds a token, hence a connection, not a variable); gets a
      JSON POST ``{"text": ..., **alert}`` (Slack-compatible ``text``). Standard library
      ``urllib``: one POST does not justify an HTTP provider.

    A channel that fails raises (Airflow logs it as a failed callback); with no channel set the
    notifier logs a warning.
    """

    def __init__(
        self,
        *,
        email_to: str | None = None,
        smtp_conn_id: str | None = None,
        webhook_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.email_to = email_to
        self.smtp_conn_id = smtp_conn_id
        self.webhook_conn_id = webhook_conn_id

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render: the message is built from the context's ids, never templated.

        Skipping Jinja also keeps the notifier working under ``dag.test()``, which (Airflow
        3.3.2) passes a ``SerializedDAG`` without ``get_template_env`` as the context's DAG.
        """

    def notify(self, context: Any) -> None:
        alert = failure_alert(context)
        subject, body = alert_text(alert)
        to = self.email_to or os.environ.get("TOKUMEI_ALERT_EMAIL_TO", "")
        recipients = [a.strip() for a in to.split(",") if a.strip()]
        webhook = self.webhook_conn_id or os.environ.get("TOKUMEI_ALERT_WEBHOOK_CONN_ID")
        if not recipients and not webhook:
            log.warning(
                "%s: no alert channel configured (TOKUMEI_ALERT_EMAIL_TO, "
                "TOKUMEI_ALERT_WEBHOOK_CONN_ID)",
                subject,
            )
            return
        if recipients:
            self._send_email(recipients, subject, body)
        if webhook:
            self._post_webhook(webhook, {"text": f"{subject}\n{body}", **alert})

    def _send_email(self, recipients: list[str], subject: str, body: str) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        conn_id = self.smtp_conn_id or os.environ.get("TOKUMEI_ALERT_SMTP_CONN_ID", "smtp_default")
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(
                to=recipients,
                subject=subject,
                html_content=f"<pre>{html.escape(body)}</pre>",
                from_email=os.environ.get("TOKUMEI_ALERT_EMAIL_FROM") or hook.from_email,
            )

    def _post_webhook(self, conn_id: str, payload: dict[str, Any]) -> None:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        url = conn.extra_dejson.get("url") or conn.host
        if not url or not str(url).startswith(("http://", "https://")):
            raise ValueError(f"connection {conn_id!r}: host or extra 'url' must be an http(s) URL")
        request = urllib.request.Request(
            str(url),
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - http(s) only
            if response.status >= 300:
                raise RuntimeError(f"webhook {conn_id!r} answered HTTP {response.status}")


# --------------------------------------------------------------------------------------------
# retention and rights_requests: task bodies


def apply_retention(ctx: Any) -> dict:
    """Idempotent (a rerun finds nothing left to delete), so retries are safe. ``ctx`` is the
    task's context (``params``, ``ds``), passed in by the DAG so tests can hand one in."""
    from datetime import date

    from tokumei.infra.settings import Settings, check_day
    from tokumei.jobs.retention import activity_days_from_env, days_from_env
    from tokumei.jobs.retention import apply_retention as sweep

    settings = Settings.from_env()
    landing_days, quarantine_days = days_from_env()
    the_day = check_day(ctx["params"].get("today") or ctx["ds"])
    report = sweep(
        settings.landing_url or settings.landing,  # an s3:// landing is swept by key
        settings.out,
        today=date.fromisoformat(the_day),
        landing_days=landing_days,
        quarantine_days=quarantine_days,
        activity_days=activity_days_from_env(),
        dry_run=bool(ctx["params"].get("dry_run")),
        out_url=settings.out_url,
    )
    return report.to_dict()


def apply_rights_requests(ctx: Any) -> dict:
    """Idempotent (applied requests are in the audit log and never applied twice), so
    retries are safe; an interrupted run leaves no audit entry and is simply redone. ``ctx``
    is the task's context (``params``), passed in by the DAG."""
    from tokumei.anonymize.policy import load_policy
    from tokumei.infra.secrets import pseudonym_key
    from tokumei.infra.settings import Settings
    from tokumei.jobs.rights_erasure import apply_rights_requests as apply

    params = ctx["params"]
    settings = Settings.from_env()
    # The retained activity layer holds persons by pseudonym only: finding them needs the
    # key (from the secret store; it never goes into XCom or the log).
    has_retained = (settings.out / "retained").is_dir()
    key = pseudonym_key(in_airflow=True) if has_retained else None
    report = apply(
        settings.landing_url or settings.landing,  # s3:// objects are rewritten via copies
        settings.out,
        settings.db_url,
        load_policy(settings.policy_dir),
        now=datetime.now(UTC),
        dry_run=bool(params.get("dry_run")),
        max_requests=int(params.get("max_requests") or 1000),
        key=key,
        out_url=settings.out_url,
    )
    return report.to_dict()
