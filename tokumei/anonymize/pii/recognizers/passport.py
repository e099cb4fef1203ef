"""JP_PASSPORT: Japanese passport number, two capital letters and seven digits (TK1234567)."""

from __future__ import annotations

from .base import JpPatternRecognizer

_LB = r"(?<![0-9A-Za-z])"
_RB = r"(?![0-9A-Za-z])"


class JpPassportRecognizer(JpPatternRecognizer):
    """Passport numbers; product codes of the same shape are dropped by negative context."""

    ENTITY = "JP_PASSPORT"
    PATTERNS = (("passport", rf"{_LB}[A-Z]{{2}}[0-9]{{7}}{_RB}", 0.4),)
    CONTEXT = ("旅券", "パスポート", "passport")
    NEGATIVE_CONTEXT = ("型番", "品番", "商品", "注文", "sku", "model", "order", "item")
