"""Child processes die with their parent (docs/architecture.md §2: one process per step).

``tokumei run`` runs each step in a spawned process, and steps fork pools of their own (the
scrub step's NER workers). Killed with SIGKILL (by an operator or the OOM killer), the parent
gets no chance to stop them, and they would stay blocked on a pipe forever, holding memory and
raw values. Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) makes the kernel
kill a child when the thread that created it ends; it is set in every step process (the pool
initializer) and, through an at-fork hook, in every process those fork, so a kill cascades down
the tree. ``ctypes`` on libc's ``prctl`` because no maintained binding is installed and the call
is one line; elsewhere than Linux this is a no-op (the process group is then the only handle).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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
