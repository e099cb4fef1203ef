"""The one rule for counts a release prints (tokumei/release/manifest.py, issue 15).

No printed count of persons or rows is below the threshold except 0, and the interval a
printed value stands for (what the release-wide linear system models) always holds the true
count and nothing outside the values that print the same.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokumei.release.manifest import (
    ROW_BASE,
    binned_sizes,
    known_interval,
    printed_count,
    printed_interval,
    printed_share,
    public_manifest,
)


@given(n=st.integers(0, 10**7), base=st.sampled_from([5, 10, 20, 100, 1000]))
def test_printed_count_is_zero_banded_or_at_least_base(n: int, base: int) -> None:
    p = printed_count(n, base)
    if n == 0:
        assert p == 0
    elif n < base:
        assert p == f"< {base}"
    else:
        assert isinstance(p, int) and p >= base and p % base == 0 and abs(p - n) <= base / 2


@given(n=st.integers(0, 10**6), base=st.sampled_from([10, 100]))
def test_interval_holds_exactly_the_counts_that_print_the_same(n: int, base: int) -> None:
    p = printed_count(n, base)
    lo, hi = printed_interval(p, base)
    assert lo <= n <= hi
    assert printed_count(lo, base) == p and printed_count(hi, base) == p
    assert lo == 0 or printed_count(lo - 1, base) != p
    assert printed_count(hi + 1, base) != p
    assert known_interval(n, base) == (lo, hi)


def test_public_manifest_prints_every_flow_count_by_the_rule() -> None:
    exact = {
        "sources": {"events": {"input": 1234, "kept": 1200, "quarantined": 5, "suppressed": 0}},
        "steps": {
            "extract": {
                "events": {"files": 2, "quarantine_reasons": {"malformed JSON": 3}},
                "db.users": {"rows": 40, "quarantined": 0},
            },
            "partitions": 3,
            "scrub": {"events": {"columns": {"q": {"rows": 1200, "values_changed": 7}}}},
        },
        "anonymized": {
            "rows": 96,
            "suppressed": 9,
            "withheld_suppressed_records": 21,
            "transformation": {"age": 1, "gender": 0},
            "mean_risk": 0.0123456,
            "class_size_histogram": [[10, 4], [12, 1], [250, 1]],
        },
        "outputs": {
            "stats/dau": {"rows": 4, "suppressed_cells": 1, "k_min": 12},
            "anonymized/page_views": {"rows": 96, "suppressed_persons": 3, "k_min": 10},
        },
    }
    m = public_manifest(exact, 10)
    assert m["sources"]["events"] == {
        "input": 1200,
        "kept": 1200,
        "quarantined": f"< {ROW_BASE}",
        "suppressed": 0,
    }
    ex = m["steps"]["extract"]
    assert ex["events"] == {"files": 2, "quarantine_reasons": {"malformed JSON": "< 100"}}
    assert ex["db.users"] == {"rows": "< 100", "quarantined": 0}
    assert m["steps"]["partitions"] == 3
    assert m["steps"]["scrub"]["events"]["columns"]["q"]["values_changed"] == "< 100"
    anon = m["anonymized"]
    assert anon["suppressed"] == "< 10" and anon["withheld_suppressed_records"] == "< 100"
    assert anon["transformation"] == {"age": 1, "gender": 0} and anon["rows_published"] == 96
    assert anon["mean_risk"] == 0.012
    assert anon["class_size_histogram"] == [["10–19", 5], ["200–499", 1]]
    assert m["outputs"]["stats/dau"] == exact["outputs"]["stats/dau"]  # published facts
    assert m["outputs"]["anonymized/page_views"] == {
        "rows": 96,
        "suppressed_persons": "< 10",
        "k_min": 10,
    }
    assert m["printed_counts"]["row_base"] == ROW_BASE
    assert exact["sources"]["events"]["quarantined"] == 5  # the exact record is untouched


def test_binned_sizes_never_show_a_size() -> None:
    assert binned_sizes([[10, 1], [19, 2], [20, 1], [6000, 1]], 10) == [
        ["10–19", 3],
        ["20–49", 1],
        ["5,000+", 1],
    ]


def test_doctests_of_the_rule() -> None:
    import doctest

    import tokumei.release.manifest as manifest

    assert doctest.testmod(manifest).failed == 0


def test_shares_of_hidden_counts_print_from_the_printed_counts() -> None:
    """21 withheld of 15,198 records printed as 0.0014 gave 21 back (R3, issue 15 leftovers)."""
    exact = {
        "anonymized": {
            "input_records": 15198,
            "withheld_records": 21,
            "withheld_records_share": 0.0014,
            "bounded_records": 3037,
            "bounded_records_share": 0.1998,
            "kept_records": 12140,
            "kept_records_share": 0.7988,
            "rows": 12140,
            "max_person_share": 0.2143,
            "other_share": 0.0123,
        }
    }
    anon = public_manifest(exact, 10)["anonymized"]
    assert anon["input_records"] == 15200 and anon["withheld_records"] == "< 100"
    assert anon["withheld_records_share"] == "< 0.01"
    assert anon["bounded_records_share"] == round(3000 / 15200, 2)
    assert anon["kept_records_share"] == round(12100 / 15200, 2)
    assert anon["max_person_share"] == 0.25  # an upper bound in steps of 0.05
    assert anon["other_share"] == 0.0123  # computable from the published records
    lo, hi = printed_interval(anon["input_records"], ROW_BASE)
    # what the printed share and the published rows tell about the input: no narrower than
    # the printed count's band (a 4-decimal kept share did: 12140 / 0.7988 -> 15198 +- 1)
    share = anon["kept_records_share"]
    implied = [n for n in range(lo - 500, hi + 500) if round(12100 / max(n, 1), 2) == share]
    assert not implied or max(implied) - min(implied) + 1 >= ROW_BASE // 2


def test_a_share_without_a_rule_or_its_counts_fails_closed() -> None:
    with pytest.raises(ValueError, match="no printed-count rule"):
        public_manifest({"anonymized": {"rows": 5, "dropped_records_share": 0.01}}, 10)
    with pytest.raises(ValueError, match="without its counts"):
        public_manifest({"anonymized": {"rows": 5, "withheld_records_share": 0.01}}, 10)


@given(
    part=st.integers(0, 10**5),
    extra=st.integers(0, 10**5),
    base=st.sampled_from([10, 100]),
)
def test_a_printed_share_is_a_function_of_the_printed_counts(
    part: int, extra: int, base: int
) -> None:
    whole = part + extra
    share = printed_share(part, whole, base)
    # every pair of counts that prints the same prints the same share: the share adds nothing
    for p2 in printed_interval(printed_count(part, base), base):
        for w2 in printed_interval(printed_count(whole, base), base):
            if p2 <= w2:
                assert printed_share(p2, w2, base) == share
