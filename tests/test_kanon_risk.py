"""Prosecutor, journalist and marketer re-identification risk (ARX's RiskModelSampleSummary)
of a record-level release: values worked out by hand, a per-record reference, the release's
own figures, and how the manifest and the privacy report print them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_records_release import QIS, RULES, _records
from test_reports import _manifest, _tables

from tokumei.anonymize.hierarchies import AgeHierarchy, CategoricalHierarchy
from tokumei.anonymize.kanon.risk import risk_summary
from tokumei.anonymize.records import release_records, release_risks
from tokumei.release.manifest import printed_risk, public_manifest
from tokumei.release.reports import write_privacy_report


def test_three_attackers_by_hand() -> None:
    # f = 2, 3, 5 persons in the release; F = 4, 3, 10 in the population; t = 0.3
    r = risk_summary([2, 3, 5], [4, 3, 10], threshold=0.3)
    assert r["records"] == 10
    p, j, m = r["prosecutor"], r["journalist"], r["marketer"]
    assert p == {"highest": 0.5, "lowest": 0.2, "average": 0.3, "records_at_risk": 5}
    # Σ f/F / n = (2/4 + 3/3 + 5/10) / 10 = 0.2 beats c / ΣF = 3/17
    assert j["highest"] == pytest.approx(1 / 3) and j["lowest"] == pytest.approx(0.1)
    assert j["average"] == pytest.approx(0.2) and j["records_at_risk"] == 3
    assert m["average"] == pytest.approx(0.2)


def test_without_a_population_the_sample_is_the_population() -> None:
    r = risk_summary([2, 3, 5], threshold=0.3)
    assert r["journalist"] == r["prosecutor"]
    assert r["marketer"]["average"] == pytest.approx(3 / 10)  # classes / records
    empty = risk_summary([], threshold=0.3)
    assert empty["records"] == 0 and empty["prosecutor"]["highest"] == 0.0


def test_a_population_smaller_than_its_class_is_refused() -> None:
    with pytest.raises(ValueError, match="population"):
        risk_summary([3], [2])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(0, 5)),
        min_size=1,
        max_size=12,
        unique_by=lambda x: x[0],
    ),
)
def test_matches_a_per_record_reference(classes: list[tuple[int, int]]) -> None:
    """Expanded to one row per person-class pair: prosecutor risk of a row is 1 / its class's
    persons, journalist/marketer 1 / its class's population; averages over rows."""
    f = [a for a, _ in classes]
    big_f = [a + extra for a, extra in classes]
    rows_f = [x for x in f for _ in range(x)]
    rows_big = [y for x, y in zip(f, big_f, strict=True) for _ in range(x)]
    r = risk_summary(f, big_f, threshold=0.25)
    n = len(rows_f)
    assert r["prosecutor"]["average"] == pytest.approx(sum(1 / x for x in rows_f) / n)
    marketer = sum(1 / y for y in rows_big) / n
    assert r["marketer"]["average"] == pytest.approx(marketer)
    assert r["journalist"]["average"] == pytest.approx(max(len(f) / sum(big_f), marketer))
    assert r["prosecutor"]["highest"] == pytest.approx(max(1 / x for x in rows_f))
    assert r["journalist"]["highest"] == pytest.approx(max(1 / y for y in rows_big))
    assert r["journalist"]["records_at_risk"] == sum(1 / y > 0.25 for y in rows_big)
    # a population can only lower the risk
    assert r["journalist"]["highest"] <= r["prosecutor"]["highest"]
    assert r["marketer"]["average"] <= r["prosecutor"]["average"] + 1e-12


def _small_release() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A released frame at age level 2 (decades) and a population of 9 persons."""
    records = pl.DataFrame(
        {
            "person": ["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p1"],
            "age": ["20-29", "20-29", "20-29", "30-39", "30-39", "30-39", "*", "20-29"],
            "gender": ["female", "female", "female", "male", "male", "male", "*", "female"],
            "device_class": ["mobile", "mobile", "mobile", "pc", "pc", "pc", "*", "pc"],
        }
    )
    population = pl.DataFrame(
        {
            "person": ["p1", "p2", "p7", "p3", "p4", "p5", "p9", "p8", "p6"],
            "age": [23, 27, 25, 31, 35, 38, 33, 29, 52],
            "gender": ["female"] * 3 + ["male"] * 5 + ["female"],
        }
    )
    return records, population


def test_release_risks_by_hand() -> None:
    """Classes (persons in release / in population): 20-29 female mobile 2/3 (p1's two rows
    count once), 30-39 male pc 3/4, the suppressed class 1/9 (everyone), 20-29 female pc 1/3
    (p1 again: a person in two classes counts in both). The population has no device class."""
    records, population = _small_release()
    qis = {
        "age": AgeHierarchy(),
        "gender": CategoricalHierarchy(),
        "device_class": CategoricalHierarchy(),
    }
    levels = {"age": 2, "gender": 0, "device_class": 0}
    r = release_risks(records, "person", qis, levels, population, threshold=0.5)
    assert r["records"] == 7
    p, j, m = r["prosecutor"], r["journalist"], r["marketer"]
    assert p["highest"] == 1.0 and p["lowest"] == pytest.approx(1 / 3)
    assert p["average"] == pytest.approx(4 / 7) and p["records_at_risk"] == 2
    assert j["highest"] == pytest.approx(1 / 3) and j["lowest"] == pytest.approx(1 / 9)
    ratio = (2 / 3 + 3 / 4 + 1 / 9 + 1 / 3) / 7  # = 67/252, above 4 / 19
    assert j["average"] == pytest.approx(ratio) and m["average"] == pytest.approx(ratio)
    assert j["records_at_risk"] == 0
    # no population: ARX's default, the sample is its own population
    alone = release_risks(records, "person", qis, levels, None, threshold=0.5)
    assert alone["journalist"] == alone["prosecutor"] == p


def test_release_records_reports_the_risks_against_its_population() -> None:
    df = _records()
    population = df.select("person", "age", "gender").unique("person")
    res = release_records(df, QIS, "person", "url_template", RULES, population=population)
    r = res.metrics["reidentification_risk"]
    classes = res.frame.group_by(list(QIS)).agg(pl.col("person").n_unique().alias("f"))
    assert r["records"] == classes["f"].sum()
    assert r["prosecutor"]["highest"] == pytest.approx(1 / classes["f"].min())
    assert r["prosecutor"]["records_at_risk"] == 0  # every class has k persons
    assert r["journalist"]["highest"] <= r["prosecutor"]["highest"]
    assert r["marketer"]["average"] <= r["prosecutor"]["average"]
    assert r["threshold"] == pytest.approx(1 / RULES.k)


def _printed() -> dict:
    risk = risk_summary([12, 15, 40], [30, 15, 400], threshold=0.1)
    manifest = {"anonymized": {"classes": 3, "reidentification_risk": risk}}
    return public_manifest(manifest, min_cell=10)["anonymized"]["reidentification_risk"]


def test_manifest_prints_risks_as_rounded_up_shares_without_counts() -> None:
    printed = _printed()
    assert "records" not in printed  # the person-class count is not printed
    assert printed["prosecutor"]["highest"] == printed_risk(1 / 12) == 0.084
    assert printed["prosecutor"]["average"] == printed_risk(3 / 67) == 0.045
    assert printed["journalist"]["highest"] == printed_risk(1 / 15) == 0.067
    marketer = (12 / 30 + 15 / 15 + 40 / 400) / 67
    assert printed["marketer"]["average"] == printed_risk(marketer) >= marketer
    # records at risk (1/f > 0.1: none; journalist none either) as printed shares
    assert printed["prosecutor"]["records_at_risk_share"] == 0.0
    assert printed["threshold"] == 0.1


def test_privacy_report_shows_the_three_attackers(tmp_path: Path) -> None:
    anonymized = {"classes": 3, "min_class_size": 12, "reidentification_risk": _printed()}
    out = write_privacy_report(
        _manifest(anonymized=anonymized), _tables(), tmp_path / "r.html"
    ).read_text()
    section = out[out.index('id="k-anonymity"') : out.index('id="discovery"')]
    table = section[section.index('id="reidentification-risk"') :]
    for text in ("prosecutor", "journalist", "marketer", "0.084", "0.067", "population"):
        assert text in table
