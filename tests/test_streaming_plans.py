"""The hot work-layer queries must stay fully streaming (no in-memory fallback node).

Why this test exists: Polars' streaming engine silently runs part of a query in memory when it
meets an expression it cannot stream, and that part then holds the whole input. On a 10M-event
day this gave 4-5 GiB peaks (bench/results/scale.md): ``map_batches`` without
``is_elementwise=True`` (generalize), ``Expr.replace`` with a 68k-value literal mapping (scrub),
and a per-session aggregate in ``stats`` (sessions). Each was fixed by hand; nothing stopped the
next one. This test reads the engine's own physical plan and fails on any fallback node.

The signal: ``LazyFrame.show_graph(engine="streaming", plan_stage="physical", raw_output=True)``
returns the streaming engine's physical plan as Graphviz dot, without running the query. Polars
fills the nodes that fall back to the in-memory engine with the colour its legend names
"in-memory engine fallback": ``in-memory-map`` (a whole IR node, e.g. an aggregation, run by
the in-memory engine) and ``columnar-function`` (a non-elementwise function: every input is
collected into an in-memory sink, then the function runs once on the whole column). Polars' own
test suite uses the same plan (``"columnar-function" not in plan``). Neither ``explain`` (it
prints the logical plan, identical for streaming and non-streaming ``map_batches``) nor
``POLARS_VERBOSE`` (needs a run and Rust-side stderr) is as direct, and Polars 2.1 has no strict
mode that raises on fallback.

Measured on Polars 2.1.0 (what the detector tests below pin):

* ``map_batches(f)`` is a ``columnar-function`` fallback; with ``is_elementwise=True`` it is a
  plain streaming ``with-columns``.
* ``replace`` / ``replace_strict`` are a ``columnar-function`` fallback for *any* mapping, even a
  one-entry dict: the mapping size only sets how much the fallback costs, not whether it happens.
  ``_replace_per_batch`` (an elementwise ``map_batches``) streams.
* ``sort_by(...).first()`` inside ``group_by().agg()`` is rewritten by the optimizer to a
  streaming ``min_by`` and is not a fallback any more; ``sort_by(...).get(0)`` and
  ``sort_by(...).head(n)`` are (``in-memory-map`` over the whole ``AGGREGATE``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest

from tokumei.anonymize import hierarchies
from tokumei.anonymize.hierarchy_csv import CsvHierarchy
from tokumei.anonymize.streaming import replace_per_batch as _replace_per_batch
from tokumei.stats import tables as stats

_NODE = re.compile(r'^\s*\S+ \[label="(?P<label>(?:[^"\\]|\\.)*)"(?P<attrs>[^\]]*)\];\s*$')
_LEGEND_FALLBACK = re.compile(r'<FONT COLOR="(?P<color>[^"]+)">⬤</FONT> in-memory engine fallback')
# Node kinds that are in-memory fallbacks by construction; checked as well as the colour, so a
# restyled legend cannot blind the detector.
_FALLBACK_KINDS = ("in-memory-map", "columnar-function")


def physical_plan(lf: pl.LazyFrame) -> str:
    """The streaming engine's physical plan of ``lf`` as Graphviz dot (the query is not run)."""
    dot = lf.show_graph(engine="streaming", plan_stage="physical", raw_output=True, show=False)
    assert isinstance(dot, str)
    return dot


def fallback_nodes(lf: pl.LazyFrame) -> list[str]:
    """Labels of the nodes of ``lf``'s streaming plan that fall back to the in-memory engine.

    Empty when the whole query streams. A label is the node kind and its expressions, one per
    line, e.g. ``columnar-function\\n_POLARS_TMP_PHYS_0 = python_udf(...)``.
    """
    dot = physical_plan(lf)
    legend = _LEGEND_FALLBACK.search(dot)
    assert legend is not None, "Polars' plan legend changed: fallback_nodes must be updated"
    fill = f'fillcolor="{legend["color"]}"'
    found: list[str] = []
    for line in dot.splitlines():
        m = _NODE.match(line)
        if m is None:
            continue
        label = m["label"].replace("\\n", "\n").replace('\\"', '"')
        if fill in m["attrs"] or label.split("\n", 1)[0] in _FALLBACK_KINDS:
            found.append(label)
    return found


def _identity(s: pl.Series) -> pl.Series:
    return s


T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "person": pl.String(),
    "event": pl.String(),
    "session_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "device_class": pl.String(),
    "os_family": pl.String(),
    "search_query": pl.String(),
    "inquiry_text": pl.String(),
    "amount_jpy": pl.Int64(),
    "url_template": pl.String(),
}


def _events() -> pl.LazyFrame:
    """Three work-layer events with the columns the stats map functions select."""
    return pl.LazyFrame(
        {
            "person": ["p1", "p1", "p2"],
            "event": ["page_view", "search", "purchase"],
            "session_id": ["s1", "s1", "s2"],
            "ts": [T0, T0, T0],
            "device_class": ["mobile", "mobile", "desktop"],
            "os_family": ["iOS", "iOS", "Windows"],
            "search_query": [None, "shoes", None],
            "inquiry_text": [None, None, None],
            "amount_jpy": [None, None, 1200],
            "url_template": ["shop.example.jp/items/:id", None, None],
        },
        schema=EVENT_SCHEMA,
    )


def _persons() -> pl.LazyFrame:
    return pl.LazyFrame(
        {"person": ["p1"], "prefecture": ["東京都"], "age_band": ["30-34"], "gender": ["f"]}
    )


def _frame() -> pl.LazyFrame:
    return pl.LazyFrame({"k": ["a", "b", "a"], "x": ["p", "q", "r"], "t": [3, 1, 2]})


# --- the detector: each known bad pattern is found, each fixed form is not ---------------------


def test_signal_matches_execution() -> None:
    """The plan's verdict is what the engine does: a flagged map sees the whole column at once,
    an unflagged one is called per morsel (200k rows: several morsels at the default size)."""
    lf = pl.LazyFrame({"x": range(200_000)})
    for elementwise, streams in ((False, False), (True, True)):
        sizes: list[int] = []

        def _record(s: pl.Series, sizes: list[int] = sizes) -> pl.Series:
            sizes.append(len(s))
            return s

        q = lf.with_columns(
            pl.col("x").map_batches(_record, return_dtype=pl.Int64, is_elementwise=elementwise)
        )
        assert (not fallback_nodes(q)) is streams
        q.collect(engine="streaming")
        assert sum(sizes) == 200_000
        assert (len(sizes) > 1) is streams, sizes


def test_detects_map_batches_without_is_elementwise() -> None:
    bad = _frame().with_columns(pl.col("x").map_batches(_identity, return_dtype=pl.String))
    nodes = fallback_nodes(bad)
    assert len(nodes) == 1 and nodes[0].startswith("columnar-function"), nodes
    good = _frame().with_columns(
        pl.col("x").map_batches(_identity, return_dtype=pl.String, is_elementwise=True)
    )
    assert fallback_nodes(good) == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda c: c.replace([f"v{i}" for i in range(50_000)], [f"w{i}" for i in range(50_000)]),
            id="replace-50k-list",
        ),
        pytest.param(lambda c: c.replace({"p": "1", "q": "2", "r": "3"}), id="replace-3-dict"),
        pytest.param(
            lambda c: c.replace_strict({"p": "1"}, default="u", return_dtype=pl.String),
            id="replace_strict-1-dict",
        ),
    ],
)
def test_detects_replace_whatever_the_mapping_size(make: Callable[[pl.Expr], pl.Expr]) -> None:
    nodes = fallback_nodes(_frame().with_columns(make(pl.col("x"))))
    assert len(nodes) == 1 and nodes[0].startswith("columnar-function"), nodes
    assert "replace" in nodes[0]


def test_replace_per_batch_streams_with_a_50k_mapping() -> None:
    old = [f"v{i}" for i in range(50_000)]
    new = [f"w{i}" for i in range(50_000)]
    q = _frame().with_columns(_replace_per_batch(pl.col("x"), old, new).alias("x"))
    assert fallback_nodes(q) == []


@pytest.mark.parametrize(
    "agg",
    [
        pytest.param(pl.col("x").sort_by("t").get(0), id="sort_by-get0"),
        pytest.param(pl.col("x").sort_by("t").head(1), id="sort_by-head1"),
    ],
)
def test_detects_sorted_pick_in_group_by(agg: pl.Expr) -> None:
    nodes = fallback_nodes(_frame().group_by("k").agg(agg))
    assert len(nodes) == 1 and nodes[0].startswith("in-memory-map\nAGGREGATE"), nodes


@pytest.mark.parametrize(
    "agg",
    [
        pytest.param(pl.col("x").min(), id="min"),
        pytest.param(pl.col("x").sort_by("t").first(), id="sort_by-first"),
        pytest.param(pl.col("x").sort_by("t", "k", descending=[False, True]).first(), id="multi"),
    ],
)
def test_group_by_min_and_sort_by_first_stream(agg: pl.Expr) -> None:
    """``sort_by(...).first()`` is lowered to a streaming ``min_by`` on Polars 2.1 (it made the
    sessions table hold a whole partition before; ``stats.sessions_map`` now uses ``min``)."""
    assert fallback_nodes(_frame().group_by("k").agg(agg)) == []


# --- the real hot queries ------------------------------------------------------------------------

_HIERARCHY_INPUT = pl.LazyFrame(
    {"v": ["a", None], "age": [33, None], "time": [T0, None]},
    schema={"v": pl.String, "age": pl.Int64, "time": pl.Datetime("us", "UTC")},
)
_TYPED_INPUT = {"age": "age", "time": "time"}


def _hierarchy_cases() -> list[object]:
    # prefecture-1 and postal_code-3 (replace_strict) fell back until they ran per batch
    return [
        pytest.param(name, level, id=f"{name}-{level}")
        for name in sorted(hierarchies.BUILTIN)
        for level in range(hierarchies.builtin(name).levels)
    ]


@pytest.mark.parametrize(("name", "level"), _hierarchy_cases())
def test_builtin_hierarchy_streams(name: str, level: int) -> None:
    col = pl.col(_TYPED_INPUT.get(name, "v"))
    q = _HIERARCHY_INPUT.select(hierarchies.builtin(name).expr(col, level).alias("out"))
    assert fallback_nodes(q) == []


def test_csv_hierarchy_streams() -> None:
    h = CsvHierarchy.parse("v", "a;A;*\nb;B;*")
    q = pl.LazyFrame({"v": ["a", "b"]}).select(h.expr(pl.col("v"), 1))
    assert fallback_nodes(q) == []
    assert q.collect()["v"].to_list() == ["A", "B"]


def test_map_distinct_streams() -> None:
    q = _HIERARCHY_INPUT.with_columns(hierarchies.map_distinct(pl.col("v"), str.upper))
    assert fallback_nodes(q) == []


def test_mesh_1km_streams() -> None:
    lf = pl.LazyFrame({"lat": [35.68, None], "lon": [139.76, 139.0]})
    q = lf.select(hierarchies.to_mesh_1km(pl.col("lat"), pl.col("lon")).alias("mesh"))
    assert fallback_nodes(q) == []


def test_replace_per_batch_streams_in_a_with_columns() -> None:
    q = _events().with_columns(
        _replace_per_batch(pl.col("search_query"), ["shoes"], ["<X>"]).alias("search_query")
    )
    assert fallback_nodes(q) == []


def _stats_queries() -> dict[str, Callable[[], pl.LazyFrame]]:
    def pairs() -> pl.LazyFrame:
        return stats.page_view_pairs(_events())

    def page_views() -> pl.LazyFrame:
        rare = stats.rare_templates(stats.template_persons(pairs()), 5)
        return stats.page_views_map(pairs(), rare)

    def measurements() -> pl.LazyFrame:
        m = pl.LazyFrame({"person": ["p1", "p1"], "weight_kg": [60.0, 61.0]})
        return stats.measurements_map(m, _persons())

    return {
        "dau_map": lambda: stats.dau_map(_events(), _persons()),
        "page_view_pairs": pairs,
        "template_persons": lambda: stats.template_persons(pairs()),
        "page_views_map": page_views,
        "measurements_map": measurements,
        "sessions_map": lambda: stats.sessions_map(_events()),
        "search_volume_map": lambda: stats.search_volume_map(_events()),
        "funnel_map": lambda: stats.funnel_map(_events()),
        "revenue_map": lambda: stats.revenue_map(_events()),
    }


@pytest.mark.parametrize("name", sorted(_stats_queries()))
def test_stats_map_streams(name: str) -> None:
    q = _stats_queries()[name]()
    assert fallback_nodes(q) == []
    assert q.collect(engine="streaming").width > 0  # the tiny frame has the right schema
