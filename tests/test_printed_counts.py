"""The one rule for counts a release prints (tokumei/release/manifest.py, issue 15).

No printed count of persons or rows is below the threshold except 0, and the interval a
printed value stands for (what the release-wide linear system models) always holds the true
count and nothing outside the values that print the same.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokumei.release.manifest import (
    ROW_BASE,
    binned_sizes,
    known_interval,
    printed_count,
    printed_interval,
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
