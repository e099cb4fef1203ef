"""``tokumei`` command line (docs/architecture.md §6): generate, run, kanon, detect, scrub, provide.

Exit codes: 0 published / done; 1 the run failed (one-line reason on stderr, nothing published);
2 bad usage. Progress goes to stderr so stdout stays parseable.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tokumei.commands.generate import generate_command
from tokumei.commands.kanon import kanon
from tokumei.commands.pii import detect, scrub
from tokumei.commands.provide import provide_command

app = typer.Typer(
    name="tokumei",
    help="Turn personal usage data into statistics that cannot identify anyone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

app.command("generate", help="Write realistic synthetic landing data and an operational DB.")(
    generate_command
)
app.command("kanon", help="k-anonymize a CSV/Parquet file over persons (optimal lattice search).")(
    kanon
)
app.command("detect", help="Print the PII findings in TEXT as JSON.")(detect)
app.command("scrub", help="Scrub one text column of a Parquet file.")(scrub)
app.command(
    "provide",
    help="Record a hand-over of a release to a third party (ledger + APPI Art. 44 statement).",
)(provide_command)


@app.command("run")
def run(
    landing: Annotated[str, typer.Option(help="landing zone (docs/architecture.md §3): a folder or s3:// URL")],
    out: Annotated[
        str, typer.Option(help="output root: published/, reports/, quarantine/; or an s3:// URL")
    ],
    date: Annotated[str, typer.Option(help="the JST date to process, YYYY-MM-DD")],
    db_url: Annotated[
        str | None, typer.Option(help="operational DB URL (default: sqlite <landing>/ops.db)")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            envvar="TOKUMEI_POLICY",
            help="policy directory (default: the shipped policies/), as the DAG's TOKUMEI_POLICY",
        ),
    ] = None,
    partitions: Annotated[
        int, typer.Option(envvar="TOKUMEI_PARTITIONS", help="person-hash partitions")
    ] = 1,
    debug: Annotated[
        bool, typer.Option(help="show tracebacks (they may contain data: local use only)")
    ] = False,
    isolate_steps: Annotated[
        bool,
        typer.Option(
            help="run the steps in step processes, as Airflow tasks run: a big day one per "
            "step, so the run's memory peak is the largest step's, not what earlier steps left "
            "resident; a small day one for all (docs/architecture.md §2)"
        ),
    ] = True,
    allow_incomplete: Annotated[
        bool,
        typer.Option(
            help="run a day whose landing is incomplete, missing or empty (docs/landing.md); "
            "the release is marked partial and its days hold back weekly and monthly tables"
        ),
    ] = False,
) -> None:
    """Run one date end to end; exit 0 only when everything was published."""
    from tokumei.anonymize.policy import default_policy_dir
    from tokumei.infra.errors import TokumeiError, safe_reason, without_traceback
    from tokumei.infra.objectstore import locations
    from tokumei.infra.processes import children_die_with_me
    from tokumei.infra.progress import ENV as PROGRESS_ENV
    from tokumei.infra.settings import Settings
    from tokumei.pipeline.steps import run_all

    if not logging.getLogger().handlers:  # as basicConfig: leave a configured logging alone
        handler = logging.StreamHandler()
        if not debug:
            handler.addFilter(without_traceback)
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        # s3:// URLs (tokumei.infra.objectstore): out becomes TOKUMEI_LOCAL_OUT or a temp build root
        landing_dir, landing_url, out_dir, out_url = locations(landing, out)
        if landing_url and not db_url:
            raise TokumeiError("--db-url is required when --landing is an s3:// URL")
        settings = Settings(
            landing=landing_dir,
            db_url=db_url or f"sqlite:///{landing_dir.resolve() / 'ops.db'}",
            out=out_dir,
            policy_dir=policy or default_policy_dir(),
            partitions=partitions,
            landing_url=landing_url,
            out_url=out_url,
            allow_incomplete=allow_incomplete,
        ).resolved()

        def progress(step: str, phase: str, seconds: float | None) -> None:
            if phase == "start":
                err.print(f"[bold]▶ {step}[/bold] …")
            else:
                err.print(f"  [green]✓[/green] {step} ({seconds:.1f} s)")

        # --debug keeps the steps in-process so that tracebacks show where a step failed
        isolate = isolate_steps and not debug
        os.environ.setdefault(PROGRESS_ENV, "1")  # lines within long steps (tokumei.infra.progress)
        children_die_with_me()  # pools forked in-process die with us, even on SIGKILL
        result = run_all(settings, date, progress=progress, isolate=isolate)
    except Exception as exc:  # noqa: BLE001 - never print a raw exception message
        # one line: the step, the file or table, the cause in words (tokumei.infra.errors)
        line = str(exc) if isinstance(exc, TokumeiError) else safe_reason(exc, "run")
        if debug:  # the traceback may quote data: local use only
            traceback.print_exception(exc, file=sys.stderr)
        err.print(f"[red]✗ run failed:[/red] {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    published = result["publish"]
    base = settings.out_url or str(settings.out)
    err.print(
        f"[bold green]published[/bold green] run {result['run_id']} "
        f"(release {published['delta_release']} of {base}/published/delta)"
    )
    for name in published["tables"]:
        err.print(f"  {base}/published/delta/{name}")
    err.print(f"  reports: {base}/reports/date={date}")


def main() -> None:  # pragma: no cover - console-script shim
    """Entry point that keeps tracebacks off by default."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
