"""protect_table: primary + complementary suppression, checked by the LP attacker."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tokumei.stats.disclosure import (
    UnsafeTableError,
    additive_margins,
    attack,
    flag_primary,
    protect_table,
)

DIMS2 = ["pref", "age"]
KEYS2 = [("pref",), ("age",), ()]


def table2(values: list[list[int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(f"p{i}", f"a{j}", v) for i, row in enumerate(values) for j, v in enumerate(row)],
        schema={"pref": pl.Utf8, "age": pl.Utf8, "n": pl.Int64},
        orient="row",
    )


def suppressed_dims(frame: pl.DataFrame, dims: list[str]) -> set[tuple]:
    return set(frame.filter(pl.col("suppressed")).select(dims).iter_rows())


def test_attacker_recovers_cell_when_only_primary_suppression_is_applied():
    cells = table2([[3, 40, 50], [30, 20, 60]])
    margins = additive_margins(cells, "n", KEYS2)
    published = flag_primary(cells, "n", threshold=10)
    published_margins = {k: flag_primary(m, "n", threshold=10) for k, m in margins.items()}
    report = attack(published, DIMS2, "n", 10, True, published_margins)
    assert report.height == 1
    row = report.row(0, named=True)
    assert (row["pref"], row["age"], row["lo"], row["hi"]) == ("p0", "a0", 3.0, 3.0)


def test_one_small_cell_in_a_row_gets_complements_in_row_and_column():
    cells = table2([[3, 40, 50], [30, 20, 60], [25, 35, 45]])
    res = protect_table(cells, DIMS2, "n", additive_margins(cells, "n", KEYS2))
    sup = suppressed_dims(res.cells, DIMS2)
    assert ("p0", "a0") in sup
    assert len([d for d in sup if d[0] == "p0"]) >= 2
    assert len([d for d in sup if d[1] == "a0"]) >= 2
    assert res.stats["primary"] == 1 and res.stats["secondary"] >= 3
    assert res.stats["attacker_ok"] is True
    assert res.stats["attacker_min_width"] >= 10
    # the cheapest complements were chosen: row p0 -> a1 (40), column a0 -> p2 (25)
    assert ("p0", "a1") in sup and ("p2", "a0") in sup
    assert res.cells.filter(pl.col("suppressed"))["n"].null_count() == len(sup)


def test_everything_above_threshold_suppresses_nothing():
    cells = table2([[30, 40], [11, 10]])
    res = protect_table(cells, DIMS2, "n", additive_margins(cells, "n", KEYS2))
    assert res.stats["primary"] == res.stats["secondary"] == 0
    assert res.attack.height == 0 and res.stats["attacker_ok"]
    assert res.cells["n"].to_list() == cells["n"].to_list()
    assert res.cells["suppression"].null_count() == cells.height


def test_small_margin_is_suppressed_and_protected():
    # row p0 sums to 9 < 10: its margin is a primary suppression too
    cells = table2([[4, 5, 0], [30, 20, 60], [25, 35, 45]])
    res = protect_table(cells, DIMS2, "n", additive_margins(cells, "n", KEYS2))
    pref = res.margins[("pref",)]
    row = pref.filter(pl.col("pref") == "p0").row(0, named=True)
    assert row["suppressed"] and row["suppression"] == "primary" and row["n"] is None
    assert res.stats["margins_suppressed"] >= 1
    assert res.stats["attacker_ok"]
    # and the attacker confirms it from the published frames alone
    rep = attack(res.cells, DIMS2, "n", 10, True, res.margins)
    assert rep.filter(pl.col("table") == "pref")["width"].min() >= 10


def test_zero_cells_suppressed_by_default_and_published_when_asked():
    cells = table2([[0, 40, 50], [30, 20, 60], [25, 35, 45]])
    margins = additive_margins(cells, "n", KEYS2)
    res = protect_table(cells, DIMS2, "n", margins)
    assert ("p0", "a0") in suppressed_dims(res.cells, DIMS2)
    assert res.stats["attacker_ok"]
    res0 = protect_table(cells, DIMS2, "n", margins, suppress_zeros=False)
    assert res0.stats["primary"] == res0.stats["secondary"] == 0
    # a zero is never picked as a (free) complement when zeros are published
    cells2 = table2([[3, 0, 50], [30, 20, 60], [25, 35, 45]])
    res2 = protect_table(
        cells2, DIMS2, "n", additive_margins(cells2, "n", KEYS2), suppress_zeros=False
    )
    assert ("p0", "a1") not in suppressed_dims(res2.cells, DIMS2)
    assert res2.stats["attacker_ok"]
    # primary box is [1, 9] then: 9 candidate values is the full protection
    assert res2.attack.filter(pl.col("suppression") == "primary")["width"].to_list() == [9.0]


def test_rounding_keeps_multiples_of_base_and_nulls():
    cells = table2([[3, 41, 52], [33, 27, 61], [25, 36, 44]])
    res = protect_table(cells, DIMS2, "n", additive_margins(cells, "n", KEYS2), rounding_base=5)
    for frame in [res.cells, *res.margins.values()]:
        pub = frame.filter(~pl.col("suppressed"))["n"]
        assert pub.null_count() == 0 and (pub % 5 == 0).all()
        assert frame.filter(pl.col("suppressed"))["n"].null_count() == frame["suppressed"].sum()
    assert res.cells.filter(pl.col("pref") == "p1", pl.col("age") == "a0")["n"].item() == 35
    rep = attack(res.cells, DIMS2, "n", 10, True, res.margins, rounding_base=5)
    assert (rep["width"] >= res.attack["width"]).all()  # rounding only widens


def test_suppression_is_deterministic_and_independent_of_row_order():
    rng = np.random.default_rng(7)
    cells = table2(rng.integers(0, 40, size=(6, 5)).tolist())
    margins = additive_margins(cells, "n", KEYS2)
    a = protect_table(cells, DIMS2, "n", margins)
    b = protect_table(cells.sample(fraction=1.0, shuffle=True, seed=3), DIMS2, "n", margins)
    assert suppressed_dims(a.cells, DIMS2) == suppressed_dims(b.cells, DIMS2)
    assert a.cells.equals(protect_table(cells, DIMS2, "n", margins).cells)
    # caller row order is kept
    assert a.cells.select(DIMS2).equals(cells.select(DIMS2))


def test_non_additive_margins():
    # distinct persons: a person active in two ages is counted once in the margin
    cells = table2([[3, 40, 50], [30, 20, 60]])
    margins = additive_margins(cells, "n", KEYS2)
    margins[("pref",)] = margins[("pref",)].with_columns(pl.col("n") - 2)
    margins[()] = margins[()].with_columns(pl.col("n") - 3)
    with pytest.raises(ValueError, match="additive"):
        protect_table(cells, DIMS2, "n", margins)
    res = protect_table(cells, DIMS2, "n", margins, additive=False)
    assert res.stats["attacker_ok"]
    assert ("p0", "a0") in suppressed_dims(res.cells, DIMS2)


def test_force_suppress_and_pattern_round_trip():
    cells = table2([[3, 40, 50], [30, 20, 60], [25, 35, 45]])
    margins = additive_margins(cells, "n", KEYS2)
    first = protect_table(cells, DIMS2, "n", margins)
    # another release of the same structure with other values, forced to the first pattern
    cells2 = table2([[12, 41, 50], [30, 22, 60], [25, 35, 47]])
    second = protect_table(
        cells2, DIMS2, "n", additive_margins(cells2, "n", KEYS2), force_suppress=first.pattern()
    )
    assert suppressed_dims(first.cells, DIMS2) <= suppressed_dims(second.cells, DIMS2)
    assert second.stats["forced"] == first.pattern().height
    assert second.stats["primary"] == 0 and second.stats["attacker_ok"]
    # a forced margin cell (null = aggregated dim) is matched too
    force = pl.DataFrame({"pref": ["p1"], "age": [None]}, schema={"pref": pl.Utf8, "age": pl.Utf8})
    third = protect_table(
        cells2, DIMS2, "n", additive_margins(cells2, "n", KEYS2), force_suppress=force
    )
    assert third.margins[("pref",)].filter(pl.col("pref") == "p1")["suppressed"].item()
    assert third.stats["forced_unmatched"] == 0 and third.stats["attacker_ok"]


def test_share_protection_and_unsafe_policy_fails_closed():
    cells = table2([[3, 40, 50], [30, 20, 60], [25, 35, 45]])
    margins = additive_margins(cells, "n", KEYS2)
    res = protect_table(cells, DIMS2, "n", margins, protection=0.5)
    assert res.stats["attacker_ok"]
    assert (res.attack["required"] >= 2).all()
    impossible = protect_table(cells, DIMS2, "n", margins, protection=10_000, max_rounds=1)
    assert impossible.stats["attacker_ok"] is False
    with pytest.raises(UnsafeTableError):
        impossible.raise_if_unsafe()


def test_three_dimensional_table_with_grand_total_line():
    rng = np.random.default_rng(11)
    rows = [
        (p, a, g, int(rng.negative_binomial(2, 0.08)))
        for p in range(6)
        for a in range(4)
        for g in range(2)
    ]
    cells = pl.DataFrame(rows, schema=["pref", "age", "g", "n"], orient="row")
    keys = [("pref",), ("age", "g"), ()]
    res = protect_table(cells, ["pref", "age", "g"], "n", additive_margins(cells, "n", keys))
    assert res.stats["primary"] > 0 and res.stats["attacker_ok"]
    rep = attack(res.cells, ["pref", "age", "g"], "n", 10, True, res.margins)
    assert rep.height == res.attack.height and rep["width"].min() >= 10


@st.composite
def random_tables(draw: st.DrawFn) -> tuple[pl.DataFrame, list[str], list[tuple[str, ...]]]:
    three = draw(st.booleans())
    shape = (
        draw(st.integers(2, 4)),
        draw(st.integers(2, 3)),
        draw(st.integers(1, 2)) if three else 1,
    )
    n = shape[0] * shape[1] * shape[2]
    values = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    rows = [
        (i, j, k, values[(i * shape[1] + j) * shape[2] + k])
        for i in range(shape[0])
        for j in range(shape[1])
        for k in range(shape[2])
    ]
    cells = pl.DataFrame(rows, schema=["a", "b", "c", "n"], orient="row")
    if three:
        dims = ["a", "b", "c"]
        keys = draw(
            st.sampled_from(
                [
                    [("a",), ("b", "c"), ()],
                    [("a",), ("b",), ("c",), ()],
                    [("a", "b"), ("a", "c"), ("b", "c")],
                ]
            )
        )
    else:
        cells = cells.drop("c")
        dims = ["a", "b"]
        keys = draw(st.sampled_from([[("a",), ("b",), ()], [("a",), ("b",)], [("a",)]]))
    return cells, dims, keys


def grid3(values: list[int], shape: tuple[int, int, int]) -> pl.DataFrame:
    """A dense a×b×c table, values in (a, b, c) order."""
    index = [(i, j, k) for i in range(shape[0]) for j in range(shape[1]) for k in range(shape[2])]
    return pl.DataFrame(
        [(*ijk, v) for ijk, v in zip(index, values, strict=True)],
        schema=["a", "b", "c", "n"],
        orient="row",
    )


# CI counterexample: margins a×b and a×c without an `a` margin imply sum_b(a×b) = sum_c(a×c), so
# the suppressed a×b cell (1, 0) was recovered (60 - 20 - 20) while every cell of its own line
# was already suppressed: the complement search must look past the cell's own lines.
ABC_PAIRS = [("a", "b"), ("a", "c"), ("b", "c")]
CI_3D = grid3([0, 0, 0, 0, 0, 1] + [10] * 6, (2, 3, 2))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_tables(), st.booleans())
@example((CI_3D, ["a", "b", "c"], ABC_PAIRS), False)
def test_no_suppressed_cell_is_pinned_down(table, zeros):
    cells, dims, keys = table
    res = protect_table(cells, dims, "n", additive_margins(cells, "n", keys), suppress_zeros=zeros)
    assert res.stats["attacker_ok"], res.attack.filter(~pl.col("ok"))
    # independent re-attack of what is actually published
    rep = attack(res.cells, dims, "n", 10, True, res.margins, suppress_zeros=zeros)
    assert rep.height == res.attack.height
    assert (rep["width"] >= res.attack["required"]).all()
    # every small non-zero interior cell is hidden
    small = cells.filter(pl.col("n") < 10, pl.col("n") > 0).height
    assert res.cells.filter(pl.col("suppression") == "primary").height >= small


def test_implied_relation_between_margins_is_protected():
    # the CI counterexample above, with the pattern checked explicitly
    res = protect_table(
        CI_3D, ["a", "b", "c"], "n", additive_margins(CI_3D, "n", ABC_PAIRS), suppress_zeros=False
    )
    assert res.stats["attacker_ok"] and res.stats["capped_by_structure"] == 0
    ab = res.margins[("a", "b")].filter(pl.col("a") == 1)
    ac = res.margins[("a", "c")].filter(pl.col("a") == 1)
    # a×b (1, 0) is suppressed, so a second a=1 margin cell must be hidden as well
    assert ab["suppressed"].sum() + ac["suppressed"].sum() >= 2
    rep = attack(res.cells, ["a", "b", "c"], "n", 10, True, res.margins, suppress_zeros=False)
    assert (rep["width"] >= res.attack["required"]).all()
