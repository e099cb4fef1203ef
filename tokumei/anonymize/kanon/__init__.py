"""tokumei's k-anonymity engine: optimal full-domain generalization over persons.

ARX-style parts, each in its own module:

- :mod:`~tokumei.anonymize.kanon.encode` — columns to integer codes, hierarchies to code maps and domain
  shares (CSV and built-in hierarchies alike, through the Hierarchy protocol);
- :mod:`~tokumei.anonymize.kanon.table` — frequency tables of lattice nodes and their roll-up;
- :mod:`~tokumei.anonymize.kanon.models` — k over persons, distinct/entropy/recursive l-diversity,
  t-closeness, ARX's average-risk and uniqueness thresholds, k-map and δ-presence against a
  population table, the suppression limit;
- :mod:`~tokumei.anonymize.kanon.risk` — prosecutor, journalist and marketer risk of a release;
- :mod:`~tokumei.anonymize.kanon.metrics` — ARX's granularity loss, discernibility, class sizes, risk;
- :mod:`~tokumei.anonymize.kanon.quality` — the quality model the search minimizes (ARX's Loss,
  non-uniform entropy, discernibility, AECS, height, precision, KL divergence, granularity);
- :mod:`~tokumei.anonymize.kanon.search` — best-first lattice search with predictive tagging, for
  any quality model;
- :mod:`~tokumei.anonymize.kanon.engine` — :func:`anonymize`, the one entry point.

Example:
    >>> from tokumei.anonymize.kanon import anonymize  # doctest: +SKIP
    >>> r = anonymize(df, {"age": age_h, "sex": sex_h}, k=5, max_suppression=0.05)  # doctest: +SKIP
    >>> r.transformation, r.metrics["granularity_loss"]  # doctest: +SKIP
"""

from tokumei.anonymize.kanon.engine import KAnonResult, anonymize

__all__ = ["KAnonResult", "anonymize"]
