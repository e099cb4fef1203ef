"""JP_PHONE: Japanese mobile, landline, toll-free and +81 numbers, validated by phonenumbers.

The regex only proposes 10/11-digit sequences starting with 0 (or +81) with at most two
separator characters between digits; ``phonenumbers`` (offline metadata) decides whether the
number exists in the Japanese numbering plan, which rejects dates and most order numbers.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from .base import HYPHENS, JpPatternRecognizer, digits_only

_S = f"[{HYPHENS} .()]"
_LB = r"(?<![0-9A-Za-z+])"
_RB = rf"(?![0-9A-Za-z])(?![{HYPHENS}][0-9])"
_PREFIX = rf"(?:\+81 ?[{HYPHENS}]? ?(?:\(0\) ?)?|\(?0)"
PHONE_REGEX = rf"{_LB}{_PREFIX}[0-9](?:{_S}{{0,2}}[0-9]){{8,9}}{_RB}"


class JpPhoneRecognizer(JpPatternRecognizer):
    """Phone numbers as written in Japan (ハイフンあり/なし, 全角, +81)."""

    ENTITY = "JP_PHONE"
    PATTERNS = (("jp_phone", PHONE_REGEX, 0.4),)
    CONTEXT = ("電話", "tel", "携帯", "phone", "fax", "連絡先", "call", "mobile")
    NEGATIVE_CONTEXT = ("注文番号", "伝票番号", "追跡番号", "order no", "tracking")

    def validate_result(self, pattern_text: str) -> bool:
        """Valid number in the Japanese numbering plan (phonenumbers metadata, offline)."""
        text = pattern_text.strip()
        digits = digits_only(text)
        if text.startswith("+"):
            national = digits[2:]
            if national.startswith("0"):  # '+81 (0)3 ...' style
                national = national[1:]
        else:
            national = digits[1:]  # drop the trunk prefix 0
        if not national or national.startswith("0"):
            return False
        return valid_jp_national(national)


@lru_cache(maxsize=8192)
def valid_jp_national(national: str) -> bool:
    """Whether ``national`` (the digits after the trunk 0 or +81) is a number of the Japanese
    numbering plan. Cached: ``PHONE_NUMBER`` asks the same for every 0-led candidate
    (``international_phone._is_japanese``), and JP's metadata makes this the costly part.

    The digits are already extracted: the number is built directly instead of paying for
    ``phonenumbers.parse`` (half the cost of a candidate)."""
    number = phonenumbers.PhoneNumber(country_code=81, national_number=int(national))
    return bool(phonenumbers.is_valid_number_for_region(number, "JP"))
