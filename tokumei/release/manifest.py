"""The run manifest (docs/architecture.md §5): what ran, on what, and whether the books balance.

Only names, counts, versions and outcomes go in; never a data value and never a key. A test
scans every manifest for planted PII to keep it so.
"""

from __future__ import annotations

import functools
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


@functools.cache
def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        v = version("tokumei")
    except PackageNotFoundError:  # pragma: no cover
        v = "unknown"
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{v}+g{sha}" if sha else v
    except (OSError, subprocess.SubprocessError):
        return v


def build_manifest(
    *,
    run_id: str,
    day: str,
    policy_version: str,
    sources: dict[str, dict[str, int]],
    outputs: dict[str, dict[str, Any]],
    steps: dict[str, Any],
    status: str,
    reason: str | None = None,
    anonymized: dict[str, Any] | None = None,
    disclosure: dict[str, Any] | None = None,
    privacy_budget: dict[str, Any] | None = None,
    partial: list[str] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest dict (JSON-ready).

    ``partial``: why the landing was incomplete when the run was told to go on anyway
    (``--allow-incomplete``, docs/landing.md); the release says so at its top, and the days of
    a partial release hold back the weekly and monthly tables that would include them.
    """
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "date": day,
        "policy_version": policy_version,
        "code_version": code_version(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "outputs": outputs,
        "steps": steps,
        "status": status,
    }
    if partial:
        manifest["partial"] = True
        manifest["partial_reasons"] = list(partial)
        if reason is None:
            reason = "partial release (--allow-incomplete): " + "; ".join(partial)
    if reason is not None:
        manifest["reason"] = reason
    if anonymized is not None:
        manifest["anonymized"] = anonymized
    if disclosure is not None:
        manifest["disclosure"] = disclosure
    if privacy_budget is not None:
        manifest["privacy_budget"] = privacy_budget
    return manifest


# --------------------------------------------------------------------------------------------
# printed counts: the one rounding rule of every count the manifest and the reports print

#: Rounding base of the row and record counts a release prints (the books per source,
#: quarantine and rights exclusions, scrub and DB row counts, withheld records). The books are
#: checked exactly in code before anything is written (steps._accounting); what is printed
#: only has to tell an operator the size of the flow, and 100 rows hide any one person's rows
#: (a person has at most a few dozen measurements or a few hundred events a day, and the
#: attacker's interval is the whole rounding band, see :func:`printed_interval`).
ROW_BASE = 100

#: Where a printed count came from; the base of a person count is the policy's ``min_cell``.
PRINTED_RULE = (
    "0 is printed as 0; a count from 1 to base-1 as the text '< base'; any other count "
    "rounded half up to a multiple of base. Row and record counts use base 100, person counts "
    "the policy's min_cell. Exact counts stay in the run's internal records (deleted)."
)


def printed_count(n: int, base: int) -> int | str:
    """How a count of persons or rows is printed: 0, ``"< base"``, or rounded half up.

    No printed count is below ``base`` except an exact 0 (issue 15: "9 persons suppressed"
    printed in a manifest is itself a small cell). ``base`` must be at least the threshold.

    >>> [printed_count(n, 10) for n in (0, 1, 9, 10, 14, 15, 1234)]
    [0, '< 10', '< 10', 10, 10, 20, 1230]
    """
    n = int(n)
    if n < 0:
        raise ValueError("a printed count cannot be negative")
    if n == 0:
        return 0
    if n < base:
        return f"< {base}"
    return base * ((2 * n + base) // (2 * base))


def printed_interval(printed: int | str, base: int) -> tuple[int, int]:
    """The true counts (inclusive) a value printed by :func:`printed_count` stands for.

    What an attacker holding the printed value knows; the release-wide linear system
    (tokumei/stats/disclosure/) models a printed count as this interval.

    >>> [printed_interval(v, 10) for v in (0, "< 10", 10, 20)]
    [(0, 0), (1, 9), (10, 14), (15, 24)]
    """
    if isinstance(printed, str):
        if printed.strip() != f"< {base}":
            raise ValueError(f"not a printed count of base {base}: {printed!r}")
        return (1, base - 1)
    v = int(printed)
    if v == 0:
        return (0, 0)
    if v % base:
        raise ValueError(f"{v} is not a multiple of base {base}")
    return (max(base, v - base // 2), v + (base + 1) // 2 - 1)


def printed_share(part: int, whole: int, base: int) -> float | str:
    """A share of two hidden counts as printed: a function of their *printed* values only.

    A share printed to 4 decimals next to a rounded total gives the part back (21 withheld of
    15,198 records is 0.0014; issue 15). Computed from :func:`printed_count` of both, the share
    tells nothing the two printed counts do not, so no count below ``base`` can be derived:
    0 -> 0.0; a part printed ``"< base"`` -> ``"< x"`` with x the largest share the printed
    values allow; a whole below ``base`` -> ``"> 0"``; else the ratio of the printed values to
    2 decimals.

    >>> [printed_share(p, w, 100) for p, w in ((0, 40), (21, 15198), (40, 40), (3000, 15198))]
    [0.0, '< 0.01', '> 0', 0.2]
    """
    import math

    if part < 0 or whole < part:
        raise ValueError("a share needs 0 <= part <= whole")
    pp, pw = printed_count(part, base), printed_count(whole, base)
    if pp == 0:
        return 0.0
    if isinstance(pw, str):
        return "> 0"
    if isinstance(pp, str):
        lo_w = printed_interval(pw, base)[0]
        return f"< {min(1.0, math.ceil(100 * base / lo_w) / 100):.2f}"
    return round(int(pp) / int(pw), 2)


#: Shares of hidden record counts in the record step's account: share -> (part, whole). Printed
#: by :func:`printed_share` from the two counts of the same record (rows base).
_SHARES_OF_COUNTS = {
    "withheld_records_share": ("withheld_records", "input_records"),
    "bounded_records_share": ("bounded_records", "input_records"),
    "kept_records_share": ("kept_records", "input_records"),
}
#: Largest share of one person in a class (the published records have no person column): an
#: upper bound in steps of :data:`PERSON_SHARE_STEP`, so share x class records gives no
#: person's exact record count (it is at most the policy's per-person bound anyway).
_PERSON_SHARES = frozenset({"max_person_share", "mean_max_person_share"})
PERSON_SHARE_STEP = 0.05
#: Ratios computable from the published files themselves (records of a value, distance of a
#: class's published mix) or of published facts (1 / smallest class): printed as they are.
_PUBLISHED_RATIOS = frozenset({"other_share", "max_class_distance", "max_risk", "granularity_loss"})


def _print_share(key: str, value: float, siblings: dict[str, Any], base: int) -> float | str:
    """A float of a count section: its printed form, or an error if no rule covers it."""
    import math

    if key in _SHARES_OF_COUNTS:
        part, whole = _SHARES_OF_COUNTS[key]
        if not isinstance(siblings.get(part), int) or not isinstance(siblings.get(whole), int):
            raise ValueError(
                f"manifest: share {key!r} printed without its counts {part!r}, {whole!r}"
            )
        return printed_share(siblings[part], siblings[whole], base)
    if key in _PERSON_SHARES:
        return min(1.0, math.ceil(value / PERSON_SHARE_STEP - 1e-9) * PERSON_SHARE_STEP)
    if key in _PUBLISHED_RATIOS or not key.endswith(("_share", "_rate")):
        return value
    # fail closed: a new share of a hidden count must say how it prints
    raise ValueError(f"manifest: no printed-count rule for the share {key!r} (manifest.py)")


#: Keys whose integers are not counts of persons or rows, or are counts the published files
#: already show (cells of a table, records of a published file, classes of those records).
_NOT_A_HIDDEN_COUNT = frozenset(
    {
        "files",
        "partitions",
        "rows_published",
        "classes",
        "min_class_size",
        "min_class_persons",
        "l",
        "max_records_per_person_class",
        "k_min",
        "k",
        "level",
        "cells",
        "suppressed_cells",
        "min_width",
        "required_width",
        "rounding_base",
        "kept_hidden_from_previous_release",
        "complementary_cells",
        "distinct_values",  # of url_template: countable in the published records
        "seconds",
    }
)
#: Subtrees without counts: generalization levels per quasi-identifier, the lattice search.
_NOT_COUNTS_BELOW = frozenset({"transformation", "search"})

#: Keys whose integers count persons (printed with base ``min_cell``); other counts are rows.
_PERSON_KEYS = frozenset(
    {
        "suppressed",
        "suppressed_persons",
        "excluded_persons",
        "persons",
        "withheld_persons",
        "min_value_persons",
    }
)

#: Class sizes of a record-level release are printed in these bins (persons), never exactly.
SIZE_BINS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def _print_tree(obj: Any, key: str, min_cell: int) -> Any:
    """Every int under ``obj`` printed by the rule, except the keys of published facts."""
    if key in _NOT_COUNTS_BELOW:
        return obj
    if isinstance(obj, dict):
        base = max(ROW_BASE, min_cell)
        return {
            k: _print_share(str(k), v, obj, base)
            if isinstance(v, float)
            else _print_tree(v, str(k), min_cell)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_print_tree(v, key, min_cell) for v in obj]
    if isinstance(obj, bool) or not isinstance(obj, int) or key in _NOT_A_HIDDEN_COUNT:
        return obj
    return printed_count(obj, min_cell if key in _PERSON_KEYS else max(ROW_BASE, min_cell))


def binned_sizes(histogram: list[list[int]], min_cell: int) -> list[list[int | str]]:
    """``[[size, classes], ...]`` as ``[[size band, classes], ...]`` over :data:`SIZE_BINS`.

    The number of classes is visible in the published records; their exact sizes in persons
    are not, and a class of exactly 11 persons next to a table cell is a small difference.
    """
    edges = sorted({min_cell, *(b for b in SIZE_BINS if b > min_cell)})
    out: list[list[int | str]] = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        n = sum(c for s, c in histogram if s >= lo and (hi is None or s < hi))
        if n:
            out.append([f"{lo:,}+" if hi is None else f"{lo:,}–{hi - 1:,}", n])
    below = sum(c for s, c in histogram if s < min_cell)
    if below:  # never expected (k >= min_cell); shown as a band so it cannot pass unnoticed
        out.insert(0, [f"< {min_cell}", below])
    return out


def printed_risk(r: float) -> float:
    """A re-identification risk as printed: rounded *up* to two significant digits (never
    understated; ``c / n`` to more digits would give the hidden person-class count ``n``).

    >>> [printed_risk(r) for r in (0.0, 0.1, 1 / 12, 3 / 107, 1.0)]
    [0.0, 0.1, 0.084, 0.029, 1.0]
    """
    import math

    if r <= 0:
        return 0.0
    e = math.floor(math.log10(r)) - 1
    return min(1.0, round(math.ceil(r / 10**e - 1e-9) * 10**e, 12))


def printed_risks(risk: dict[str, Any], base: int) -> dict[str, Any]:
    """``reidentification_risk`` of a record release (tokumei/anonymize/kanon/risk.py) as
    printed: every risk by :func:`printed_risk`, records at risk as :func:`printed_share` of
    the person-class count ``records`` (which is not printed)."""
    n = int(risk.get("records", 0))
    out: dict[str, Any] = {"threshold": printed_risk(float(risk.get("threshold", 0.0)))}
    for model in ("prosecutor", "journalist", "marketer"):
        rec = risk.get(model) or {}
        printed: dict[str, Any] = {
            k: printed_risk(float(v)) for k, v in rec.items() if k != "records_at_risk"
        }
        if "records_at_risk" in rec:
            printed["records_at_risk_share"] = printed_share(int(rec["records_at_risk"]), n, base)
        out[model] = printed
    return out


def public_manifest(manifest: dict[str, Any], min_cell: int) -> dict[str, Any]:
    """The manifest as published: every count of persons or rows printed by the rule.

    The sections that hold counts of the flow (``sources``, ``steps``, ``anonymized`` and the
    record-level entries of ``outputs``) go through :func:`printed_count`; class sizes are
    binned (:func:`binned_sizes`); the statistics tables' entries (cells, widths, published
    minima) are facts of the published files and stay as they are. Fail closed: an integer
    under an unknown key in those sections is treated as a count of rows.
    """
    out = dict(manifest)
    for section in ("sources", "steps"):
        if section in out:
            out[section] = _print_tree(out[section], section, min_cell)
    anon = out.get("anonymized")
    if isinstance(anon, dict):
        anon = dict(anon)
        hist = anon.pop("class_size_histogram", None)
        risk = anon.pop("reidentification_risk", None)
        if "rows" in anon:
            anon["rows_published"] = anon.pop("rows")
        anon = _print_tree(anon, "anonymized", min_cell)
        for k in ("mean_risk",):  # classes / persons: would give the exact persons count
            if isinstance(anon.get(k), float):
                anon[k] = float(f"{anon[k]:.2g}")
        if hist:
            anon["class_size_histogram"] = binned_sizes(hist, min_cell)
        if isinstance(risk, dict):
            anon["reidentification_risk"] = printed_risks(risk, max(ROW_BASE, min_cell))
        out["anonymized"] = anon
    outputs = dict(out.get("outputs") or {})
    for name, rec in outputs.items():
        if not name.startswith("stats/") and isinstance(rec, dict):
            rows = rec.get("rows")
            printed = _print_tree({k: v for k, v in rec.items() if k != "rows"}, name, min_cell)
            outputs[name] = {**printed, **({"rows": rows} if rows is not None else {})}
    if outputs:
        out["outputs"] = outputs
    out["printed_counts"] = {
        "row_base": max(ROW_BASE, min_cell),
        "person_base": min_cell,
        "rule": PRINTED_RULE,
    }
    return out


def known_interval(n: int, base: int = ROW_BASE) -> tuple[int, int]:
    """What a reader of the manifest knows about an exact count ``n`` printed with ``base``.

    The disclosure audit's system models a printed count with this interval (e.g. the kept
    rows of a source bound the sum of a table's counts from above by the upper end).

    >>> known_interval(5), known_interval(1234), known_interval(0)
    ((1, 99), (1150, 1249), (0, 0))
    """
    return printed_interval(printed_count(n, base), base)
