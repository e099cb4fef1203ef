"""PII detection for Japanese and English text: offline Presidio, Japanese recognizers,
a vectorized Polars prefilter, column discovery and free-text scrubbing.

Import cost is kept low (no model is loaded here); engines are built on first use.
"""

from .analyzer import ALL_ENTITIES, NON_PERSONAL_ENTITIES, Finding, TokumeiAnalyzer
from .discovery import ColumnFinding, DiscoveryReport, PiiInColumnError, discover_columns
from .scrub import Scrubber, ScrubStats, scrub_values

__all__ = [
    "ALL_ENTITIES",
    "NON_PERSONAL_ENTITIES",
    "ColumnFinding",
    "DiscoveryReport",
    "Finding",
    "PiiInColumnError",
    "ScrubStats",
    "Scrubber",
    "TokumeiAnalyzer",
    "discover_columns",
    "scrub_values",
]
