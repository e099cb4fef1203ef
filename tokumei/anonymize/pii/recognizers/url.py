"""URL: http(s)/ftp URLs and www. hosts, stopping at the first non-ASCII character.

Presidio's URL regex needs a word boundary and swallows following kana; here the URL ends
where URL characters end, and trailing sentence punctuation is not part of it.
"""

from __future__ import annotations

import regex

from .base import JpPatternRecognizer

_CH = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
_END = r"[A-Za-z0-9\-_~/#=&%+]"
URL_REGEX = rf"(?<![A-Za-z0-9])(?:(?:https?|ftp)://|www\.){_CH}*{_END}"


class JpUrlRecognizer(JpPatternRecognizer):
    """URLs inside Japanese or English text."""

    ENTITY = "URL"
    PATTERNS = (("url", URL_REGEX, 0.6),)
    CONTEXT = ("url", "リンク", "サイト", "http")
    FLAGS = regex.IGNORECASE  # 'HTTPS://' and 'WWW.' too

    def validate_result(self, pattern_text: str) -> bool | None:
        """A URL needs a host with a dot after the scheme."""
        rest = pattern_text.split("://", 1)[-1]
        host = rest.split("/", 1)[0]
        return "." in host or None
