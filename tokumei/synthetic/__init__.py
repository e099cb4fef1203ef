"""Synthetic raw data for tokumei: the landing zone and operational DB of docs/architecture.md §3.

``generate`` writes realistic, skewed, PII-laden (on purpose) inputs so the pipeline can be
developed, tested and benchmarked without real personal data. See ``generator`` for the order
of work and ``common`` for how determinism is kept.
"""

from tokumei.synthetic.generator import GenerateSummary, generate, total_steps

__all__ = ["GenerateSummary", "generate", "total_steps"]
