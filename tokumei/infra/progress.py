"""Progress lines inside long steps: files read, lines, partitions, texts left for NER.

Why a module of its own: a step runs in its own process (``tokumei run`` isolates steps, as
Airflow runs tasks), so the CLI's per-step callback cannot see inside it; an environment
variable and a logger can. With ``TOKUMEI_PROGRESS=1`` (``tokumei run`` sets it; children
inherit it) a line goes to stderr; otherwise to the ``tokumei.progress`` logger at INFO, which
Airflow writes to the task log. Lines carry counts and names relative to the landing, never a
value, and come at most once every ``every`` seconds per reporter (the last one always).
"""

from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger("tokumei.progress")

#: Set to ``1`` to print progress lines on stderr (``tokumei run`` does).
ENV = "TOKUMEI_PROGRESS"


class Progress:
    """Throttled progress lines of one step.

    >>> p = Progress("extract", every=0)
    >>> p("events: 1/2 files, 1,000 lines")  # printed on stderr, or logged at INFO
    """

    def __init__(self, step: str, every: float = 5.0) -> None:
        self.step = step
        self.every = every
        self._last: float | None = None

    def __call__(self, message: str, *, last: bool = False) -> None:
        now = time.monotonic()
        if not last and self._last is not None and now - self._last < self.every:
            return
        self._last = now
        line = f"{self.step}: {message}"
        if os.environ.get(ENV) == "1":
            print(f"  · {line}", file=sys.stderr, flush=True)
        else:
            log.info(line)
