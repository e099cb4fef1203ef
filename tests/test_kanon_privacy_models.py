"""Entropy-l, recursive-(c,l) diversity and t-closeness (equal and hierarchical ground distance)
against brute force on small random tables.

The reference is plain Python over rows, written from ARX's definitions
(``org.deidentifier.arx.criteria``): Shannon entropy of a class's sensitive values ≥ ln l (and at
least ceil(l) values); with counts r1 ≥ … ≥ rm, m ≥ l and r1 < c·(r_l + … + r_m); the earth
mover's distance to the whole data's distribution, equal ground distance = half the L1 distance,
hierarchical = Li et al.'s tree algorithm (positive and negative extras per inner node, cost
level/height · min). For every node of the lattice the engine must agree with the reference on
whether the node is acceptable (within the suppression limit once violating classes are
suppressed), the optimum must be the least-loss acceptable node, and the published classes must
satisfy the model.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_kanon_bruteforce import hierarchies, search_against_brute_force

from tokumei.anonymize.hierarchy_csv import CsvHierarchy
from tokumei.anonymize.kanon import anonymize

TOL = 1e-9


def entropy_ok(counts: Counter, lv: float) -> bool:
    n = sum(counts.values())
    h = -sum(c / n * math.log(c / n) for c in counts.values())
    return len(counts) >= math.ceil(lv) and h >= math.log(lv) - TOL


def recursive_ok(counts: Counter, lv: int, c: float) -> bool:
    r = sorted(counts.values(), reverse=True)
    return len(r) >= lv and r[0] < c * sum(r[lv - 1 :])


def emd(cls_vals: list[str], all_vals: list[str], h: CsvHierarchy | None) -> float:
    q = Counter(cls_vals)
    p = Counter(all_vals)
    n_q, n_p = len(cls_vals), len(all_vals)
    values = sorted(p)
    extra = {(0, v): p[v] / n_p - q[v] / n_q for v in values}
    if h is None:
        return sum(abs(e) for e in extra.values()) / 2
    rows = {r[0]: r for r in h.table.rows()}
    height = h.levels - 1
    cost = 0.0
    for lvl in range(1, h.levels):
        children: dict[str, list[float]] = defaultdict(list)
        for (_, label), e in extra.items():
            # the child's parent: the level-lvl label of any leaf under it
            leaf = next(v for v in values if rows[v][lvl - 1] == label)
            children[rows[leaf][lvl]].append(e)
        extra = {}
        for label, es in children.items():
            pos = sum(e for e in es if e > 0)
            neg = -sum(e for e in es if e < 0)
            cost += lvl / height * min(pos, neg)
            extra[(lvl, label)] = pos - neg
    return cost


@st.composite
def sensitive_hierarchy(draw: st.DrawFn) -> CsvHierarchy:
    """3–6 values under one or two levels of groups, then ``*`` (so the levels weigh apart)."""
    n_leaves = draw(st.integers(3, 6))
    rows = [[f"s{i}"] for i in range(n_leaves)]
    current = [r[0] for r in rows]
    for lvl in range(draw(st.integers(1, 2))):
        groups = {v: f"sL{lvl + 1}g{draw(st.integers(0, 2))}" for v in sorted(set(current))}
        current = [groups[v] for v in current]
        for r, v in zip(rows, current, strict=True):
            r.append(v)
    return CsvHierarchy("s", [[*r, "*"] for r in rows])


@st.composite
def problems(draw: st.DrawFn) -> dict:
    n_q = draw(st.integers(1, 2))
    hs = {f"q{i}": draw(hierarchies(f"q{i}")) for i in range(n_q)}
    sh = draw(sensitive_hierarchy())
    n_rows = draw(st.integers(1, 30))
    data = {
        c: [h.domain[draw(st.integers(0, len(h.domain) - 1))] for _ in range(n_rows)]
        for c, h in hs.items()
    }
    n_vals = draw(st.integers(1, len(sh.domain)))
    data["s"] = [sh.domain[draw(st.integers(0, n_vals - 1))] for _ in range(n_rows)]
    model = draw(
        st.one_of(
            st.tuples(st.just("entropy"), st.sampled_from([1.0, 1.5, 2.0, 3.0])),
            st.tuples(
                st.just("recursive"), st.integers(1, 3), st.sampled_from([0.5, 1.0, 2.0, 3.0])
            ),
            st.tuples(st.just("avg"), st.sampled_from([0.05, 0.1, 0.2, 0.34, 0.5, 1.0])),
            st.tuples(st.just("uniq"), st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5])),
            st.tuples(
                st.just("t"),
                st.sampled_from([0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]),
                st.booleans(),
            ),
        )
    )
    return {
        "df": pl.DataFrame(data),
        "qis": hs,
        "s_h": sh,
        "k": draw(st.integers(1, 4)),
        "limit": draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])),
        "model": model,
    }


def engine_kwargs(p: dict) -> dict:
    m = p["model"]
    if m[0] == "entropy":
        return {"sensitive": {"s": m[1]}, "l_variant": "entropy"}
    if m[0] == "recursive":
        return {"sensitive": {"s": m[1]}, "l_variant": "recursive", "c": m[2]}
    if m[0] == "avg":
        return {"avg_risk": m[1]}
    if m[0] == "uniq":
        return {"max_uniqueness": m[1]}
    return {
        "sensitive": {"s": None},
        "t": m[1],
        "t_hierarchies": {"s": p["s_h"]} if m[2] else None,
    }


def risk_prefix(model: tuple, sizes: list[int]) -> int:
    """ARX's enforcement: how many of the smallest published classes to suppress (fewest first)
    until the average risk (classes / records) or the unique share meets the threshold."""
    sizes = sorted(sizes)
    for x in range(len(sizes) + 1):
        rest = sizes[x:]
        if not rest:
            return x
        if model[0] == "avg" and len(rest) / sum(rest) <= model[1] + TOL:
            return x
        if model[0] == "uniq" and sum(1 for s in rest if s == 1) / sum(rest) <= model[1] + TOL:
            return x
    return len(sizes)


def class_ok(p: dict, vals: list[str]) -> bool:
    m = p["model"]
    if m[0] in ("avg", "uniq"):
        return True
    if m[0] == "entropy":
        return entropy_ok(Counter(vals), m[1])
    if m[0] == "recursive":
        return recursive_ok(Counter(vals), m[1], m[2])
    return emd(vals, p["df"]["s"].to_list(), p["s_h"] if m[2] else None) <= m[1] + TOL


def acceptable(p: dict, node: tuple[int, ...]) -> bool:
    hs: dict[str, CsvHierarchy] = p["qis"]
    cols = list(hs)
    rows = p["df"].to_dicts()
    tables = {c: {r[0]: r for r in h.table.rows()} for c, h in hs.items()}
    members: dict[tuple, list[str]] = defaultdict(list)
    for r in rows:
        members[tuple(tables[c][r[c]][lvl] for c, lvl in zip(cols, node, strict=True))].append(
            r["s"]
        )
    bad = sum(len(v) for v in members.values() if len(v) < p["k"] or not class_ok(p, v))
    if p["model"][0] in ("avg", "uniq"):
        sizes = sorted(len(v) for v in members.values() if len(v) >= p["k"])
        bad += sum(sizes[: risk_prefix(p["model"], sizes)])
    return bad <= math.floor(p["limit"] * len(rows) + 1e-9)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_privacy_models_match_brute_force(p: dict) -> None:
    cols = list(p["qis"])
    found = search_against_brute_force(p, acceptable, engine_kwargs(p))
    if found is None:
        return
    # the published classes (records not all '*') satisfy the model and k
    kept, top = found.kept, found.top
    sizes = []
    for _, grp in kept.group_by(cols):
        assert grp.height >= p["k"]
        assert class_ok(p, grp["s"].to_list())
        sizes.append(grp.height)
    if p["model"][0] in ("avg", "uniq") and not top and sizes:
        assert risk_prefix(p["model"], sizes) == 0  # the published records meet the threshold


def test_entropy_request_is_not_distinct() -> None:
    """The issue's case: distinct-2 is met by 9:1 classes, entropy-2 is not (H = 0.33 < ln 2);
    merged, 10:10 has entropy exactly ln 2, which is enough."""
    qi = CsvHierarchy("q", [["a", "*"], ["b", "*"]])
    df = pl.DataFrame({"q": ["a"] * 10 + ["b"] * 10, "s": ["x"] * 9 + ["y"] * 10 + ["x"]})
    r = anonymize(df, {"q": qi}, 2, 0.0, sensitive={"s": 2})
    assert r.transformation == {"q": 0}
    r = anonymize(df, {"q": qi}, 2, 0.0, sensitive={"s": 2}, l_variant="entropy")
    assert r.transformation == {"q": 1}
    with pytest.raises(ValueError, match="person column"):
        anonymize(
            df.with_columns(pl.lit("p").alias("pid")),
            {"q": qi},
            1,
            0.0,
            person_col="pid",
            sensitive={"s": 2},
            l_variant="entropy",
        )
    with pytest.raises(ValueError, match="needs c"):
        anonymize(df, {"q": qi}, 2, 0.0, sensitive={"s": 2}, l_variant="recursive")


def test_t_closeness_by_hand() -> None:
    """Overall s: x 10, y 6, z 4 of 20. Class a: x 9, y 1; class b: x 1, y 5, z 4.
    Equal distance of a: ½(|.5−.9| + |.3−.1| + |.2−0|) = 0.4. Hierarchy x,y → g1, z → g2:
    a: g1 extra (.5−.9)+(.3−.1) = −0.2, z +0.2; level 1: g1 min(0.2, 0.4)·½ = 0.1, g2 0;
    root: min(0.2, 0.2)·1 = 0.2 → 0.3."""
    qi = CsvHierarchy("q", [["a", "*"], ["b", "*"]])
    sh = CsvHierarchy("s", [["x", "g1", "*"], ["y", "g1", "*"], ["z", "g2", "*"]])
    df = pl.DataFrame({"q": ["a"] * 10 + ["b"] * 10, "s": list("xxxxxxxxxy" + "xyyyyyzzzz")})
    ok_equal = anonymize(df, {"q": qi}, 1, 0.0, sensitive={"s": None}, t=0.41)
    assert ok_equal.transformation == {"q": 0}
    too_close = anonymize(df, {"q": qi}, 1, 0.0, sensitive={"s": None}, t=0.39)
    assert too_close.transformation == {"q": 1}
    hier = {"s": sh}
    ok_h = anonymize(df, {"q": qi}, 1, 0.0, sensitive={"s": None}, t=0.31, t_hierarchies=hier)
    assert ok_h.transformation == {"q": 0}
    no_h = anonymize(df, {"q": qi}, 1, 0.0, sensitive={"s": None}, t=0.29, t_hierarchies=hier)
    assert no_h.transformation == {"q": 1}


def test_risk_thresholds_by_hand() -> None:
    """Classes of 1, 2 and 7 records (10): average risk 3/10, unique share 1/10. A threshold of
    0.25 suppresses the single record (2/9 = 0.22); 0.2 must also suppress the pair (1/7)."""
    qi = CsvHierarchy("q", [["a", "*"], ["b", "*"], ["c", "*"]])
    df = pl.DataFrame({"q": ["a"] + ["b"] * 2 + ["c"] * 7})
    r = anonymize(df, {"q": qi}, 1, 0.1, avg_risk=0.25)
    assert r.transformation == {"q": 0} and r.metrics["suppressed"] == 1
    r = anonymize(df, {"q": qi}, 1, 0.3, avg_risk=0.2)
    assert r.transformation == {"q": 0} and r.metrics["suppressed"] == 3
    r = anonymize(df, {"q": qi}, 1, 0.2, avg_risk=0.2)  # 3 records over the limit: generalize
    assert r.transformation == {"q": 1}
    r = anonymize(df, {"q": qi}, 1, 0.1, max_uniqueness=0.0)
    assert r.transformation == {"q": 0} and r.metrics["suppressed"] == 1
    r = anonymize(df, {"q": qi}, 1, 0.0, max_uniqueness=0.1)
    assert r.transformation == {"q": 0} and r.metrics["suppressed"] == 0
