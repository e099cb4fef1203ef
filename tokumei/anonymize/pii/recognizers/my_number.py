"""JP_MY_NUMBER: the 12-digit Individual Number (マイナンバー), check digit validated.

The check digit (python-stdnum ``stdnum.jp.in_``) rejects 10 of 11 random 12-digit numbers;
the remaining look-alikes (order or tracking numbers) are dropped by negative context. A
13-digit corporate number never matches: the boundaries forbid a 13th adjacent digit.
"""

from __future__ import annotations

from stdnum.jp import in_

from .base import LB, RB, JpPatternRecognizer, digits_only

SEP = "[-‐‑‒–—―−ー ]"


class JpMyNumberRecognizer(JpPatternRecognizer):
    """Individual Number: 4-4-4 with optional separators, stdnum check digit."""

    ENTITY = "JP_MY_NUMBER"
    PATTERNS = (("my_number", rf"{LB}[0-9]{{4}}{SEP}?[0-9]{{4}}{SEP}?[0-9]{{4}}{RB}", 0.5),)
    CONTEXT = ("マイナンバー", "個人番号", "my number", "mynumber", "individual number")
    NEGATIVE_CONTEXT = (
        "注文",
        "伝票",
        "追跡",
        "問い合わせ番号",
        "問合せ番号",
        "受付番号",
        "会員番号",
        "免許",
        "口座",
        "order",
        "tracking",
        "invoice",
        "licen",
    )

    def validate_result(self, pattern_text: str) -> bool:
        """True only for a valid Individual Number check digit."""
        return bool(in_.is_valid(digits_only(pattern_text)))
