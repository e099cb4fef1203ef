"""CREDIT_CARD: 14-19 digit card numbers, Luhn checked, working inside Japanese text.

Thirteen-digit (legacy Visa) numbers are not matched on purpose: a 13-digit string in Japanese
data is far more often a corporate number, and one in ten of those would pass Luhn.
"""

from __future__ import annotations

from stdnum import luhn

from .base import LB, RB, JpPatternRecognizer, digits_only

_S = "[- ]"


class JpCreditCardRecognizer(JpPatternRecognizer):
    """Card numbers, contiguous or grouped 4-4-4-4(-3) / 4-6-5 / 4-6-4, Luhn validated."""

    ENTITY = "CREDIT_CARD"
    PATTERNS = (
        ("card_plain", rf"{LB}[1-6][0-9]{{13,18}}{RB}", 0.3),
        ("card_4444", rf"{LB}[1-6][0-9]{{3}}{_S}[0-9]{{4}}{_S}[0-9]{{4}}{_S}[0-9]{{2,7}}{RB}", 0.3),
        ("card_465", rf"{LB}3[0-9]{{3}}{_S}[0-9]{{6}}{_S}[0-9]{{4,5}}{RB}", 0.3),
    )
    CONTEXT = ("カード", "クレジット", "card", "visa", "master", "jcb", "amex")
    NEGATIVE_CONTEXT = ("注文番号", "伝票番号", "追跡番号", "order no", "tracking")

    def validate_result(self, pattern_text: str) -> bool:
        """Luhn checksum over the digits."""
        digits = digits_only(pattern_text)
        return 14 <= len(digits) <= 19 and bool(luhn.is_valid(digits))
