"""Headless Chromium for the tests that look at a page as a person would.

Debian's ``chromium`` (installed by .ci/run; tests skip without it). ``offline`` cuts the
network the way an analyst's air-gapped laptop would: every host resolves to nothing and any
connection goes to a dead proxy, so a page that needs another host shows it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def chromium(
    args: list[str], profile: Path, *, offline: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with ``args`` (e.g. ``--dump-dom URL``) in its own profile."""
    cut = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            *(cut if offline else []),
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
