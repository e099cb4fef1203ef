"""``generate``: the whole synthetic landing zone and operational DB for a date range.

Order per day: events (chunk by chunk, recording which cookies and app devices appeared),
then measurements (which mark their scales active), then the devices and cookies seen that day.
Every output cell has its own RNG stream (see ``common``), so the files are byte-identical for
a seed. A manifest of lines and malformed lines per partition goes to ``_generator/`` next to
the PII registry; the pipeline never reads that folder, tests and benchmarks do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tokumei.synthetic import devices as devices_mod
from tokumei.synthetic.common import rng_for
from tokumei.synthetic.cookies import cookies_day
from tokumei.synthetic.events import DayState, World, event_chunk, plan_day, search_pool
from tokumei.synthetic.measurements import baselines, measurements_day
from tokumei.synthetic.opdb import write_opdb
from tokumei.synthetic.people import build_population
from tokumei.synthetic.pii_plant import PiiRegistry, Planter
from tokumei.synthetic.writer import PartitionWriter

SOURCES = ("events", "measurements", "devices", "cookies")
GENERATOR_DIR = "_generator"
REGISTRY_FILE = "planted_pii.txt"
MANIFEST_FILE = "manifest.json"
CHUNK_SIZE = 125_000
MAX_LINES_PER_PART = 1_000_000


@dataclass
class GenerateSummary:
    """What a ``generate`` call wrote."""

    rows: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    users: int = 0
    planted_pii: int = 0
    registry_values: int = 0
    db_rows: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        """Landing lines written per wall-clock second (all sources)."""
        return sum(self.rows.values()) / self.seconds if self.seconds > 0 else 0.0


def total_steps(days: int) -> int:
    """Number of ``progress`` calls ``generate`` makes: the DB, then each source of each day."""
    return 1 + days * len(SOURCES)


def generate(
    landing: Path,
    db_url: str,
    start: date,
    days: int,
    users: int,
    seed: int,
    events_per_user_day: float = 20.0,
    malformed_rate: float = 0.001,
    progress: Callable[[str], None] | None = None,
    *,
    use_gzip: bool = True,
    chunk_size: int = CHUNK_SIZE,
    max_lines_per_part: int = MAX_LINES_PER_PART,
) -> GenerateSummary:
    """Write synthetic raw data under ``landing`` and the operational DB at ``db_url``."""
    if days < 1 or users < 1:
        raise ValueError("days and users must be at least 1")
    if not 0.0 <= malformed_rate <= 1.0 or events_per_user_day < 0:
        raise ValueError("malformed_rate must be in [0, 1] and events_per_user_day >= 0")
    t0 = time.perf_counter()
    landing = Path(landing)
    say = progress or (lambda _msg: None)
    summary = GenerateSummary(users=users, rows=dict.fromkeys(SOURCES, 0),
                              malformed=dict.fromkeys(SOURCES, 0))
    registry = PiiRegistry(landing / GENERATOR_DIR / REGISTRY_FILE)
    manifest: dict[str, dict[str, dict[str, object]]] = {s: {} for s in SOURCES}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokumei-gzip")
    try:
        pop = build_population(seed, users, start)
        strangers = build_population(seed, max(20, min(2000, users // 20)), start, "strangers")
        agents, devices = devices_mod.build_agents(seed, pop, start)
        registry.add(pop.registry_values())
        registry.add(devices_mod.registry_values(agents, devices))
        summary.db_rows = write_opdb(db_url, seed, pop, start, days)
        say(f"opdb: {summary.db_rows['users']:,} users, "
            f"{summary.db_rows['rights_requests']:,} rights requests")
        queries, queries_enc, qweights = search_pool()
        planter = Planter(registry)
        world = World(seed=seed, pop=pop, strangers=strangers, agents=agents, planter=planter,
                      queries=queries, queries_enc=queries_enc, query_weights=qweights)
        base = baselines(seed, pop)

        def writer(source: str, day: date) -> PartitionWriter:
            return PartitionWriter(landing / source / f"date={day.isoformat()}", source,
                                   day.year, use_gzip=use_gzip, max_lines=max_lines_per_part,
                                   pool=pool)

        def finish(source: str, day: date, w: PartitionWriter) -> None:
            stats = w.close()
            summary.rows[source] += stats.lines
            bad = sum(stats.malformed.values())
            summary.malformed[source] += bad
            summary.files.extend(stats.files)
            manifest[source][day.isoformat()] = {
                "lines": stats.lines, "malformed": dict(sorted(stats.malformed.items())),
                "files": [p.name for p in stats.files],
            }
            say(f"{source} {day.isoformat()}: {stats.lines:,} lines ({bad:,} malformed)")

        for d in range(days):
            day = start + timedelta(days=d)
            state = DayState(agent_last_seen=np.full(agents.n, -1, dtype=np.int64),
                             device_active=np.zeros(devices.frame.height, dtype=bool))
            plan = plan_day(world, day, d, events_per_user_day, chunk_size)
            w = writer("events", day)
            wrng = rng_for(seed, "writer", d, 0)
            for j in range(len(plan.counts)):
                w.write(event_chunk(world, plan, j, state), wrng, malformed_rate)
            finish("events", day, w)

            _write_whole(writer("measurements", day), rng_for(seed, "writer", d, 1),
                         measurements_day(seed, pop, devices, base, day, d,
                                          state.device_active), malformed_rate,
                         lambda w, day=day: finish("measurements", day, w))
            _write_whole(writer("devices", day), rng_for(seed, "writer", d, 2),
                         devices_mod.devices_frame(devices, state.device_active), malformed_rate,
                         lambda w, day=day: finish("devices", day, w))
            _write_whole(writer("cookies", day), rng_for(seed, "writer", d, 3),
                         cookies_day(pop, agents, state.agent_last_seen), malformed_rate,
                         lambda w, day=day: finish("cookies", day, w))
        summary.planted_pii = planter.count
    finally:
        pool.shutdown(wait=True)
        registry.close()
    summary.registry_values = registry.lines
    (landing / GENERATOR_DIR / MANIFEST_FILE).write_text(json.dumps({
        "seed": seed, "start": start.isoformat(), "days": days, "users": users,
        "events_per_user_day": events_per_user_day, "malformed_rate": malformed_rate,
        "planted_pii": summary.planted_pii, "db_rows": summary.db_rows, "partitions": manifest,
    }, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    summary.seconds = time.perf_counter() - t0
    return summary


def _write_whole(w: PartitionWriter, rng: np.random.Generator, df: pl.DataFrame, rate: float,
                 done: Callable[[PartitionWriter], None]) -> None:
    w.write(df, rng, rate)
    done(w)


__all__ = ["GenerateSummary", "generate", "total_steps"]
