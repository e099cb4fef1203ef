"""Crash safety and idempotency of a run (in-process; the SIGKILL tests use real processes).

A failure injected in any step leaves nothing partial under ``published/``: the release readers
get through the Delta release marker is, as a whole, either the previous complete release or the
new complete release — never a mix of old and new tables (a reader joining two tables of one date
must see one release), and never a subset of the new tables. ``_work/`` and ``_staging/`` are empty afterwards, a value-free failure
record exists, and a rerun in the same out dir succeeds with output identical to a clean run.

Most injections run in an out dir that already holds a *different* previous complete release of
the same date, so that a mix of old and new tables would be visible; the mid-publish crash also runs in a fresh out dir, where "old" means
"nothing published".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import DAY, PLANTED, TEST_KEY, all_text_under, write_handmade_landing

from tokumei.infra import storage
from tokumei.infra.errors import TokumeiError
from tokumei.infra.settings import Settings
from tokumei.pipeline import steps

pytestmark = pytest.mark.slow

Release = dict[str, pl.DataFrame]


class Injected(RuntimeError):
    """The failure the tests inject (an unexpected error, like a crash in library code)."""


def _settings(landing: Path, out: Path) -> Settings:
    return Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out).resolved()


def _release(out: Path) -> Release:
    """Every table of the newest Delta release of the out dir, read at the versions the
    release marker names (docs/adr/0008-published-tables-delta-lake.md), rows sorted."""
    from tokumei.infra import tableformat

    pub = out / "published"
    release = tableformat.current_release(pub) if pub.exists() else None
    if release is None:
        return {}
    frames = {name: tableformat.read_table(pub, name, release) for name in release.versions}
    return {
        name: frame.sort(frame.columns, nulls_last=True)
        for name, frame in sorted(frames.items())
        if frame is not None
    }


def _same(a: Release, b: Release) -> bool:
    return a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def _describe(state: Release, old: Release, new: Release) -> str:
    rows = []
    for k in sorted(state.keys() | old.keys() | new.keys()):
        s = state.get(k)
        tag = (
            "missing"
            if s is None
            else "old"
            if k in old and s.equals(old[k])
            else "new"
            if k in new and s.equals(new[k])
            else "other"
        )
        rows.append(f"{k}: {tag}")
    return "; ".join(rows)


@pytest.fixture(scope="module")
def keyed() -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_handmade_landing(tmp_path_factory.mktemp("crash") / "landing")


@pytest.fixture(scope="module")
def ref_out(tmp_path_factory: pytest.TempPathFactory, landing: Path, keyed: Any) -> Path:
    """The out dir of one clean run on the hand-written landing."""
    out = tmp_path_factory.mktemp("reference") / "out"
    steps.run_all(_settings(landing, out), DAY)
    return out


@pytest.fixture(scope="module")
def reference(ref_out: Path) -> Release:
    """The release of that run."""
    release = _release(ref_out)
    assert any(k.startswith("stats/") for k in release)
    assert any(k.startswith("anonymized/") for k in release)
    return release


@pytest.fixture(scope="module")
def old_out(tmp_path_factory: pytest.TempPathFactory, reference: Release, ref_out: Path) -> Path:
    """An out dir holding a previous, complete release of the same date in which every table
    differs from the new one (the reference with its last row dropped, or a row of nulls added to an empty table: cheaper than a second
    pipeline run, and any mix of old and new tables shows)."""
    from tokumei.infra.tableformat import publish_release

    root = tmp_path_factory.mktemp("old")
    out = root / "out"
    shutil.copytree(ref_out / "reports", out / "reports", ignore=shutil.ignore_patterns("failed"))
    staged = {}
    for name, df in reference.items():
        path = root / "stage" / name / "part-0.parquet"
        path.parent.mkdir(parents=True)
        nulls = pl.DataFrame({c: [None] for c in df.columns}, schema=df.schema)
        (df.head(df.height - 1) if df.height else nulls).write_parquet(path)
        staged[name] = path
    publish_release(out / "published", staged, DAY, "old-run")
    old = _release(out)
    assert old.keys() == reference.keys()
    assert not any(old[k].equals(reference[k]) for k in old)
    return out


def _seed(out: Path, old_out: Path | None) -> Release:
    """Copy the previous release into ``out`` (or leave it fresh); return the old release."""
    if old_out is None:
        return {}
    for sub in ("published", "reports"):
        shutil.copytree(old_out / sub, out / sub)
    return _release(out)


def _fail_after(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fn(*args, **kwargs)
        raise Injected("injected after the step ran")

    return wrapper


def _fail_before(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raise Injected("injected before the step ran")

    return wrapper


def _inject_step(mp: pytest.MonkeyPatch, name: str, how: Callable) -> None:
    assert name in dict(steps.STEPS)
    mp.setattr(steps, "STEPS", tuple((n, how(f) if n == name else f) for n, f in steps.STEPS))


def _inject_swap(mp: pytest.MonkeyPatch, fail_on: int) -> None:
    """``_swap_dir`` raises on its ``fail_on``-th call: between two partition swaps of publish."""
    real, calls = storage._swap_dir, []

    def swap(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == fail_on:
            raise Injected("injected between two swaps")
        return real(*args, **kwargs)

    mp.setattr(storage, "_swap_dir", swap)


def _inject_catalog(mp: pytest.MonkeyPatch) -> None:
    """The catalog build dies after it opened (and half wrote) its database file."""
    import duckdb

    real = duckdb.connect

    class Dying:
        def __init__(self, con: Any) -> None:
            self.con = con

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            self.con.execute(*args, **kwargs)
            raise Injected("injected inside build_catalog")

        def close(self) -> None:
            self.con.close()

    def connect(database: Any = ":memory:", *args: Any, **kwargs: Any) -> Any:
        con = real(database, *args, **kwargs)
        return Dying(con) if str(database).endswith("catalog.duckdb.tmp") else con

    mp.setattr(duckdb, "connect", connect)


def _check_after_failure(
    out: Path, old: Release, new: Release, want: str | None, step: str
) -> None:
    state = _release(out)
    is_old, is_new = _same(state, old), _same(state, new)
    assert is_old or is_new, "published/ mixes releases: " + _describe(state, old, new)
    if want == "old":
        assert is_old, _describe(state, old, new)
    pub = out / "published"
    if pub.exists():
        leftovers = [
            str(p.relative_to(pub))
            for p in pub.rglob("*")
            if p.name.endswith((".tmp", ".old")) or p.name.startswith(".")
        ]
        assert not leftovers, leftovers
    for d in ("_work", "_staging"):
        assert not (out / d).exists() or not any((out / d).iterdir()), d
    failed = list((out / "reports" / f"date={DAY}" / "failed").glob("*.json"))
    assert len(failed) == 1
    rec = json.loads(failed[0].read_text())
    assert rec["status"] == "failed" and rec["reason"].startswith(f"{step}:"), rec["reason"]
    needles = [*PLANTED.values(), TEST_KEY]
    for path, text in all_text_under(out / "reports", pub if pub.exists() else out / "reports"):
        for needle in needles:
            assert needle not in text, f"{needle!r} leaked into {path}"


def _rerun_matches(settings: Settings, new: Release) -> None:
    steps.run_all(settings, DAY)
    state = _release(settings.out)
    assert _same(state, new), _describe(state, {}, new)
    assert (settings.out / "published" / "catalog.duckdb").exists()


#: Reruns cost a full run (~10 s of GX each), so only these cases rerun; between them they cover
#: a failure before any output is staged, after everything is staged and validated, and each
#: way publish can fail. The state every other case leaves is checked to be the same.
RERUN = {"extract", "validate", "swap", "catalog", "publish", "killed"}
CASES = [
    *[
        pytest.param("after", name, "old", name in RERUN, id=f"after-{name}")
        for name, _ in steps.STEPS
    ],
    pytest.param("before", "publish", "old", False, id="before-publish"),
    pytest.param("marker", None, "old", True, id="before-the-release-marker"),
    pytest.param("marker", None, "fresh", False, id="before-the-release-marker-fresh"),
    pytest.param("swap", 2, "old", True, id="mid-publish-swap"),
    pytest.param("swap", 2, "fresh", True, id="mid-publish-swap-fresh"),
    pytest.param("catalog", None, "old", True, id="inside-build_catalog"),
]


def _inject_marker(mp: pytest.MonkeyPatch) -> None:
    """Every table is committed, the release marker's commit (the readers' commit point) fails."""
    from tokumei.infra import tableformat

    def fail(*args: Any, **kwargs: Any) -> None:
        raise Injected("injected before the marker commit")

    mp.setattr(tableformat, "_append_marker", fail)


@pytest.mark.parametrize(("kind", "where", "seed", "rerun"), CASES)
def test_failure_leaves_one_whole_release_and_rerun_recovers(
    kind: str,
    where: Any,
    seed: str,
    rerun: bool,
    landing: Path,
    reference: Release,
    old_out: Path,
    tmp_path: Path,
    keyed: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    old = _seed(out, old_out if seed == "old" else None)
    settings = _settings(landing, out)
    with monkeypatch.context() as mp:
        if kind == "after":
            _inject_step(mp, where, _fail_after)
        elif kind == "before":
            _inject_step(mp, where, _fail_before)
        elif kind == "swap":
            _inject_swap(mp, where)
        elif kind == "marker":
            _inject_marker(mp)
        else:
            _inject_catalog(mp)
        with pytest.raises(TokumeiError):
            steps.run_all(settings, DAY)
    # Failures before the release marker's commit must leave the previous release untouched;
    # a failure after it (the swaps of the reports and retained days, the catalog, or after
    # publish returned) may leave the new release, as long as it is complete.
    before_swaps = kind in ("before", "marker") or (kind == "after" and where != "publish")
    step = where if kind in ("after", "before") else "publish"
    _check_after_failure(out, old, reference, "old" if before_swaps else None, step)
    if rerun:
        _rerun_matches(settings, reference)


class Killed(BaseException):
    """The process dies: no ``except`` clause of ours gets to clean up."""


def test_publish_killed_between_swaps_is_rolled_back_by_the_next_publish(
    landing: Path,
    reference: Release,
    old_out: Path,
    tmp_path: Path,
    keyed: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the process dies between two swaps (of the reports and retained days, after the
    tables' release), in-process rollback cannot run: the journal stays until the next
    publish, which rolls it back and then publishes. Readers of the tables already see the
    new release whole: its marker committed before the swaps."""
    out = tmp_path / "out"
    old = _seed(out, old_out)
    settings = _settings(landing, out)
    with monkeypatch.context() as mp:
        _inject_swap(mp, 3)

        def die(*args: Any) -> None:
            raise Killed

        mp.setattr(storage, "_roll_back", die)
        with pytest.raises(TokumeiError):
            steps.run_all(settings, DAY)
    pub = out / "published"
    assert (pub / storage.PUBLISHING).exists()
    state = _release(out)
    assert _same(state, reference) and not _same(state, old), _describe(state, old, reference)
    # the next publish recovers (the killed run's staging is gone: the new items are dropped)
    _rerun_matches(settings, reference)
    assert not (pub / storage.PUBLISHING).exists() and not (pub / storage.TRASH).exists()


def test_failure_inside_start_leaves_no_work_dir(
    landing: Path,
    reference: Release,
    old_out: Path,
    tmp_path: Path,
    keyed: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    old = _seed(out, old_out)
    settings = _settings(landing, out)
    with monkeypatch.context() as mp:
        mp.setattr(steps, "start", _fail_after(steps.start))
        with pytest.raises(TokumeiError):
            steps.run_all(settings, DAY)
    _check_after_failure(out, old, reference, "old", "start")


def test_start_failure_writes_nothing(
    landing: Path, old_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that cannot start (no key) writes nothing at all, not even a failure record."""
    out = tmp_path / "out"
    old = _seed(out, old_out)
    monkeypatch.delenv("TOKUMEI_PSEUDONYM_KEY", raising=False)
    with pytest.raises(TokumeiError):
        steps.run_all(_settings(landing, out), DAY)
    assert _same(_release(out), old)
    assert not (out / "_work").exists() and not (out / "_staging").exists()


def test_two_runs_of_one_date_are_identical(
    landing: Path, ref_out: Path, reference: Release, keyed: Any
) -> None:
    """The reference run's out dir gets a second run of the same date."""
    settings = _settings(landing, ref_out)
    first = reference
    manifest1 = json.loads((settings.out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    steps.run_all(settings, DAY)
    second = _release(settings.out)
    manifest2 = json.loads((settings.out / "reports" / f"date={DAY}" / "manifest.json").read_text())
    assert _same(first, second) and _same(second, reference), _describe(second, first, reference)
    assert "anonymized/page_views" in second
    assert manifest1["sources"] == manifest2["sources"]
    assert manifest1["outputs"] == manifest2["outputs"]
    assert manifest1["run_id"] != manifest2["run_id"]


# --------------------------------------------------------------------------------------------
# SIGKILL of a real process: no child survives, the next run cleans up (issue 17)


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc; zombies count as gone)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if state != "Z":
            parents.setdefault(int(ppid), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _wait_for(what: Callable[[], Any], seconds: float, message: str) -> Any:
    """Poll until ``what()`` is truthy; a generous bound only so that a hang fails the test."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = what()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(message)


TREE = """
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from tokumei.infra.processes import die_with_parent


def step() -> None:
    # like the scrub step's NER pool: a forked grandchild blocked for a long time
    child = mp.get_context("fork").Process(target=time.sleep, args=(600,))
    child.start()
    print(os.getpid(), child.pid, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    guarded = sys.argv[1] == "guarded"
    with ProcessPoolExecutor(
        1,
        mp_context=mp.get_context("spawn"),
        initializer=die_with_parent if guarded else None,
        initargs=(os.getpid(),) if guarded else (),
    ) as pool:
        pool.submit(step).result()
"""


@pytest.mark.parametrize("mode", ["guarded", "unguarded"])
def test_step_processes_and_their_forks_die_with_the_parent(mode: str, tmp_path: Path) -> None:
    """The mechanism run_all uses, on a small tree: spawned step process + forked pool worker.
    Without the guard (today's code before issue 17) both outlive a SIGKILLed parent."""
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    parent = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        if mode == "guarded":
            _wait_for(lambda: not any(_alive(p) for p in pids), 60, "a child outlived its parent")
        else:
            time.sleep(1.0)
            assert all(_alive(p) for p in pids)
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_killed_tokumei_run_leaves_no_process_and_the_next_run_cleans_up(
    landing: Path,
    reference: Release,
    tmp_path: Path,
    keyed: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGKILL of ``tokumei run`` while a step runs in its own process: the step process dies
    with it; the next run takes over the dead run's lock, removes its work layer and staging
    (saying how many runs it removed, no values) and publishes the same release."""
    out = tmp_path / "out"
    env = {**os.environ, "TOKUMEI_PSEUDONYM_KEY": TEST_KEY}
    cmd = [sys.executable, "-m", "tokumei.cli", "run", "--landing", str(landing)]
    cmd += ["--out", str(out), "--date", DAY]
    run = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    seen: set[int] = set()
    try:

        def step_running() -> bool:
            seen.update(_descendants(run.pid))
            work = list((out / "_work").glob("*/dims"))
            return bool(work) and bool(seen)

        _wait_for(step_running, 300, "the run never reached a step process")
        seen.update(_descendants(run.pid))
        run.send_signal(signal.SIGKILL)
        run.wait()
        _wait_for(
            lambda: not any(_alive(p) for p in seen), 60, "a step process outlived tokumei run"
        )
    finally:
        for pid in seen:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            run.kill()
    assert list((out / "_work").iterdir())  # the killed run's raw work layer is left behind
    with caplog.at_level("WARNING", logger="tokumei"):
        steps.run_all(_settings(landing, out), DAY)
    assert "took over the lock of run" in caplog.text
    assert "removed the work layer and staging area of 1 dead run(s)" in caplog.text
    for d in ("_work", "_staging"):
        assert not (out / d).exists() or not any((out / d).iterdir()), d
    assert _same(_release(out), reference), _describe(_release(out), {}, reference)
