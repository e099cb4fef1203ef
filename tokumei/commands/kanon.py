"""``tokumei kanon``: the k-anonymity engine as a standalone tool (ARX's use case, from a shell).

Reads a CSV or Parquet file and ARX-format CSV hierarchies (``DIR/*hierarchy_<column>.csv``),
finds the least-loss full-domain generalization with k counted over persons, writes the anonymized
records (rows shuffled, no index column, suppressed records kept with ``*``; the person column, a
linking key, is not written) and prints one JSON object on stdout::

    tokumei kanon --input adult.csv --sep ';' --hierarchies data/ \\
        --qi age,education,sex --k 5 --max-suppression 0.05 --out anon.csv

``--population FILE`` with ``--k-map K`` or ``--delta-min D --delta-max D`` adds k-map and
δ-presence against a population table with the same QI columns (ARX's ``KMap`` with a subset
and ``DPresence``).

``--metric`` picks the quality model the search minimizes (ARX 3.9.2's definitions, see
:mod:`tokumei.anonymize.kanon.quality`); the JSON's ``score`` is the result's score under it.

Exit codes: 0 done; 1 no transformation satisfies the models, or the input is unusable (one-line
reason on stderr); 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Metric(StrEnum):
    granularity = "granularity"
    loss = "loss"
    nu_entropy = "nu-entropy"
    discernibility = "discernibility"
    aecs = "aecs"
    height = "height"
    precision = "precision"
    kl = "kl"


class LVariant(StrEnum):
    distinct = "distinct"
    entropy = "entropy"
    recursive = "recursive"


class TDistance(StrEnum):
    equal = "equal"
    hierarchical = "hierarchical"


class Aggregate(StrEnum):
    geometric = "geometric"
    arithmetic = "arithmetic"
    sum = "sum"
    max = "max"


def _weights(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            w = float(value)
        except ValueError:
            w = float("nan")
        if not sep or not name.strip() or not (w >= 0.0 and w < float("inf")):
            raise typer.BadParameter("--weights takes column=weight pairs, weights >= 0")
        out[name.strip()] = w
    return out


def _read(path: Path, sep: str):  # noqa: ANN202 - polars is imported lazily
    import polars as pl

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".csv", ".txt", ".tsv"):
        # every column as text: hierarchy files are text, so "39" must stay "39"
        return pl.read_csv(path, separator=sep, infer_schema=False)
    raise typer.BadParameter(f"unsupported input format {suffix!r} (use .csv or .parquet)")


def _write(frame, path: Path, sep: str) -> None:  # noqa: ANN001
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        frame.write_csv(path, separator=sep)
    else:
        raise typer.BadParameter(f"unsupported output format {suffix!r} (use .csv or .parquet)")


def kanon(
    input: Annotated[Path, typer.Option("--input", help="records to anonymize (.csv/.parquet)")],
    hierarchies: Annotated[
        Path, typer.Option("--hierarchies", help="directory of ARX CSV hierarchies")
    ],
    qi: Annotated[str, typer.Option("--qi", help="quasi-identifiers, comma-separated, in order")],
    k: Annotated[int, typer.Option("--k", help="minimum distinct persons per class")],
    max_suppression: Annotated[
        float, typer.Option("--max-suppression", help="share of persons that may be suppressed")
    ],
    out: Annotated[Path, typer.Option("--out", help="anonymized records (.csv/.parquet)")],
    sep: Annotated[
        str, typer.Option("--sep", help="CSV field separator of input and output")
    ] = ",",
    person_id: Annotated[
        str | None, typer.Option("--person-id", help="column identifying the person of a row")
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option("--sensitive", help="sensitive column(s) for l-diversity")
    ] = None,
    l: Annotated[  # noqa: E741 - the model's own name
        float | None, typer.Option("--l", help="l of l-diversity on each sensitive column")
    ] = None,
    l_variant: Annotated[
        LVariant,
        typer.Option("--l-variant", help="distinct values, entropy ≥ ln l, or recursive (c, l)"),
    ] = LVariant.distinct,
    c: Annotated[float | None, typer.Option("--c", help="c of recursive (c, l)-diversity")] = None,
    t: Annotated[
        float | None,
        typer.Option("--t", help="t-closeness on each sensitive column (earth mover's distance)"),
    ] = None,
    t_distance: Annotated[
        TDistance,
        typer.Option(
            "--t-distance",
            help="ground distance of t-closeness; hierarchical uses the sensitive column's "
            "hierarchy from --hierarchies",
        ),
    ] = TDistance.equal,
    metric: Annotated[
        Metric,
        typer.Option(
            "--metric",
            help="quality model the search minimizes (ARX's definitions; granularity: the loss "
            "ARX reports)",
        ),
    ] = Metric.granularity,
    monotonic: Annotated[
        bool,
        typer.Option(
            "--monotonic/--non-monotonic",
            help="ARX's monotone variant (nu-entropy, discernibility, precision: suppression "
            "not scored)",
        ),
    ] = False,
    gs_factor: Annotated[
        float,
        typer.Option("--gs-factor", help="ARX's generalization/suppression weight in [0, 1]"),
    ] = 0.5,
    aggregate: Annotated[
        Aggregate | None,
        typer.Option(
            "--aggregate",
            help="aggregate of per-QI losses (default: geometric for loss; ARX's default of "
            "the others: sum for nu-entropy and height, arithmetic for precision)",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option("--weights", help="attribute weights, e.g. age=2,sex=0.5 (default 1)"),
    ] = None,
    avg_risk: Annotated[
        float | None,
        typer.Option(
            "--avg-risk", help="average re-identification risk of published records at most"
        ),
    ] = None,
    max_uniqueness: Annotated[
        float | None,
        typer.Option("--max-uniqueness", help="share of published records unique in their class"),
    ] = None,
    budget_seconds: Annotated[
        float | None,
        typer.Option(
            "--budget-seconds",
            help="heuristic search: stop after this long with the best node found (JSON "
            "'optimal' false if cut short); automatic on lattices over 2,000,000 nodes",
        ),
    ] = None,
    budget_nodes: Annotated[
        int | None,
        typer.Option("--budget-nodes", help="heuristic search: at most this many node evaluations"),
    ] = None,
    population: Annotated[
        Path | None,
        typer.Option(
            "--population",
            help="population table (.csv/.parquet, one row per individual, the same QI "
            "columns; must contain the input) for --k-map and --delta-min/--delta-max",
        ),
    ] = None,
    k_map: Annotated[
        int | None,
        typer.Option("--k-map", help="k-map: every class's population holds >= K individuals"),
    ] = None,
    delta_min: Annotated[
        float | None,
        typer.Option("--delta-min", help="delta-presence: records / population per class >= D"),
    ] = None,
    delta_max: Annotated[
        float | None,
        typer.Option("--delta-max", help="delta-presence: records / population per class <= D"),
    ] = None,
) -> None:
    """k-anonymize a CSV/Parquet file over persons (optimal lattice search); print JSON."""
    from tokumei.anonymize.hierarchy_csv import load_hierarchies
    from tokumei.anonymize.kanon import anonymize

    qis = [c.strip() for c in qi.split(",") if c.strip()]
    if not qis:
        raise typer.BadParameter("--qi needs at least one column")
    if sensitive is None and (l is not None or t is not None):
        raise typer.BadParameter("--l and --t need --sensitive")
    if sensitive is not None and l is None and t is None:
        raise typer.BadParameter("--sensitive needs --l or --t")
    if l_variant is LVariant.recursive and c is None:
        raise typer.BadParameter("--l-variant recursive needs --c")
    if c is not None and l_variant is not LVariant.recursive:
        raise typer.BadParameter("--c goes with --l-variant recursive")
    sens_cols = [s.strip() for s in sensitive.split(",") if s.strip()] if sensitive else []
    sens = {col: l for col in sens_cols} or None
    if not 0.0 <= gs_factor <= 1.0:
        raise typer.BadParameter("--gs-factor is in [0, 1]")
    wts = _weights(weights) if weights else None
    pop_models = k_map is not None or delta_min is not None or delta_max is not None
    if pop_models and population is None:
        raise typer.BadParameter("--k-map and --delta-min/--delta-max need --population")
    if population is not None and not pop_models:
        raise typer.BadParameter("--population needs --k-map or --delta-min/--delta-max")
    try:
        data = _read(input, sep)
        pop = _read(population, sep) if population is not None else None
        hs = load_hierarchies(hierarchies, qis)
        t_hs = (
            load_hierarchies(hierarchies, sens_cols)
            if t is not None and t_distance is TDistance.hierarchical
            else None
        )
        result = anonymize(
            data,
            hs,
            k=k,
            max_suppression=max_suppression,
            person_col=person_id,
            sensitive=sens,
            l_variant=l_variant.value,
            c=c,
            t=t,
            t_hierarchies=t_hs,
            metric=metric.value,
            monotonic=monotonic,
            gs_factor=gs_factor,
            aggregate=aggregate.value if aggregate else None,
            weights=wts,
            budget_seconds=budget_seconds,
            budget_evaluations=budget_nodes,
            avg_risk=avg_risk,
            max_uniqueness=max_uniqueness,
            population=pop,
            k_map=k_map,
            delta_min=delta_min,
            delta_max=delta_max,
        )
    except (OSError, ValueError) as exc:
        print(f"tokumei kanon: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    frame = result.frame.drop(person_id) if person_id else result.frame
    _write(frame, out, sep)
    m = result.metrics
    print(
        json.dumps(
            {
                "transformation": [result.transformation[c] for c in qis],
                "suppressed": m["suppressed"],
                "classes": m["classes"],
                "min_class_size": m["min_class_size"],
                "granularity_loss": round(m["granularity_loss"], 6),
                "discernibility": m["discernibility"],
                "metric": metric.value,
                "score": m["score"],
                "quality_model": m["metric"],
                "optimal": result.search["optimal"],
                "seconds": round(result.seconds, 4),
            }
        )
    )


if __name__ == "__main__":
    typer.run(kanon)
