"""JP_CORPORATE_NUMBER: the 13-digit corporate number (法人番号), also as invoice 'T' number.

Reported as its own entity so that it is never mistaken for a My Number; corporate numbers are
public, so the scrubber leaves them in place unless asked (see ``NON_PERSONAL_ENTITIES``).
"""

from __future__ import annotations

from stdnum.jp import cn

from .base import RB, JpPatternRecognizer, digits_only

SEP = "[-‐‑‒–—―−ー ]"
_LB = r"(?<![0-9A-Za-z])"


class JpCorporateNumberRecognizer(JpPatternRecognizer):
    """Corporate number: 13 digits (optionally 1-4-4-4, optionally 'T'-prefixed), stdnum check."""

    ENTITY = "JP_CORPORATE_NUMBER"
    PATTERNS = (
        (
            "corporate_number",
            rf"{_LB}T?[0-9]{SEP}?[0-9]{{4}}{SEP}?[0-9]{{4}}{SEP}?[0-9]{{4}}{RB}",
            0.5,
        ),
    )
    CONTEXT = ("法人番号", "登録番号", "corporate number", "インボイス", "適格請求書")

    def validate_result(self, pattern_text: str) -> bool:
        """True only for a valid corporate-number check digit."""
        return bool(cn.is_valid(digits_only(pattern_text)))
