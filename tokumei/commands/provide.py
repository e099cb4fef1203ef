"""`tokumei provide`: record a hand-over of a release to a third party (APPI Art. 44).

Appends one entry to ``<out>/provision/ledger.jsonl`` and writes the statement to the
recipient that the data is anonymously processed information (ja + en) beside it; see
:mod:`tokumei.release.provision`. Prints the entry as JSON on stdout; exit 1 with a one-line
reason when the release or a dataset does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def provide_command(
    out: Annotated[Path, typer.Option(help="the local output root the release was published to")],
    date: Annotated[str, typer.Option(help="the release date (JST), YYYY-MM-DD")],
    recipient: Annotated[str, typer.Option(help="the third party receiving the data")],
    datasets: Annotated[
        str,
        typer.Option(
            help="comma-separated datasets of the release, e.g. "
            "anonymized/page_views,stats/daily_active_users (a bare name if unambiguous)"
        ),
    ],
    method: Annotated[
        str, typer.Option(help="how the data is handed over (recorded and stated)")
    ] = "electronic file transfer",
) -> None:
    """Record the provision of DATASETS of the release of DATE to RECIPIENT."""
    from tokumei.release.provision import ProvisionError, provide

    try:
        done = provide(out, date, recipient, datasets.split(","), method)
    except ProvisionError as exc:
        err.print(f"[red]✗ provide failed:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    print(json.dumps(done.entry, ensure_ascii=False, indent=2, sort_keys=True))
    err.print(f"statement: {out / done.entry['statement']}", highlight=False, soft_wrap=True)
