"""JP_RESIDENCE_CARD: residence card number (在留カード番号), e.g. AB12345678CD."""

from __future__ import annotations

from .base import JpPatternRecognizer

_LB = r"(?<![0-9A-Za-z])"
_RB = r"(?![0-9A-Za-z])"


class JpResidenceCardRecognizer(JpPatternRecognizer):
    """Two letters, eight digits, two letters: distinctive enough to report without context."""

    ENTITY = "JP_RESIDENCE_CARD"
    PATTERNS = (("residence_card", rf"{_LB}[A-Z]{{2}}[0-9]{{8}}[A-Z]{{2}}{_RB}", 0.6),)
    CONTEXT = ("在留カード", "在留", "特別永住者", "residence card")
