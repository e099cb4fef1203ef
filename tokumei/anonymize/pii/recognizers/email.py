"""EMAIL: e-mail addresses that work inside Japanese text (no ``\\b``), TLD checked offline.

Presidio's EmailRecognizer calls ``tldextract.extract``, which downloads the public-suffix list
on first use. We validate the top-level domain with tldextract's bundled snapshot instead
(``suffix_list_urls=()``, no cache directory), so nothing is fetched.

Internationalized domains are matched both as written in punycode (``a@xn--d1acufc.xn--p1ai``,
whose top-level label has digits and hyphens) and in Unicode letters of alphabetic scripts
(``user@пример.рф``). Kana and kanji are never part of a domain here: in Japanese text the
character after an address is usually a particle (``taro@example.comまで``), so a Japanese
IDN (``info@例え.jp``) is not matched.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract

from .base import JpPatternRecognizer

# Practical local part (no '/', '?', '=' ...): RFC-legal but in logs those belong to URLs.
_LOCAL = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
#: A letter or digit of a domain label: ASCII, or a Unicode letter outside the Japanese scripts.
_LABEL_CH = r"(?:[A-Za-z0-9]|(?![\p{Han}\p{Hiragana}\p{Katakana}ー々])[\p{L}\p{M}])"
_LABEL = rf"{_LABEL_CH}(?:(?:{_LABEL_CH}|-){{0,61}}{_LABEL_CH})?"
_TLD = rf"(?:xn--[A-Za-z0-9-]{{1,59}}[A-Za-z0-9]|(?:(?![A-Za-z0-9]){_LABEL_CH}|[A-Za-z]){{2,24}})"
_DOMAIN = rf"(?:{_LABEL}\.)+{_TLD}"
EMAIL_REGEX = rf"(?<![A-Za-z0-9._%+-]){_LOCAL}@{_DOMAIN}(?![A-Za-z0-9-])(?!{_LABEL_CH})"


@lru_cache(maxsize=1)
def offline_tld_extractor() -> tldextract.TLDExtract:
    """tldextract on its bundled public-suffix snapshot: no URL to fetch, no cache to write."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class JpEmailRecognizer(JpPatternRecognizer):
    """E-mail addresses; the domain must end in a known public suffix."""

    ENTITY = "EMAIL_ADDRESS"
    PATTERNS = (("email", EMAIL_REGEX, 0.5),)
    CONTEXT = ("メール", "mail", "e-mail", "連絡先")

    def validate_result(self, pattern_text: str) -> bool:
        """True when the domain has a registrable public suffix."""
        return has_public_suffix(pattern_text.rsplit("@", 1)[1])


@lru_cache(maxsize=8192)
def has_public_suffix(domain: str) -> bool:
    """Whether ``domain`` ends in a public suffix (cached: domains repeat across addresses)."""
    return bool(offline_tld_extractor()(domain).suffix)
