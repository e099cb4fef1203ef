"""The k-anonymity engine against brute force on small random tables (hypothesis).

The reference below is written independently of the engine: plain Python over rows, every node of
the lattice, k counted as distinct persons, records of violating classes suppressed, the
suppression limit counted in persons, ARX's granularity loss. The engine must return a node that
satisfies the models and whose loss is the minimum (ties: lowest height, then lexicographic).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokumei.anonymize.hierarchy_csv import CsvHierarchy
from tokumei.anonymize.kanon import anonymize


class Searched(NamedTuple):
    """The search's pick on a brute-forced problem: result, node, whether it is the top node,
    and the published rows (the records of classes not suppressed to ``*``)."""

    result: Any
    node: tuple[int, ...]
    top: bool
    kept: pl.DataFrame


def search_against_brute_force(
    p: dict, acceptable: Callable[[dict, tuple[int, ...]], bool], kw: dict
) -> Searched | None:
    """Every node of the lattice: the engine accepts it exactly when the reference
    ``acceptable`` does, and the search picks the accepted node of least loss. None when no
    node is acceptable (the search must then refuse). Shared by the privacy-model tests."""
    cols = list(p["qis"])
    args = (p["df"], p["qis"], p["k"], p["limit"])
    losses = {}
    for node in itertools.product(*(range(p["qis"][c].levels) for c in cols)):
        ref = acceptable(p, node)
        try:
            r = anonymize(*args, transformation=dict(zip(cols, node, strict=True)), **kw)
        except ValueError as exc:
            assert "suppresses" in str(exc)
            assert not ref, f"engine refuses {node}, the reference accepts it"
            continue
        assert ref, f"engine accepts {node}, the reference refuses it"
        losses[node] = r.metrics["granularity_loss"]
    if not losses:
        with pytest.raises(ValueError, match="no transformation satisfies"):
            anonymize(*args, **kw)
        return None
    r = anonymize(*args, **kw)
    node = tuple(r.transformation.values())
    assert node in losses
    assert losses[node] <= min(losses.values()) + 1e-9
    top = all(r.transformation[c] == p["qis"][c].levels - 1 for c in cols)
    starred = pl.all_horizontal(pl.col(c) == "*" for c in cols)
    return Searched(r, node, top, r.frame if top else r.frame.filter(~starred))


@st.composite
def hierarchies(draw: st.DrawFn, name: str) -> CsvHierarchy:
    """A random monotone hierarchy: leaves merged into coarser groups level by level, then ``*``."""
    n_leaves = draw(st.integers(2, 5))
    n_mid = draw(st.integers(0, 2))
    rows = [[f"{name}{i}"] for i in range(n_leaves)]
    current = [r[0] for r in rows]
    for lvl in range(n_mid):
        groups = {v: f"{name}L{lvl + 1}g{draw(st.integers(0, 2))}" for v in sorted(set(current))}
        current = [groups[v] for v in current]
        for r, v in zip(rows, current, strict=True):
            r.append(v)
    for r in rows:
        r.append("*")
    return CsvHierarchy(name, rows)


@st.composite
def problems(draw: st.DrawFn) -> dict:
    n_q = draw(st.integers(1, 3))
    hs = {f"q{i}": draw(hierarchies(f"q{i}")) for i in range(n_q)}
    n_rows = draw(st.integers(1, 30))
    persons = draw(st.one_of(st.none(), st.integers(1, 12)))
    data: dict[str, list] = {
        c: [h.domain[draw(st.integers(0, len(h.domain) - 1))] for _ in range(n_rows)]
        for c, h in hs.items()
    }
    if persons is not None:
        data["pid"] = [f"p{draw(st.integers(0, persons - 1))}" for _ in range(n_rows)]
    sensitive = None
    if draw(st.booleans()):
        data["s"] = [f"s{draw(st.integers(0, 2))}" for _ in range(n_rows)]
        sensitive = {"s": draw(st.integers(1, 3))}
    return {
        "df": pl.DataFrame(data),
        "qis": hs,
        "k": draw(st.integers(1, 5)),
        "limit": draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0])),
        "person_col": "pid" if persons is not None else None,
        "sensitive": sensitive,
    }


def brute_force(p: dict) -> tuple[tuple[int, ...], float, dict] | None:
    df: pl.DataFrame = p["df"]
    hs: dict[str, CsvHierarchy] = p["qis"]
    cols = list(hs)
    rows = df.to_dicts()
    pid = [r[p["person_col"]] if p["person_col"] else i for i, r in enumerate(rows)]
    n_persons = len(set(pid))
    max_supp = math.floor(p["limit"] * n_persons + 1e-9)
    tables = {c: {r[0]: r for r in h.table.rows()} for c, h in hs.items()}
    shares = {}
    for c, h in hs.items():
        shares[c] = []
        for lvl in range(h.levels):
            counts: dict[str, int] = defaultdict(int)
            for r in h.table.rows():
                counts[r[lvl]] += 1
            shares[c].append({v: n / h.table.height for v, n in counts.items()})
    floor = sum(1 / hs[c].table.height for c in cols) / len(cols)
    best = None
    for node in itertools.product(*(range(hs[c].levels) for c in cols)):
        gen = [tuple(tables[c][r[c]][lvl] for c, lvl in zip(cols, node, strict=True)) for r in rows]
        members: dict[tuple, list[int]] = defaultdict(list)
        for i, g in enumerate(gen):
            members[g].append(i)
        bad_rows: set[int] = set()
        for idx in members.values():
            ok = len({pid[i] for i in idx}) >= p["k"]
            for s, lv in (p["sensitive"] or {}).items():
                ok &= len({rows[i][s] for i in idx}) >= lv
            if not ok:
                bad_rows.update(idx)
        supp_persons = len({pid[i] for i in bad_rows})
        if supp_persons > max_supp:
            continue
        total = sum(
            len(cols)
            if i in bad_rows
            else sum(
                shares[c][lvl][g[j]] for j, (c, lvl) in enumerate(zip(cols, node, strict=True))
            )
            for i, g in enumerate(gen)
        )
        loss = max(0.0, (total / (len(cols) * len(rows)) - floor) / (1 - floor)) if floor < 1 else 0
        key = (round(loss, 9), sum(node), node)
        if best is None or key < best[0]:
            kept = [m for g, m in members.items() if not set(m) & bad_rows]
            best = (key, node, loss, {"suppressed": supp_persons, "classes": len(kept)})
    return None if best is None else best[1:]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_optimum_matches_brute_force(p: dict) -> None:
    expected = brute_force(p)
    if expected is None:
        with pytest.raises(ValueError, match="no transformation satisfies"):
            anonymize(p["df"], p["qis"], p["k"], p["limit"], p["person_col"], p["sensitive"])
        return
    node, loss, facts = expected
    r = anonymize(p["df"], p["qis"], p["k"], p["limit"], p["person_col"], p["sensitive"])
    assert tuple(r.transformation.values()) == node
    assert r.metrics["granularity_loss"] == pytest.approx(loss, abs=1e-9)
    assert r.metrics["suppressed"] == facts["suppressed"]
    assert r.metrics["classes"] == facts["classes"]
    check_output(r, p)


def check_output(r, p: dict) -> None:  # noqa: ANN001
    """The published records: every surviving class has k persons (and l values), the records
    that are all ``*`` are the suppressed ones (unless the optimum is the all-``*`` node), and
    their persons are within the limit."""
    frame: pl.DataFrame = r.frame
    cols = list(p["qis"])
    assert frame.height == p["df"].height
    assert frame.columns == p["df"].columns
    person = p["person_col"]
    frame = frame.with_row_index("__row")
    pid = pl.col(person) if person else pl.col("__row")
    starred = pl.all_horizontal(pl.col(c) == "*" for c in cols)
    kept = frame.filter(~starred)
    if kept.height:
        per_class = kept.group_by(cols).agg(
            pid.n_unique().alias("__n"),
            *(pl.col(s).n_unique().alias(s) for s in (p["sensitive"] or {})),
        )
        assert per_class["__n"].min() >= p["k"]
        for s, lv in (p["sensitive"] or {}).items():
            assert per_class[s].min() >= lv
    top = all(r.transformation[c] == p["qis"][c].levels - 1 for c in cols)
    if not top:
        n_persons = frame.select(pid.n_unique()).item()
        supp = frame.filter(starred).select(pid.n_unique()).item()
        assert supp == r.metrics["suppressed"]
        assert supp <= math.floor(p["limit"] * n_persons + 1e-9)
