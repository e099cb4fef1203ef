"""Where the one Data Docs site with every run's validations lives (docs/architecture.md §5).

Locally it is ``<out>/reports/data_docs``. Under an ``s3://`` output it is
``<out>/reports/data_docs/`` on the bucket, so that every worker adds to the same site: the
run's merge (``tokumei.expectations.offline.merge_into_history``) works on a scratch folder
holding only what it reads (``validations.json``, the suites' pages), and the folder is
uploaded afterwards without pruning, so earlier runs' pages stay where they are. One run at a
time per output (the run lock), so two merges never race.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tokumei.expectations.offline import HISTORY_FILE
from tokumei.infra.settings import Settings

log = logging.getLogger("tokumei.expectations")


@dataclass(frozen=True)
class HistorySite:
    """The folder GX merges into, and where readers find the site's index."""

    folder: Path
    index: str


@contextlib.contextmanager
def history_site(settings: Settings) -> Iterator[HistorySite]:
    """The history site to merge into; on S3 uploaded when the block ends without error."""
    if not settings.out_url:
        folder = settings.out / "reports" / "data_docs"
        yield HistorySite(folder, str(folder / "index.html"))
        return
    from tokumei.infra import objectstore

    url = f"{settings.out_url.rstrip('/')}/reports/data_docs"
    with tempfile.TemporaryDirectory(prefix="data-docs-") as tmp:
        folder = Path(tmp) / "data_docs"
        objectstore.download_folder(
            url, folder, lambda rel: rel == HISTORY_FILE or rel.startswith("expectations/")
        )
        yield HistorySite(folder, f"{url}/index.html")
        try:
            objectstore.upload_folder(folder, url, last="index.html", prune=False)
        except objectstore.ObjectStoreError as exc:  # the release does not depend on it
            log.warning("the Data Docs history site was not updated: %s", exc)
