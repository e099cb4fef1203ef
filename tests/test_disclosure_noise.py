"""DP noise via OpenDP core measurements; rounding helpers."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tokumei.stats.disclosure import (
    Ledger,
    bound_contributions,
    dp_counts,
    noise_counts,
    round_counts,
)


def counts_frame(n: int, value: int = 100) -> pl.DataFrame:
    return pl.DataFrame({"cell": list(range(n)), "persons": [value] * n})


def test_laplace_noise_is_integer_budget_recorded_and_scale_matches_epsilon():
    res = noise_counts(counts_frame(4000), "persons", 0.5, max_contributions=2, clamp=False)
    col = res.frame["persons"]
    assert col.dtype == pl.Int64 and col.null_count() == 0
    b = res.budget
    assert b.mechanism == "laplace" and b.epsilon <= 0.5 + 1e-9 and b.epsilon > 0.45
    assert b.scale == pytest.approx(2 / 0.5, rel=0.02)  # L1 sensitivity / epsilon
    noise = col.to_numpy() - 100
    # Laplace(b) has sd sqrt(2) b; loose bounds, OS randomness
    assert 0.8 * math.sqrt(2) * b.scale < noise.std() < 1.2 * math.sqrt(2) * b.scale
    assert abs(noise.mean()) < 0.5
    assert not (noise == 0).all()


def test_smaller_epsilon_means_more_noise():
    loose = noise_counts(counts_frame(10), "persons", 2.0).budget.scale
    tight = noise_counts(counts_frame(10), "persons", 0.2).budget.scale
    assert tight == pytest.approx(10 * loose, rel=0.05)


def test_gaussian_records_delta_and_rho():
    res = noise_counts(counts_frame(2000), "persons", 1.0, mechanism="gaussian", delta=1e-6)
    b = res.budget
    assert b.delta <= 1e-6 and b.epsilon <= 1.0 + 1e-9 and b.rho is not None and b.rho > 0
    noise = res.frame["persons"].to_numpy() - 100
    assert 0.8 * b.scale < noise.std() < 1.2 * b.scale


def test_clamp_keeps_counts_non_negative():
    res = noise_counts(counts_frame(500, value=0), "persons", 0.1)
    assert res.frame["persons"].min() >= 0


def test_ledger_composes_and_refuses_overspend():
    ledger = Ledger(limit_epsilon=1.0)
    e = noise_counts(counts_frame(3), "persons", 0.4, table="t1").budget
    ledger = ledger.spend(e).spend(e)
    assert ledger.epsilon == pytest.approx(2 * e.epsilon)
    assert [d["table"] for d in ledger.as_dicts()] == ["t1", "t1"]
    with pytest.raises(ValueError, match="budget"):
        ledger.spend(e)


def test_bound_contributions_and_dp_counts_over_public_keys():
    records = pl.DataFrame(
        {"person": ["u1", "u1", "u1", "u2", "u2"], "pref": ["A", "B", "C", "A", "A"]}
    )
    kept = bound_contributions(records, "person", ["pref"], 1).collect()
    assert kept.group_by("person").len()["len"].max() == 1
    assert kept.height == 2
    assert bound_contributions(records, "person", ["pref"], 1).collect().equals(kept)
    keys = pl.DataFrame({"pref": ["A", "B", "C", "D"]})
    res = dp_counts(records, "person", ["pref"], keys, 1.0, max_contributions=1)
    assert res.frame["pref"].to_list() == ["A", "B", "C", "D"]  # zero cell D released too
    assert res.budget.cells == 4 and res.budget.max_contributions == 1


def test_round_counts_half_up():
    f = pl.DataFrame({"n": [0, 2, 3, 7, 8, 12, 13, None]})
    assert round_counts(f, "n", 5)["n"].to_list() == [0, 0, 5, 5, 10, 10, 15, None]
    assert (np.array(round_counts(f, "n", 10)["n"].drop_nulls().to_list()) % 10 == 0).all()
