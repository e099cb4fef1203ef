"""tokumei's k-anonymity engine against ARX on the Adult benchmark (shared/data/adult/README.md).

Runs the README's eight settings (8 QIs, shipped hierarchies) and the 3,016,200-row ×100 scaling
setting, checks every result (each class ≥ k persons, suppression within the limit, loss ≤ ARX's),
and writes the table into bench/results/kanon.md (the Adult section; the event-log section written
by bench/kanon_eventlog.py is kept).

    uv run python bench/kanon_adult.py [--repeat 5] [--no-scaling]

Engine time is the median over ``--repeat`` warm runs of ``KAnonResult.seconds`` (encoding, search
and writing the anonymized frame; reading the CSV and interpreter start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
# TOKUMEI_CODE: another checkout's root (e.g. `git archive <commit> tokumei | tar -x -C DIR`) to
# measure an earlier version of the engine with the same script (before/after figures)
sys.path.insert(0, os.environ.get("TOKUMEI_CODE", str(ROOT)))

from tokumei.anonymize.hierarchy_csv import load_hierarchies  # noqa: E402
from tokumei.anonymize.kanon import anonymize  # noqa: E402

QIS = [
    "age",
    "education",
    "marital-status",
    "native-country",
    "occupation",
    "race",
    "sex",
    "workclass",
]

# shared/data/adult/README.md (ARX 3.9.2, 2 vCPUs): transformation, suppressed, classes, loss, ms
ARX = [
    ("k=2, 0%", 2, 0.0, None, "4,3,1,2,1,0,0,2", 0, 60, 0.6433, 46),
    ("k=5, 0%", 5, 0.0, None, "4,3,2,2,1,0,0,2", 0, 30, 0.7141, 39),
    ("k=10, 0%", 10, 0.0, None, "4,3,2,2,1,0,0,2", 0, 30, 0.7141, 26),
    ("k=2, 5%", 2, 0.05, None, "3,2,0,1,1,0,0,0", 1240, 1334, 0.1903, 640),
    ("k=5, 5%", 5, 0.05, None, "3,1,0,1,2,0,0,1", 1458, 399, 0.3000, 580),
    ("k=10, 5%", 10, 0.05, None, "3,1,1,1,2,0,0,1", 1484, 200, 0.3520, 570),
    ("k=50, 5%", 50, 0.05, None, "4,3,1,1,2,0,0,0", 1306, 45, 0.5307, 260),
    (
        "k=5 + distinct-2-diversity(salary-class), 5%",
        5,
        0.05,
        {"salary-class": 2},
        "4,1,2,1,1,0,0,0",
        1389,
        268,
        0.4016,
        620,
    ),
]
ARX_SCALING = (
    "×100 (3,016,200 rows), k=500, 5%",
    500,
    0.05,
    None,
    "3,2,1,1,1,0,0,1",
    None,
    None,
    None,
    5800,
)


def adult_dir() -> Path:
    shared = os.environ.get("TOKUMEI_SHARED")
    base = Path(shared) if shared else ROOT / ".." / "shared"
    return (base / "data" / "adult").resolve()


def replicate(df: pl.DataFrame, times: int = 100, seed: int = 0) -> pl.DataFrame:
    """The README's scaling data: copies 2..N with age jittered by a seeded -5..+5, clamped."""
    age = df["age"].cast(pl.Int64).to_numpy()
    rng = np.random.default_rng(seed)
    parts = [df]
    for _ in range(times - 1):
        jitter = rng.integers(-5, 6, len(age))
        parts.append(df.with_columns(pl.Series("age", np.clip(age + jitter, 17, 90).astype(str))))
    return pl.concat(parts).rechunk()


def check(r, df: pl.DataFrame, k: int, limit: float) -> None:  # noqa: ANN001
    m = r.metrics
    assert m["min_class_size"] >= k, m
    assert m["suppressed"] <= int(limit * df.height + 1e-9), m
    kept = r.frame.filter(pl.col(QIS[0]) != "*") if r.transformation[QIS[0]] < 4 else r.frame
    assert kept.group_by(QIS).len()["len"].min() >= k


def run(df: pl.DataFrame, hs: dict, setting: tuple, repeat: int) -> dict:
    name, k, limit, sens, arx_t, arx_s, arx_c, arx_loss, arx_ms = setting
    times, cpu, search = [], [], []
    for _ in range(repeat + 1):
        c0 = time.process_time()
        r = anonymize(df, hs, k, limit, sensitive=sens)
        cpu.append(time.process_time() - c0)
        times.append(r.seconds)
        search.append(r.search["seconds_to_transformation"])
    check(r, df, k, limit)
    m = r.metrics
    if arx_loss is not None:
        assert m["granularity_loss"] <= arx_loss + 5e-5, (name, m["granularity_loss"], arx_loss)
    return {
        "name": name,
        "ours_t": ",".join(str(v) for v in r.transformation.values()),
        "ours_s": m["suppressed"],
        "ours_c": m["classes"],
        "ours_min": m["min_class_size"],
        "ours_loss": m["granularity_loss"],
        "ours_ms": statistics.median(times[1:]) * 1000,
        "ours_min_ms": min(times[1:]) * 1000,
        "cpu_ms": statistics.median(cpu[1:]) * 1000,
        "search_ms": statistics.median(search[1:]) * 1000,
        "evaluated": r.search["evaluated"],
        "arx_t": arx_t,
        "arx_s": arx_s,
        "arx_c": arx_c,
        "arx_loss": arx_loss,
        "arx_ms": arx_ms,
    }


def fmt(v, spec: str = "") -> str:  # noqa: ANN001
    return "–" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = (
        "| setting | transformation (ours / ARX) | suppressed (ours / ARX) | classes (ours / ARX) "
        "| min class | loss (ours / ARX) | time ms: ours median (min; CPU) / ARX "
        "| ours to the transformation, ms | nodes evaluated |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['name']} | {r['ours_t']} / {r['arx_t']} | {r['ours_s']} / {fmt(r['arx_s'])} "
        f"| {r['ours_c']} / {fmt(r['arx_c'])} | {r['ours_min']} "
        f"| **{r['ours_loss']:.4f}** / {fmt(r['arx_loss'], '.4f')} "
        f"| **{r['ours_ms']:.0f}** ({r['ours_min_ms']:.0f}; {r['cpu_ms']:.0f}) / ~{r['arx_ms']} "
        f"| {r['search_ms']:.0f} | {r['evaluated']} |\n"
        for r in rows
    )
    return head + body


def write_section(path: Path, marker: str, text: str) -> None:
    """Replace the text between <!-- marker:start --> and <!-- marker:end --> (or append)."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    old = path.read_text() if path.exists() else "# k-anonymity engine vs ARX\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


# the ARX 3.9.2 figures on Adult with 9 QIs (the README's 8 and salary-class):
# (setting, k, limit, metric keywords, ARX's optimum score)
ARX_METRIC_FIGURES = [
    ("k=5, 4%", 5, 0.04, {"metric": "loss"}, 0.26611),
    ("k=5, 4%", 5, 0.04, {"metric": "nu-entropy", "monotonic": True}, 255_560),
    ("k=5, 0%", 5, 0.0, {"metric": "nu-entropy"}, 407_290),
    ("k=5, 4%", 5, 0.04, {"metric": "nu-entropy"}, None),
]
# every model, ARX's default parameters (gs-factor 0.5; loss: geometric mean)
MODELS = [
    ("loss", {"metric": "loss"}),
    ("nu-entropy", {"metric": "nu-entropy"}),
    ("nu-entropy, monotone", {"metric": "nu-entropy", "monotonic": True}),
    ("discernibility", {"metric": "discernibility"}),
    ("discernibility, monotone (DM*)", {"metric": "discernibility", "monotonic": True}),
    ("AECS", {"metric": "aecs"}),
    ("height", {"metric": "height"}),
    ("precision", {"metric": "precision"}),
    ("precision, monotone", {"metric": "precision", "monotonic": True}),
    ("KL divergence", {"metric": "kl"}),
]


def fmt_score(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.5f}"


def metrics_section(df: pl.DataFrame, d: Path, settings: list[str]) -> str:
    """Adult under each quality model: our optimum against ARX's figures and transformations."""
    qis9 = [*QIS, "salary-class"]
    hs9 = load_hierarchies(d, qis9)
    lines = [
        "## Adult under each quality model (bench/kanon_adult.py --metrics)",
        "",
        "Scores are ARX 3.9.2's own definitions (`org.deidentifier.arx.metric.v2`, see "
        "`tokumei/anonymize/kanon/quality.py`), lower is better; gs-factor 0.5, ARX's default "
        "aggregate per model. Time: `anonymize()` to the transformation, one run, "
        f"load average {os.getloadavg()[0]:.1f} (2 cores, shared).",
        "",
        "**The issue's figures** (9 QIs: the README's 8 and salary-class; ARX's optimum as "
        "reported in the issue):",
        "",
        "| setting | model | ours: transformation | ours: score | ARX's optimum | time s "
        "| nodes evaluated |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, k, limit, kw, arx in ARX_METRIC_FIGURES:
        r = anonymize(df, hs9, k, limit, **kw)
        m = r.metrics
        assert m["min_class_size"] >= k and m["suppressed"] <= int(limit * df.height + 1e-9)
        if arx is not None:
            assert m["score"] <= arx * (1 + 1e-5), (name, kw, m["score"], arx)
        label = kw["metric"] + (", monotone" if kw.get("monotonic") else "")
        lines.append(
            f"| {name} | {label} | {','.join(map(str, r.transformation.values()))} "
            f"| **{fmt_score(m['score'])}** | {fmt_score(arx)} "
            f"| {r.search['seconds_to_transformation']:.2f} | {r.search['evaluated']} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "**Every model on the README's settings** (8 QIs). ARX's transformation is the README's "
        "(found by ARX under its Loss model), scored here under each model: it is a feasible "
        "node, so our optimum must score no more (checked); under loss it is ARX's optimum.",
        "",
        "| setting | model | ours: transformation | ours: score | ARX's transformation "
        "scored | time s | nodes evaluated |",
        "|---|---|---|---|---|---|---|",
    ]
    hs = load_hierarchies(d, QIS)
    for setting in ARX:
        name, k, limit, sens, arx_t = setting[:5]
        if name not in settings:
            continue
        arx_node = dict(zip(QIS, map(int, arx_t.split(",")), strict=True))
        for label, kw in MODELS:
            r = anonymize(df, hs, k, limit, sensitive=sens, **kw)
            ref = anonymize(df, hs, k, limit, sensitive=sens, transformation=arx_node, **kw)
            ours, theirs = r.metrics["score"], ref.metrics["score"]
            assert ours <= theirs + 1e-9 * max(1.0, abs(theirs)), (name, label, ours, theirs)
            lines.append(
                f"| {name} | {label} | {','.join(map(str, r.transformation.values()))} "
                f"| **{fmt_score(ours)}** | {fmt_score(theirs)} "
                f"| {r.search['seconds_to_transformation']:.2f} | {r.search['evaluated']} |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def loose_run(df: pl.DataFrame, d: Path, repeat: int) -> dict:
    """Adult, 9 QIs, k=100, 100 % suppression (the issue's loose-limit case; ARX 9.7 s)."""
    hs9 = load_hierarchies(d, [*QIS, "salary-class"])
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        r = anonymize(df, hs9, 100, 1.0)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {
        "transformation": ",".join(map(str, r.transformation.values())),
        "loss": r.metrics["granularity_loss"],
        "evaluated": r.search["evaluated"],
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "load": os.getloadavg()[0],
    }


def loose_section(before: Path | None, repeat: int) -> str:
    """Alternating rounds (earlier engine, this one) in fresh processes; medians per round."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--loose-json", "--repeat", str(repeat)]
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for _ in range(2):
        for label, code in (("before", before), ("now", None)):
            if code is None and label == "before":
                continue
            env = dict(os.environ)
            if code is not None:
                env["TOKUMEI_CODE"] = str(code)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(label, runs[label][-1], flush=True)
    lines = [
        "## Loose suppression limit: k=100, 100 % (bench/kanon_adult.py --loose)",
        "",
        "Adult, 9 QIs (the README's 8 and salary-class), granularity loss, lattice of 12,960 "
        "nodes; every node satisfies. ARX 3.9.2: 9.7 s (the issue's figure, idle 2-vCPU "
        "machine). Ours: `anonymize()` wall and process CPU time (median of "
        f"{repeat} runs per round, fresh process per round), 2 cores shared with other "
        "sessions' jobs, so wall time follows the load; CPU time is what an idle machine "
        "would see as wall time.",
        "",
        "| engine | round | transformation | loss | nodes evaluated | wall s | CPU s | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in ("before", "now"):
        for i, r in enumerate(runs[label], start=1):
            name = f"before ({before.name})" if label == "before" and before else "this version"
            lines.append(
                f"| {name} | {i} | {r['transformation']} | {r['loss']:.4f} | {r['evaluated']} "
                f"| {r['wall']:.1f} | **{r['cpu']:.1f}** | {r['load']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument(
        "--metrics", action="store_true", help="only the quality-model section (every ARX model)"
    )
    ap.add_argument(
        "--loose",
        action="store_true",
        help="only k=100 at 100 %% suppression (9 QIs), written to the results; with "
        "--before DIR also an earlier checkout's engine, in alternating rounds",
    )
    ap.add_argument("--before", type=Path, help="root of an earlier checkout (tokumei/ inside)")
    ap.add_argument("--loose-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kanon.md")
    args = ap.parse_args()
    d = adult_dir()
    df = pl.read_csv(d / "adult.csv", separator=";", infer_schema=False)
    if args.loose_json:
        print(json.dumps(loose_run(df, d, args.repeat)))
        return
    if args.loose:
        write_section(args.out, "loose", loose_section(args.before, args.repeat))
        return
    if args.metrics:
        text = metrics_section(df, d, ["k=2, 5%", "k=5, 5%", "k=50, 5%"])
        write_section(args.out, "metrics", text)
        return
    hs = load_hierarchies(d, QIS)
    rows = []
    for setting in ARX:
        rows.append(run(df, hs, setting, args.repeat))
        print(rows[-1], flush=True)
    scale_note = ""
    if not args.no_scaling:
        big = replicate(df)
        distinct = big.select(QIS).n_unique()
        rows.append(run(big, hs, ARX_SCALING, max(1, args.repeat // 2)))
        print(rows[-1], flush=True)
        scale_note = (
            f"\nScaling data: {big.height:,} rows, {distinct:,} distinct QI tuples "
            "(ARX's run: 103,506; the jitter's random draws differ).\n"
        )
    text = (
        "## Adult (30,162 records, 8 QIs; shared/data/adult)\n\n"
        "Ours: `bench/kanon_adult.py` on this machine (2 cores, shared); ARX: the README's "
        "figures (ARX 3.9.2, 2 vCPUs). Time is engine time of warm runs (median, with the minimum "
        "and the median process CPU time — Polars threads included — in brackets): encoding, "
        'search and writing the shuffled anonymized frame; reading the CSV is excluded. "To the '
        "transformation\" stops before the frame is written (ARX's `anonymize()` likewise returns "
        "before any output is materialized). Every result is checked: each class ≥ k, "
        "suppression within the limit, loss ≤ ARX's.\n\n"
        f"Load average when measured: {os.getloadavg()[0]:.1f}.\n\n" + table(rows) + scale_note
    )
    write_section(args.out, "adult", text)
    print(table(rows))


if __name__ == "__main__":
    main()
