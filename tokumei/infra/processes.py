"""Step processes: reused while a day is small, dying with their parent (docs/architecture.md §2).

``tokumei run`` runs the steps in spawned step processes (:class:`StepProcess`, one per step
unless :func:`keep_step_process` keeps one for the next), and steps fork pools of their own (the
scrub step's NER workers). Killed with SIGKILL (by an operator or the OOM killer), the parent
gets no chance to stop them, and they would stay blocked on a pipe forever, holding memory and
raw values. Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) makes the kernel
kill a child when the thread that created it ends; it is set in every step process (the pool
initializer) and, through an at-fork hook, in every process those fork, so a kill cascades down
the tree. ``ctypes`` on libc's ``prctl`` because no maintained binding is installed and the call
is one line; elsewhere than Linux this is a no-op (the process group is then the only handle).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import current_process, get_context
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PR_SET_PDEATHSIG = 1
_hooked = False
_forking_pid = 0
# looked up once, in the parent: a forked child of a threaded process must not dlopen
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _set_pdeathsig() -> bool:
    return _prctl is not None and _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make the calling process die (SIGKILL) when its parent does; its forks likewise.

    ``parent_pid``: the parent this process was started by; if that parent already died before
    the signal was armed (the kernel would then never send it), exit at once.
    """
    if _set_pdeathsig() and parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    children_die_with_me()


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    if _set_pdeathsig() and os.getppid() != _forking_pid:
        os._exit(1)


def children_die_with_me() -> None:
    """Every process this one forks from now on (multiprocessing ``fork`` pools included)
    dies with it; the hook is inherited, so their forks die with them in turn."""
    global _hooked
    if _hooked:
        return
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    _hooked = True


# --- step processes reused while they stay small (docs/architecture.md §2) -------------------

#: A step process is kept for the next step only while the run's work directory (the day's data
#: as Parquet) is at most this many MiB ...
MAX_WORK_MB_ENV = "TOKUMEI_STEP_PROCESS_MAX_WORK_MB"
#: ... and the process's resident memory after the step at most this many MiB.
MAX_RSS_MB_ENV = "TOKUMEI_STEP_PROCESS_MAX_RSS_MB"
#: "0" turns off starting the next step's process ahead (:meth:`StepProcess.run`): one
#: process fewer alive at a time, for a host short of memory.
AHEAD_ENV = "TOKUMEI_STEP_PROCESS_AHEAD"
DEFAULT_MAX_WORK_MB = 64
DEFAULT_MAX_RSS_MB = 1536


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``); elsewhere its peak, which is never
    less, so the reuse rule errs towards a fresh process."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def tree_bytes(folder: Path, limit: int) -> int:
    """Bytes of the files under ``folder``, counted until they pass ``limit``."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed meanwhile
                total += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
            if total > limit:
                return total
    return total


def _mb(env: str, default: int) -> int:
    return int(os.environ.get(env, default)) * 2**20


def keep_step_process(rss: int, work: Path) -> bool:
    """Whether the step process that just finished a step runs the next one too.

    Why: a process per step keeps a big day's memory peak at its largest step's (allocator
    caches are not returned to the OS), but a fresh interpreter and its imports cost about a
    second per step, most of a small day's run. So a process is reused only while the day's
    data is small (its work directory under ``TOKUMEI_STEP_PROCESS_MAX_WORK_MB``, 64) and the
    process itself is (its resident memory after the step under
    ``TOKUMEI_STEP_PROCESS_MAX_RSS_MB``, 1536: models and libraries of earlier steps included).
    A day past either limit gets a fresh process for every following step, as before.
    """
    max_work = max_work_bytes()
    return rss <= _mb(MAX_RSS_MB_ENV, DEFAULT_MAX_RSS_MB) and tree_bytes(work, max_work) <= max_work


def max_work_bytes() -> int:
    """The reuse limit on a run's work directory (``TOKUMEI_STEP_PROCESS_MAX_WORK_MB``), in
    bytes; ``tokumei.pipeline.steps.landing_scale`` sizes a day's landing against it too."""
    return _mb(MAX_WORK_MB_ENV, DEFAULT_MAX_WORK_MB)


def may_start_processes() -> bool:
    """Whether this process may start children: a daemonic one (a task in a Celery prefork
    worker, as Airflow runs them) may not, so its step runs the work in threads instead."""
    return not current_process().daemon


def spawned_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes that die with this one (and what they fork with them),
    like a step process; for a step's own workers (``tokumei.pipeline.steps.ingest``)."""
    return ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_step_process_started,
        initargs=(os.getpid(),),
    )


def _step_process_started(parent_pid: int) -> None:
    """Initializer of a step process: it dies with its parent, and ends without tearing down
    its interpreter (see :func:`_exit_now`)."""
    die_with_parent(parent_pid)
    atexit.register(_exit_now)


def _exit_now() -> None:
    """The step process's last exit handler (registered first, so it runs after every other
    one): flush what is buffered and leave without the interpreter's teardown.

    Why: freeing every module and object of a process that loaded spaCy/GiNZA, GX and SciPy took
    0.9-1.0 s of a 500-person day's 15 s (bench/results/small_day.md), and nothing in it is
    needed: a step process is shut down only between steps, when its step has returned and
    every file it wrote is closed; the pool learns nothing from its exit status.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _import_all(modules: tuple[str, ...]) -> None:
    """Import each of ``modules``; ``"module:function"`` also calls the function (a warm-up
    such as GX's first validation, ``tokumei.expectations.runner.warm_up``)."""
    for item in modules:
        module, _, function = item.partition(":")
        imported = importlib.import_module(module)
        if function:
            getattr(imported, function)()


def _measured(fn: Callable[..., T], *args: Any) -> tuple[T, int]:
    result = fn(*args)
    return result, resident_bytes()


class StepProcess:
    """Runs functions one at a time in a spawned process that dies with this one.

    After each call ``keep(rss)`` (the child's resident bytes then) decides whether the same
    process takes the next call; otherwise it is shut down and the next call starts a fresh
    one. Once a call was not kept (a big day: every step gets a fresh process from then on),
    ``run(..., ahead=modules)`` also starts the next call's process while this call runs and
    imports ``modules`` in it, so its start-up overlaps this step instead of following it.
    Exceptions come back as the pool pickles them (``_run_step`` in
    ``tokumei.pipeline.steps`` turns them into safe one-line reasons first).
    """

    def __init__(self, keep: Callable[[int], bool]) -> None:
        self._keep = keep
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: ProcessPoolExecutor | None = None  # the next call's, started early
        self._fresh = False  # a call was not kept: every call now gets a fresh process
        self._reserved: dict[str, ProcessPoolExecutor] = {}  # see reserve()
        self.started = 0  # processes started so far

    def _process(self) -> ProcessPoolExecutor:
        if self._pool is None:
            if self._ahead is not None:
                self._pool, self._ahead = self._ahead, None
            else:
                # the step process (and what it forks) dies with this one, even on SIGKILL
                self._pool = spawned_pool(1)
                self.started += 1
        return self._pool

    def prestart(self, module: str) -> None:
        """Start the process and import ``module`` in it now, without waiting: its start-up
        then overlaps with whatever this process does before the first :meth:`run`."""
        self._process().submit(importlib.import_module, module)

    def expect_fresh(self) -> None:
        """Treat every call as not kept from now on, as if one had not been: each call gets a
        fresh process, and the next one starts ahead while this one runs. For a day known to
        be big before its first step (its landing), so that the second step's process starts
        during the first step, not after it."""
        self._fresh = True

    def reserve(self, name: str, modules: Sequence[str]) -> None:
        """Start a process of its own for the call ``name`` now and import ``modules`` in it
        (``"module:function"`` also calls the function, :func:`_import_all`).

        Why: on a small day one reused process runs the steps one after the other, mostly on
        one core, and a step with a heavy start (validate: GX's import and first validation,
        ~8 CPU-s of a ~20 s day) pays it on the critical path. A reserved process pays it on
        the other core while the earlier steps run; :meth:`run` with ``name`` then runs the
        call there, and the process ends with it.
        """
        if name not in self._reserved:
            self._reserved[name] = pool = spawned_pool(1)
            self.started += 1
            pool.submit(_import_all, tuple(modules))

    def reserved(self, name: str) -> bool:
        """Whether the call ``name`` has a process of its own (:meth:`reserve`)."""
        return name in self._reserved

    def run(self, fn: Callable[..., T], *args: Any, ahead: Sequence[str] = (), name: str = "") -> T:
        """``fn(*args)`` in the step process (or in the process reserved for ``name``);
        ``ahead``: modules the next call will import."""
        if name in self._reserved:
            pool = self._reserved.pop(name)
            try:
                return pool.submit(fn, *args).result()
            finally:
                pool.shutdown()
        future = self._process().submit(_measured, fn, *args)
        if self._fresh and ahead and self._ahead is None and os.environ.get(AHEAD_ENV) != "0":
            self._ahead = spawned_pool(1)
            self.started += 1
            self._ahead.submit(_import_all, tuple(ahead))
        result, rss = future.result()
        if self._fresh or not self._keep(rss):  # once fresh, every call gets a fresh process
            self._fresh = True
            self._close_current()
        return result

    def _close_current(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown()

    def close(self) -> None:
        self._close_current()
        while self._reserved:
            self._reserved.popitem()[1].shutdown()
        if self._ahead is not None:
            pool, self._ahead = self._ahead, None
            pool.shutdown()

    def __enter__(self) -> StepProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
