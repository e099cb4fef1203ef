"""``_write_partitioned``: one streaming pass, one file per partition (``part-<p>/<name>``, so
that every landing file's ingest task writes its own file), nothing half-written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from tokumei.pipeline.steps import PERSON, _write_partitioned, partition_of


def _frame(n: int) -> pl.LazyFrame:
    persons = [hashlib.sha256(str(i % 37).encode()).hexdigest() for i in range(n)]
    return pl.LazyFrame(
        {PERSON: persons, "i": list(range(n)), "v": [f"x{i}" for i in range(n)]},
        schema={PERSON: pl.String, "i": pl.Int64, "v": pl.String},
    )


def test_each_partition_file_holds_exactly_its_persons_in_input_order(tmp_path: Path) -> None:
    frame = _frame(5_000)
    assert _write_partitioned(frame, tmp_path / "ev", 4) == 5_000
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == [
        f"part-{p:04d}" for p in range(4)
    ]
    expected = frame.with_columns(partition_of(pl.col(PERSON), 4).alias("_p")).collect()
    for p in range(4):
        got = pl.read_parquet(tmp_path / "ev" / f"part-{p:04d}" / "data.parquet")
        want = expected.filter(pl.col("_p") == p).drop("_p")
        assert got.height > 0
        assert got.equals(want)  # same rows, same order, same schema (no key column)


def test_empty_partitions_get_an_empty_file_with_the_schema(tmp_path: Path) -> None:
    frame = _frame(3)  # three persons cannot fill 16 partitions
    assert _write_partitioned(frame, tmp_path / "ev", 16) == 3
    files = sorted((tmp_path / "ev").glob("part-*/data.parquet"))
    assert len(files) == 16
    heights = [pl.read_parquet(f).height for f in files]
    assert sum(heights) == 3 and heights.count(0) >= 13
    for f in files:
        assert pl.read_parquet_schema(f) == frame.collect_schema()
    assert not list((tmp_path / "ev").glob("_writing*"))


def test_one_partition_is_one_plain_write(tmp_path: Path) -> None:
    assert _write_partitioned(_frame(10), tmp_path / "ev", 1) == 10
    assert [str(p.relative_to(tmp_path / "ev")) for p in (tmp_path / "ev").rglob("*.parquet")] == [
        "part-0000/data.parquet"
    ]


def test_a_day_without_rows_still_writes_every_partition(tmp_path: Path) -> None:
    frame = _frame(0)
    assert _write_partitioned(frame, tmp_path / "ev", 3) == 0
    for p in range(3):
        part = tmp_path / "ev" / f"part-{p:04d}" / "data.parquet"
        assert pl.read_parquet(part).height == 0
        assert pl.read_parquet_schema(part) == frame.collect_schema()
