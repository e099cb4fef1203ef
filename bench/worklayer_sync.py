"""What the work-layer sync costs per task when workers share no disk (issue 18).

With ``TOKUMEI_OUT=s3://…`` every Airflow task pulls what it reads of the run's work layer and
staging from the bucket and pushes what it wrote (``tokumei/infra/worklayer.py``). This runs the
``usage_analytics`` task bodies (``tokumei.pipeline.airflow_tasks``) in turn on two local roots,
alternating as two Celery workers might, against a moto S3 server on 127.0.0.1 with a generated
day as the landing, and prints per task: files and bytes pulled and pushed, the seconds each
took and the task's total. moto is a Python server on the same (shared) cores: the seconds are
an upper bound of what a real S3 or MinIO would take for the same requests; the bytes are exact.

    .venv/bin/python bench/worklayer_sync.py [--users 500] [--partitions 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOKUMEI = str(REPO / ".venv" / "bin" / "tokumei")
DAY = "2026-11-24"
BUCKET = "tokumei-bench"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="worklayer_sync_"))
    key = secrets.token_hex(32)
    os.environ.update(
        TOKUMEI_PSEUDONYM_KEY=key,
        GX_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        AWS_ACCESS_KEY_ID="AKIABENCHWORKLAYER",
        AWS_SECRET_ACCESS_KEY=secrets.token_hex(16),
        AWS_DEFAULT_REGION="us-east-1",
    )
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(var, None)
    landing = root / "landing"
    subprocess.run(
        [TOKUMEI, "generate", "--landing", str(landing), "--db-url",
         f"sqlite:///{landing / 'ops.db'}", "--start", DAY, "--days", "1",
         "--users", str(args.users), "--seed", "3"],
        env=os.environ, check=True, capture_output=True,
    )  # fmt: skip

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        os.environ["TOKUMEI_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        rows, landing_bytes, total = run_dag(root, landing, args.partitions)
    finally:
        server.stop()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; load average (1 min) "
        f"{os.getloadavg()[0]:.1f}; landing: {args.users} users, one day, "
        f"{landing_bytes:,} bytes; TOKUMEI_PARTITIONS={args.partitions}; moto on 127.0.0.1"
    )
    print(
        "| task | worker | pulled files | pulled bytes | pull s | pushed files | pushed bytes "
        "| push s | task s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    sums = [0, 0, 0.0, 0, 0, 0.0, 0.0]
    for name, worker, pull, push, seconds in rows:
        print(
            f"| {name} | {worker} | {pull.files} | {pull.bytes:,} | {pull.seconds:.2f} | "
            f"{push.files} | {push.bytes:,} | {push.seconds:.2f} | {seconds:.2f} |"
        )
        for i, v in enumerate(
            (pull.files, pull.bytes, pull.seconds, push.files, push.bytes, push.seconds, seconds)
        ):
            sums[i] += v
    print(
        f"| all | | {sums[0]} | {sums[1]:,} | {sums[2]:.2f} | {sums[3]} | {sums[4]:,} | "
        f"{sums[5]:.2f} | {sums[6]:.2f} |"
    )
    print(f"wall of the whole run (tasks in turn, no Airflow): {total:.1f} s")


def run_dag(root: Path, landing: Path, partitions: int) -> tuple[list[Any], int, float]:
    """Upload the landing, run every task on worker a or b in turn; per-task sync figures."""
    from tokumei.infra import objectstore, worklayer
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import airflow_tasks as at

    fs = objectstore.filesystem()
    fs.mkdir(BUCKET)
    landing_bytes = 0
    for f in sorted(p for p in landing.glob("*/date=*/*") if p.is_file()):
        fs.put_file(str(f), f"{BUCKET}/landing/{f.relative_to(landing).as_posix()}")
        landing_bytes += f.stat().st_size
    os.environ.update(
        TOKUMEI_LANDING=f"s3://{BUCKET}/landing",
        TOKUMEI_OUT=f"s3://{BUCKET}/out",
        TOKUMEI_DB_URL=f"sqlite:///{landing / 'ops.db'}",
        TOKUMEI_PARTITIONS=str(partitions),
    )
    workers = {}
    for name in ("a", "b"):
        os.environ["TOKUMEI_LOCAL_OUT"] = str(root / f"worker-{name}")
        workers[name] = Settings.from_env()
    current: dict[str, Any] = {}
    at._settings = lambda: current["s"]  # type: ignore[assignment]
    at.day = lambda: DAY  # type: ignore[assignment]
    at.get_current_context = lambda: {"outlet_events": None}  # type: ignore[assignment]
    at.emit_published_assets = lambda *a, **k: 0  # type: ignore[assignment]
    import tokumei.infra.secrets as secret_store

    secret_store._from_airflow = lambda: None  # type: ignore[assignment]
    stats: dict[str, Any] = {}
    real_pull, real_push = worklayer.pull, worklayer.push

    def pull(*a: Any, **k: Any) -> Any:
        stats["pull"] = real_pull(*a, **k)
        return stats["pull"]

    def push(*a: Any, **k: Any) -> Any:
        stats["push"] = real_push(*a, **k)
        return stats["push"]

    worklayer.pull, worklayer.push = pull, push  # type: ignore[assignment]
    rows: list[Any] = []

    def on(worker: str, name: str, fn: Any, *args: Any) -> Any:
        current["s"] = workers[worker]
        stats.clear()
        t0 = time.perf_counter()
        out = fn(*args)
        empty = worklayer.SyncStats()
        rows.append(
            (name, worker, stats.get("pull", empty), stats.get("push", empty),
             time.perf_counter() - t0)
        )  # fmt: skip
        return out

    t0 = time.perf_counter()
    run = on("a", "start", at.start)
    files = on("b", "extract", at.extract, run)
    for i in files:
        on("a" if i % 2 == 0 else "b", f"ingest[{i}]", at.ingest, run, i)
    parts = on("a", "check_inputs", at.check_inputs, run)
    for p in parts:
        on("b" if p % 2 == 0 else "a", f"scrub[{p}]", at.scrub, run, p)
    for p in parts:
        on("a" if p % 2 == 0 else "b", f"stats_map[{p}]", at.stats_map, run, p)
    on("b", "stats_reduce", at.stats_reduce, run)
    on("a", "anonymize_records", at.anonymize_records, run)
    on("b", "validate", at.validate, run)
    on("a", "publish", at.publish, run)
    on("b", "cleanup", at.cleanup, run)
    return rows, landing_bytes, time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
