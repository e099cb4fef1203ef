"""The budgeted (heuristic) search: always a node that satisfies the models; the optimum when the
budget is not spent; ``optimal`` tells the two apart."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_kanon_bruteforce import brute_force, problems

from tokumei.anonymize.kanon import anonymize


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from([0, 1, 3, 10**9]))
def test_budgeted_search_returns_a_satisfying_node(p: dict, budget: int) -> None:
    args = (p["df"], p["qis"], p["k"], p["limit"], p["person_col"], p["sensitive"])
    expected = brute_force(p)
    if expected is None:
        with pytest.raises(ValueError, match="no transformation satisfies"):
            anonymize(*args, budget_evaluations=budget)
        return
    r = anonymize(*args, budget_evaluations=budget)
    # the node is acceptable: applying it again does not exceed the limit
    again = anonymize(*args, transformation=r.transformation)
    assert again.metrics["granularity_loss"] == r.metrics["granularity_loss"]
    node, loss, _ = expected
    assert r.metrics["granularity_loss"] >= loss - 1e-9
    if r.search["optimal"]:
        assert tuple(r.transformation.values()) == node
    if budget == 10**9:
        assert r.search["optimal"]


def test_budget_cuts_the_adult_search_short() -> None:
    """On Adult (k=5, 5 %), one evaluation of budget: the greedy descent's node, flagged."""
    import polars as pl
    from test_kanon_engine import ADULT_QIS, adult_dir

    from tokumei.anonymize.hierarchy_csv import load_hierarchies

    d = adult_dir()
    if not (d / "adult.csv").exists():
        pytest.skip(f"Adult data not found at {d}")
    df = pl.read_csv(d / "adult.csv", separator=";", infer_schema=False)
    hs = load_hierarchies(d, ADULT_QIS)
    exact = anonymize(df, hs, 5, 0.05)
    quick = anonymize(df, hs, 5, 0.05, budget_evaluations=1)
    assert not quick.search["optimal"] and exact.search["optimal"]
    assert quick.search["evaluated"] < exact.search["evaluated"]
    assert quick.metrics["granularity_loss"] >= exact.metrics["granularity_loss"]
    assert quick.metrics["min_class_size"] >= 5
    assert quick.metrics["suppressed"] <= int(0.05 * df.height)
