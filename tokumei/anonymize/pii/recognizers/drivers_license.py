"""JP_DRIVERS_LICENSE: 12-digit driver's licence number, reported only with context.

Twelve plain digits are also what a My Number, an order number or a tracking number looks like,
so the licence recognizer requires a licence word nearby (運転免許, 免許証, licence ...).
"""

from __future__ import annotations

from .base import LB, RB, JpPatternRecognizer

SEP = "[-‐‑‒–—―−ー ]"


class JpDriversLicenseRecognizer(JpPatternRecognizer):
    """Context-gated 12-digit licence numbers (plain or 4-4-4 / 2-2-6-1-1 grouped)."""

    ENTITY = "JP_DRIVERS_LICENSE"
    PATTERNS = (("drivers_license", rf"{LB}[0-9]{{4}}{SEP}?[0-9]{{4}}{SEP}?[0-9]{{4}}{RB}", 0.6),)
    CONTEXT = (
        "運転免許",
        "免許証",
        "免許番号",
        "driver's licen",
        "drivers licen",
        "driver licen",
        "driving licen",
    )
    CONTEXT_REQUIRED = True
    WINDOW_BEFORE = 30
