"""Utility cost of the record-level release rules (issue 15, finding 5) on a generated day.

Generates one day with ``tokumei generate`` (seeded), runs the pipeline's own steps up to the
scrubbed events in-process, takes the records ``anonymize_records`` starts from
(``steps.page_view_records``) and releases them twice:

- **before**: k-anonymity over persons on the QIs only, url_template verbatim (the code before
  tokumei/anonymize/records.py: ``anonymize`` + withholding a small all-``*`` group);
- **after**: ``release_records`` with the shipped policy (folding to >= k persons of the release
  and never special care, <= m records per person per class, distinct l-diversity).

Both are measured by the same function: records kept, classes, share of ``other``, templates of
fewer than k persons, special-care templates, classes below l, and the largest share of a
class's records one person holds. The section between the ``records`` markers of
bench/results/kanon.md is rewritten.

    .venv/bin/python bench/records_release.py [--users 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tokumei.anonymize.folding import OTHER  # noqa: E402
from tokumei.anonymize.hierarchy import SUPPRESSED  # noqa: E402

DAY = "2026-11-24"
RESULTS = ROOT / "bench" / "results" / "kanon.md"
START, END = "<!-- records:start -->", "<!-- records:end -->"


def measure(frame: pl.DataFrame, k: int, l: int, special: Any) -> dict[str, Any]:  # noqa: E741
    """The same figures for any released frame (person column present)."""
    qis = ["age", "gender", "prefecture", "device_class"]
    if frame.height == 0:
        return {"records": 0}
    per_value = frame.group_by("url_template").agg(pl.col("person").n_unique().alias("p"))
    per_class = (
        frame.group_by([*qis, "person"])
        .len()
        .group_by(qis)
        .agg(
            pl.len().alias("persons"),
            pl.col("len").sum().alias("records"),
            pl.col("len").max().alias("top"),
        )
        .with_columns((pl.col("top") / pl.col("records")).alias("share"))
    )
    distinct = frame.group_by(qis).agg(pl.col("url_template").n_unique().alias("d"))
    star = frame.filter(pl.all_horizontal([pl.col(q) == SUPPRESSED for q in qis]))
    return {
        "records": frame.height,
        "persons": frame["person"].n_unique(),
        "classes": per_class.height,
        "other_share": float((frame["url_template"] == OTHER).mean()),
        "templates": per_value.height,
        "templates_below_k": per_value.filter(
            (pl.col("url_template") != OTHER) & (pl.col("p") < k)
        ).height,
        "special_care_templates": per_value.filter(special.matches(pl.col("url_template"))).height,
        "classes_below_l": distinct.filter(pl.col("d") < l).height,
        "classes_half_one_person": per_class.filter(pl.col("share") >= 0.5).height,
        "max_person_share": float(per_class["share"].max()),
        "suppressed_records": star.height,
    }


def run(users: int, seed: int) -> dict[str, Any]:
    from tokumei.anonymize.kanon import anonymize
    from tokumei.anonymize.records import RecordRules, release_records
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    tmp = Path(tempfile.mkdtemp(prefix="records_bench_"))
    landing, db = tmp / "landing", tmp / "ops.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "tokumei.cli", "generate", "--landing", str(landing),
         "--db-url", f"sqlite:///{db}", "--start", DAY, "--days", "1", "--users", str(users),
         "--seed", str(seed)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    os.environ.setdefault("TOKUMEI_PSEUDONYM_KEY", "bench-key-0123456789abcdef0123456789abcdef")
    settings = Settings(landing=landing, db_url=f"sqlite:///{db}", out=tmp / "out").resolved()
    run_id = steps.new_run_id(DAY)
    steps.start(settings, DAY, run_id=run_id)
    for name, fn in steps.STEPS:
        fn(settings, DAY, run_id)
        if name == "scrub":
            break
    paths = steps._paths(settings, DAY, run_id)
    records = steps.page_view_records(paths)
    policy = steps._policy(settings)
    t, r = policy.thresholds, policy.records
    special = policy.special_care_values.matcher()
    qis = steps.anonymized_qis()

    t0 = time.perf_counter()
    old = anonymize(
        records, qis, k=t.k, max_suppression=t.max_suppression, person_col="person", seed=0
    )
    frame = old.frame
    star = pl.all_horizontal([pl.col(q) == SUPPRESSED for q in qis])
    if 0 < frame.filter(star)["person"].n_unique() < t.k:
        frame = frame.filter(~star)
    before_s = time.perf_counter() - t0
    rules = RecordRules(t.k, r.l, r.max_records_per_person_class, t.max_suppression, special)
    t0 = time.perf_counter()
    new = release_records(records, qis, "person", "url_template", rules)
    after_s = time.perf_counter() - t0
    steps.cleanup(settings, DAY, run_id)
    return {
        "users": users,
        "seed": seed,
        "input_records": records.height,
        "input_persons": records["person"].n_unique(),
        "k": t.k,
        "l": r.l,
        "m": r.max_records_per_person_class,
        "before": {
            **measure(frame, t.k, r.l, special),
            "transformation": old.transformation,
            "seconds": before_s,
        },
        "after": {
            **measure(new.frame, t.k, r.l, special),
            "transformation": new.transformation,
            "seconds": after_s,
            "bounded_records_share": new.metrics.get("bounded_records_share"),
            "withheld_records_share": new.metrics.get("withheld_records_share"),
        },
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(res: dict[str, Any]) -> str:
    b, a = res["before"], res["after"]
    n = res["input_records"]
    rows = [
        ("records released", f"{b['records']:,} ({_pct(b['records'] / n)})",
         f"{a['records']:,} ({_pct(a['records'] / n)})"),
        ("persons released", f"{b['persons']:,}", f"{a['persons']:,}"),
        ("transformation (age, gender, prefecture, device)",
         ",".join(str(v) for v in b["transformation"].values()),
         ",".join(str(v) for v in a["transformation"].values())),
        ("classes", f"{b['classes']:,}", f"{a['classes']:,}"),
        ("distinct url_template values", f"{b['templates']:,}", f"{a['templates']:,}"),
        ("records with url_template `other`", _pct(b["other_share"]), _pct(a["other_share"])),
        ("templates used by < k persons of the release", f"{b['templates_below_k']:,}",
         f"{a['templates_below_k']:,}"),
        ("special-care templates", f"{b['special_care_templates']:,}",
         f"{a['special_care_templates']:,}"),
        (f"classes with < {res['l']} distinct templates", f"{b['classes_below_l']:,}",
         f"{a['classes_below_l']:,}"),
        ("classes where one person made >= 50 % of the records",
         f"{b['classes_half_one_person']:,}", f"{a['classes_half_one_person']:,}"),
        ("largest share of a class's records held by one person", _pct(b["max_person_share"]),
         _pct(a["max_person_share"])),
        ("records in the released all-`*` class", f"{b['suppressed_records']:,}",
         f"{a['suppressed_records']:,}"),
        ("engine + rules time", f"{b['seconds']:.2f} s", f"{a['seconds']:.2f} s"),
    ]  # fmt: skip
    lines = [
        START,
        "## Record-level release anonymized/page_views: the cost of the rules "
        "(bench/records_release.py)",
        "",
        f"One generated day (`tokumei generate --users {res['users']:,} --seed {res['seed']}`), "
        f"run through the pipeline's steps to the scrubbed events: {n:,} page-view records of "
        f"{res['input_persons']:,} known persons. k = {res['k']} persons, l = {res['l']} "
        f"(distinct url_template values per class), m = {res['m']} records per person and "
        "class, at most 5 % of persons suppressed. *Before*: k over persons on the QIs, "
        "url_template verbatim (the code before tokumei/anonymize/records.py). *After*: "
        "`release_records` with the shipped policy. The same function measures both. "
        f"The bound dropped {_pct(a['bounded_records_share'] or 0)} of the records, "
        f"withholding after the search {_pct(a['withheld_records_share'] or 0)}.",
        "",
        "| | before | after |",
        "|---|---|---|",
        *[f"| {k} | {v0} | {v1} |" for k, v0, v1 in rows],
        "",
        "Most of the records the rules drop are a heavy user's repeats: at most "
        f"{res['m']} per class remain, distinct pages first, so the page mix of a class is its "
        "persons', not one person's browsing.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    res = run(args.users, args.seed)
    section = render(res)
    text = RESULTS.read_text(encoding="utf-8")
    if START in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text, encoding="utf-8")
    print(section)


if __name__ == "__main__":
    main()
