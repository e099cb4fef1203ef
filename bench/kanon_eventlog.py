"""The k-anonymity engine on a 10M-row event log: many rows per person, k counted over persons.

Generates a synthetic event log (seeded): 250,000 persons with a heavy-tailed number of events
each (10,000,000 rows), six quasi-identifiers — four describe the person (age, gender,
prefecture, occupation), two vary from event to event (device model: most people use one, some
two; hour of day: around each person's own habits) — and ARX-format CSV hierarchies for them.
Then, in a child process (so its peak memory is the engine's, data included), it reads the log
from Parquet and anonymizes it with k = 10 persons and at most 5 % of persons suppressed.

    uv run python bench/kanon_eventlog.py [--rows 10000000] [--persons 250000]

Targets (issue): under 60 s engine time on 2 cores, peak memory under 4 GiB. The result goes into
the event-log section of bench/results/kanon.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tokumei.anonymize.hierarchies import PREFECTURE_REGION  # noqa: E402
from tokumei.anonymize.hierarchy_csv import CsvHierarchy  # noqa: E402

QIS = ["age", "gender", "prefecture", "occupation", "device", "hour"]
OCCUPATIONS = {
    "office worker": "employed",
    "civil servant": "employed",
    "engineer": "employed",
    "sales": "employed",
    "nurse": "employed",
    "teacher": "employed",
    "self-employed": "self-employed",
    "farmer": "self-employed",
    "freelancer": "self-employed",
    "student": "not employed",
    "homemaker": "not employed",
    "retired": "not employed",
}
DEVICES = {
    "iPhone 15": "iOS",
    "iPhone 14": "iOS",
    "iPhone 13": "iOS",
    "iPhone SE": "iOS",
    "iPad": "iOS",
    "Pixel 8": "Android",
    "Pixel 7a": "Android",
    "Galaxy S24": "Android",
    "Galaxy A54": "Android",
    "Xperia 10": "Android",
    "AQUOS sense8": "Android",
    "arrows We": "Android",
    "OPPO Reno10": "Android",
    "Xiaomi 13T": "Android",
    "Windows PC": "desktop",
    "Mac": "desktop",
    "Chromebook": "desktop",
    "Linux PC": "desktop",
    "Smart TV": "other",
    "Game console": "other",
}
PARTS = ["night"] * 6 + ["morning"] * 6 + ["afternoon"] * 6 + ["evening"] * 6


def hierarchies() -> dict[str, CsvHierarchy]:
    def band(a: int, w: int) -> str:
        return f"{a // w * w}-{a // w * w + w - 1}"

    ages = [[str(a), band(a, 5), band(a, 10), band(a, 20), "*"] for a in range(15, 90)]
    hours = [
        [f"{h:02d}", f"{h // 3 * 3:02d}-{h // 3 * 3 + 2:02d}", PARTS[h], "*"] for h in range(24)
    ]
    return {
        "age": CsvHierarchy("age", ages),
        "gender": CsvHierarchy("gender", [["female", "*"], ["male", "*"], ["other", "*"]]),
        "prefecture": CsvHierarchy(
            "prefecture", [[p, r, "*"] for p, r in PREFECTURE_REGION.items()]
        ),
        "occupation": CsvHierarchy("occupation", [[o, g, "*"] for o, g in OCCUPATIONS.items()]),
        "device": CsvHierarchy("device", [[d, f, "*"] for d, f in DEVICES.items()]),
        "hour": CsvHierarchy("hour", hours),
    }


def generate(n_rows: int, n_persons: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    # events per person: heavy-tailed, at least one, summing to n_rows
    w = rng.lognormal(0.0, 1.2, n_persons)
    counts = np.maximum(1, np.floor(w / w.sum() * n_rows)).astype(np.int64)
    extra = n_rows - counts.sum()
    if extra > 0:
        np.add.at(counts, rng.integers(0, n_persons, extra), 1)
    else:
        while counts.sum() > n_rows:
            big = np.flatnonzero(counts > 1)
            counts[big[: counts.sum() - n_rows]] -= 1
    person = np.repeat(np.arange(n_persons, dtype=np.uint32), counts)
    # person attributes
    age = np.clip(rng.normal(42, 14, n_persons).round(), 15, 89).astype(np.int64)
    gender = rng.choice(3, n_persons, p=[0.49, 0.49, 0.02])
    pref_w = 1.0 / np.arange(1, 48) ** 0.9
    pref = rng.choice(47, n_persons, p=pref_w / pref_w.sum())
    occ = rng.choice(len(OCCUPATIONS), n_persons)
    dev_w = 1.0 / np.arange(1, len(DEVICES) + 1) ** 0.8
    dev_p = dev_w / dev_w.sum()
    dev1 = rng.choice(len(DEVICES), n_persons, p=dev_p)
    dev2 = np.where(rng.random(n_persons) < 0.3, rng.choice(len(DEVICES), n_persons, p=dev_p), dev1)
    habit = rng.choice(
        24,
        n_persons,
        p=np.bincount(
            np.r_[np.arange(24), [8, 12, 12, 13, 19, 20, 20, 21, 21, 22, 22, 23]], minlength=24
        )
        / 36.0,
    )
    # per event
    second = rng.random(n_rows) < 0.3
    device = np.where(second, dev2[person], dev1[person])
    hour = (habit[person] + np.round(rng.normal(0, 1.5, n_rows)).astype(np.int64)) % 24
    event = rng.choice(4, n_rows, p=[0.6, 0.2, 0.15, 0.05])

    def enum(values: list[str], codes: np.ndarray, name: str) -> pl.Series:
        return pl.Series(name, np.asarray(values, dtype=object)[codes], dtype=pl.Enum(values))

    age_values = [str(a) for a in range(15, 90)]
    return pl.DataFrame(
        [
            pl.Series("person", person),
            enum(age_values, age[person] - 15, "age"),
            enum(["female", "male", "other"], gender[person], "gender"),
            enum(list(PREFECTURE_REGION), pref[person], "prefecture"),
            enum(list(OCCUPATIONS), occ[person], "occupation"),
            enum(list(DEVICES), device, "device"),
            enum([f"{h:02d}" for h in range(24)], hour, "hour"),
            enum(["page_view", "search", "click", "purchase"], event, "event"),
        ]
    )


def child(path: Path, k: int, limit: float) -> None:
    from tokumei.anonymize.kanon import anonymize

    t0 = time.perf_counter()
    df = pl.read_parquet(path)
    t_read = time.perf_counter() - t0
    r = anonymize(df, hierarchies(), k=k, max_suppression=limit, person_col="person")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = r.frame
    kept = out.filter(pl.col("age") != "*")
    assert kept.group_by(QIS).agg(pl.col("person").n_unique())["person"].min() >= k
    print(
        json.dumps(
            {
                "rows": df.height,
                "persons": df["person"].n_unique(),
                "distinct_tuples": df.select(QIS).n_unique(),
                "transformation": r.transformation,
                "seconds": r.seconds,
                "read_seconds": t_read,
                "peak_bytes": peak,
                "evaluated": r.search["evaluated"],
                "nodes": r.search["nodes"],
                **{
                    m: r.metrics[m]
                    for m in (
                        "suppressed",
                        "suppressed_records",
                        "classes",
                        "min_class_size",
                        "granularity_loss",
                        "max_risk",
                        "mean_risk",
                    )
                },
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--persons", type=int, default=250_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--max-suppression", type=float, default=0.05)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kanon.md")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.k, args.max_suppression)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        t0 = time.perf_counter()
        generate(args.rows, args.persons).write_parquet(path)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(path),
                "--k",
                str(args.k),
                "--max-suppression",
                str(args.max_suppression),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(res, indent=1))
    gib = res["peak_bytes"] / 2**30
    text = (
        "## Event log (synthetic, many rows per person; bench/kanon_eventlog.py)\n\n"
        f"{res['rows']:,} rows, {res['persons']:,} persons, {res['distinct_tuples']:,} distinct "
        "QI tuples; 6 QIs: age, gender, prefecture, occupation (per person), device, hour "
        f"(per event). k = {args.k} persons, at most {args.max_suppression:.0%} of persons "
        f"suppressed; lattice of {res['nodes']} nodes, {res['evaluated']} evaluated.\n\n"
        f"Load average when measured: {os.getloadavg()[0]:.1f} (2 cores, shared with other "
        "sessions' jobs: wall time grows with the load).\n\n"
        "| transformation | suppressed persons (records) | classes | min class (persons) "
        "| loss | engine time | peak memory (whole process, data included) |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {','.join(str(v) for v in res['transformation'].values())} "
        f"| {res['suppressed']:,} ({res['suppressed_records']:,}) | {res['classes']:,} "
        f"| {res['min_class_size']} | {res['granularity_loss']:.4f} | **{res['seconds']:.1f} s** "
        f"(target < 60 s) | **{gib:.2f} GiB** (target < 4 GiB) |\n"
    )
    from kanon_adult import write_section  # same folder

    write_section(args.out, "eventlog", text)


if __name__ == "__main__":
    main()
