"""What OpenLineage costs a usage_analytics run: one dag.test() day with the provider off, one
with a file transport (issue 18).

Why: the provider forks the task process twice per task instance to emit (START, COMPLETE) and
waits for the child; on a loaded 2-core worker that is the visible cost. Each run is a fresh
Airflow home and output on the tests' hand-written landing (tests/conftest.py), one partition.
Prints a Markdown table: wall seconds of the dag.test() call, events, bytes of events.

    .venv/bin/python bench/lineage_overhead.py --work /tmp/lineage-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import DAY, TEST_KEY, airflow_env, write_handmade_landing  # noqa: E402

RUN = """
    import datetime, json, time
    from airflow.dag_processing.dagbag import DagBag
    dag = DagBag(dag_folder={dags!r}).dags["usage_analytics"]
    t0 = time.perf_counter()
    dr = dag.test(logical_date=datetime.datetime.fromisoformat({day!r} + "T00:00:00+09:00"))
    print("RESULT", json.dumps({{"state": str(dr.state), "seconds": time.perf_counter() - t0}}))
"""


def run(work: Path, lineage: bool) -> dict:
    from tokumei.anonymize.policy import LANDING_SOURCES
    from tokumei.ingest.landing import seal_day

    case = work / ("on" if lineage else "off")
    shutil.rmtree(case, ignore_errors=True)
    landing = write_handmade_landing(case / "landing", DAY)
    seal_day(landing, DAY, LANDING_SOURCES, producer="bench")
    events = case / "openlineage.jsonl"
    extra = {
        "TOKUMEI_LANDING": str(landing),
        "TOKUMEI_OUT": str(case / "out"),
        "TOKUMEI_DB_URL": f"sqlite:///{landing / 'ops.db'}",
        "TOKUMEI_PSEUDONYM_KEY": TEST_KEY,
        "TOKUMEI_TASK_RETRIES": "0",
    }
    if lineage:
        extra["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        )
        extra["AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT"] = "120"
    env = airflow_env(case / "af", **extra)
    for var in [v for v in env if v.startswith(("OPENLINEAGE", "AIRFLOW__OPENLINEAGE__"))]:
        if var not in extra:
            env.pop(var)
    cmd = [sys.executable, "-m", "airflow", "db", "migrate"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    code = textwrap.dedent(RUN.format(dags=str(ROOT / "dags"), day=DAY))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    line = next(ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    text = events.read_text() if events.exists() else ""
    result["events"] = sum(1 for ln in text.splitlines() if ln.strip())
    result["bytes"] = len(text.encode())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lineage-bench"))
    args = parser.parse_args()
    rows = [("off", run(args.work, False)), ("file transport", run(args.work, True))]
    print(f"host: {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| OpenLineage | run state | dag.test() wall s | events | event bytes |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        state = r["state"].rsplit(".", 1)[-1]
        print(f"| {name} | {state} | {r['seconds']:.1f} | {r['events']} | {r['bytes']:,} |")


if __name__ == "__main__":
    main()
