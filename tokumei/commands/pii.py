"""`tokumei detect` and `tokumei scrub`: the PII engine from the command line.

Both use exactly the engine the pipeline uses (``tokumei.anonymize.pii``), offline. ``detect`` prints
findings as JSON without the matched text unless ``--show`` is given (the only place tokumei
ever prints a raw value, on explicit request). ``scrub`` rewrites one column of a Parquet file
and prints counts only.

The lead registers ``detect`` and ``scrub`` on ``tokumei.cli``; ``app`` here makes them
runnable on their own: ``uv run python -m tokumei.commands.pii detect "..."``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer


class Lang(StrEnum):
    """Language selection: Japanese, English, or per value by script."""

    ja = "ja"
    en = "en"
    auto = "auto"


def detect(
    text: Annotated[str, typer.Argument(help="Text to analyze.")],
    lang: Annotated[Lang, typer.Option("--lang", help="ja, en or auto (by script).")] = Lang.auto,
    ner: Annotated[bool, typer.Option("--ner/--no-ner", help="GiNZA NER (Japanese).")] = False,
    show: Annotated[bool, typer.Option("--show", help="Include the matched text.")] = False,
) -> None:
    """Print the PII findings in TEXT as JSON (entity type, start, end, score)."""
    from tokumei.anonymize.pii import TokumeiAnalyzer

    findings = TokumeiAnalyzer(ner=ner).analyze(text, lang.value)
    out = []
    for f in findings:
        item = f.to_dict()
        if show:
            item["text"] = text[f.start : f.end]
        out.append(item)
    typer.echo(json.dumps(out, ensure_ascii=False))


def scrub(
    input: Annotated[Path, typer.Option("--input", help="Parquet file to read.")],
    column: Annotated[str, typer.Option("--column", help="String column to scrub.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    lang: Annotated[Lang, typer.Option("--lang", help="ja, en or auto (by script).")] = Lang.auto,
    ner: Annotated[
        bool,
        typer.Option(
            "--ner/--no-ner",
            help="GiNZA NER on Japanese values (default on: names have no pattern).",
        ),
    ] = True,
    workers: Annotated[int, typer.Option("--workers", help="Processes for Presidio.")] = 1,
) -> None:
    """Scrub one column of a Parquet file; spans become <ENTITY_TYPE>. Prints counts only.

    NER is on by default: a Japanese name has no pattern, so a scrub without GiNZA kept every
    name (issue 19). It reads Japanese-script values only; ``--no-ner`` leaves them to the
    pattern recognizers (faster, names kept).
    """
    from tokumei.anonymize.pii import Scrubber

    df = pl.read_parquet(input)
    if column not in df.columns:
        typer.echo(f"error: column {column!r} not in {input.name}", err=True)
        raise typer.Exit(code=2)
    scrubbed, stats = Scrubber(ner=ner, workers=workers).scrub_frame(df, [column], lang.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    scrubbed.write_parquet(out)
    typer.echo(json.dumps(stats.to_dict(), ensure_ascii=False))


app = typer.Typer(help="PII detection and scrubbing (offline).", no_args_is_help=True)
app.command("detect")(detect)
app.command("scrub")(scrub)

if __name__ == "__main__":
    app()
