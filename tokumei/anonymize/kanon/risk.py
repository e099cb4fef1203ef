"""Prosecutor, journalist and marketer re-identification risk of a released sample.

ARX's definitions (``org.deidentifier.arx.risk.RiskModelSampleSummary``), over equivalence
classes whose sizes here count distinct *persons*, not rows: ``f_j`` persons of class ``j`` in
the release, ``F_j`` persons of the population who share the class's (generalized) values,
``n = Σ f_j`` and ``c`` the number of classes. With a person column a person in two classes is
counted in both (an attacker may target either record set), so ``n`` counts person-class pairs.

- **prosecutor** (the attacker knows the target is in the release): highest ``1/min f_j``,
  lowest ``1/max f_j``, success rate ``c / n``; records at risk: the ``f_j`` of classes with
  ``1/f_j > threshold``;
- **journalist** (the target is somewhere in the population): highest ``1/min F_j``, lowest
  ``1/max F_j``, success rate ``max(c / Σ F_j, Σ (f_j/F_j) / n)``, records at risk as above
  with ``F_j``;
- **marketer** (re-identify as many as possible): success rate ``Σ (f_j/F_j) / n``.

Without a population ARX uses the sample itself (``F = f``): journalist equals prosecutor and
the marketer rate is ``c / n``. ARX's sample-only *estimates* (``RiskModelSampleRisks``) are
the prosecutor figures above.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def risk_summary(
    sample: np.ndarray, population: np.ndarray | None = None, threshold: float = 0.1
) -> dict[str, Any]:
    """The three attacker models for class sizes ``sample`` (``f_j``) and ``population``
    (``F_j``, aligned; ``None``: the sample is the population).

    ``threshold``: the highest acceptable risk of one record (ARX's ``t``); the records at
    risk are counted, not shared, so the caller decides how a share of them is printed.
    """
    f = np.asarray(sample, dtype=np.float64)
    big_f = f if population is None else np.asarray(population, dtype=np.float64)
    if f.shape != big_f.shape:
        raise ValueError("sample and population class sizes must be aligned")
    if (f < 1).any() or (big_f < f).any():
        raise ValueError("every class needs 1 <= persons in the release <= persons in population")
    empty = {"highest": 0.0, "lowest": 0.0, "average": 0.0, "records_at_risk": 0}
    if len(f) == 0:
        return {
            "threshold": threshold,
            "records": 0,
            "prosecutor": dict(empty),
            "journalist": dict(empty),
            "marketer": {"average": 0.0},
        }
    n = float(f.sum())
    c = float(len(f))
    ratio = float((f / big_f).sum()) / n
    return {
        "threshold": threshold,
        "records": int(n),
        "prosecutor": {
            "highest": float(1.0 / f.min()),
            "lowest": float(1.0 / f.max()),
            "average": c / n,
            "records_at_risk": int(f[1.0 / f > threshold].sum()),
        },
        "journalist": {
            "highest": float(1.0 / big_f.min()),
            "lowest": float(1.0 / big_f.max()),
            "average": max(c / float(big_f.sum()), ratio),
            "records_at_risk": int(f[1.0 / big_f > threshold].sum()),
        },
        "marketer": {"average": ratio},
    }
