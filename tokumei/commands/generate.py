"""``tokumei generate``: write synthetic raw data and the operational DB (docs/architecture.md §3, §6).

Thin CLI over ``tokumei.synthetic.generate``; the lead registers ``generate_command`` on the
``tokumei`` Typer app. Progress is shown per source and day because a realistic run (millions
of events a day) takes long enough that silence would look like a hang.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from exc


def generate_command(
    landing: Annotated[Path, typer.Option("--landing", help="Landing zone directory to write.")],
    db_url: Annotated[
        str,
        typer.Option(
            "--db-url", help="SQLAlchemy URL of the operational DB, e.g. sqlite:///data/ops.db"
        ),
    ],
    start: Annotated[str, typer.Option("--start", help="First JST date, YYYY-MM-DD.")],
    days: Annotated[int, typer.Option("--days", min=1, help="Number of days.")] = 1,
    users: Annotated[int, typer.Option("--users", min=1, help="Number of users.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed; same seed, same bytes.")] = 0,
    events_per_user_day: Annotated[
        float, typer.Option("--events-per-user-day", min=0.0, help="Mean events per user and day.")
    ] = 20.0,
    malformed_rate: Annotated[
        float, typer.Option("--malformed-rate", min=0.0, max=1.0, help="Share of malformed lines.")
    ] = 0.001,
    gzip: Annotated[bool, typer.Option("--gzip/--no-gzip", help="Write .jsonl.gz parts.")] = True,
) -> None:
    """Generate realistic synthetic raw data (landing contract) and the operational database."""
    # here, not at the top: every `tokumei` process (and each step process of `tokumei run`,
    # which re-imports the CLI) would otherwise pay ~0.3 s for Faker and the generator
    from tokumei.synthetic import generate, total_steps

    start_date = _parse_date(start)
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("generating", total=total_steps(days))

        def report(message: str) -> None:
            bar.console.log(message)
            bar.update(task, advance=1, description=message.split(":")[0])

        summary = generate(
            landing,
            db_url,
            start_date,
            days,
            users,
            seed,
            events_per_user_day=events_per_user_day,
            malformed_rate=malformed_rate,
            progress=report,
            use_gzip=gzip,
        )
    total = sum(summary.rows.values())
    console.print(
        f"wrote {total:,} lines ({sum(summary.malformed.values()):,} malformed) in "
        f"{len(summary.files)} files, {summary.db_rows.get('users', 0):,} users, "
        f"{summary.planted_pii:,} planted PII values; {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} lines/s)"
    )


if __name__ == "__main__":
    typer.run(generate_command)
