"""URL: http(s)/ftp URLs, www. hosts and scheme-less domains, stopping at the first non-ASCII
character.

Presidio's URL regex needs a word boundary and swallows following kana; here the URL ends
where URL characters end, and trailing sentence punctuation is not part of it.

What Presidio's own URL tests asked for (``tests/data/presidio_cases``), and how:

* scheme-less domains (``microsoft.com``, ``google.co.il``): labels, then a top-level label;
  ``validate_result`` wants a registrable domain under a public suffix of tldextract's bundled
  list (offline; the list also knows ``co.il`` and punycode suffixes), or a multi-label
  suffix that is a site itself (``ishikawa.jp``). Presidio keeps a fixed
  list of about 500 TLDs in its regex; the public-suffix list is the maintained one.
* no host without a registrable domain: ``http://microsoft`` and ``www.microsoft`` are not
  URLs (``.microsoft`` is a brand TLD, but ``www.<suffix>`` is nobody's host); a host that is an
  IP address is one (``http://192.168.0.1/admin``).
* a URL in quotes is reported with its quotes, as Presidio does (``"https://..."``).
* internationalized hosts: punycode (``http://xn--d1acufc.xn--p1ai/``, also without a
  scheme) and, after a scheme, Unicode letters of alphabetic scripts (``https://пример.рф``);
  a Japanese IDN (``https://日本語.jp``) is not matched: kana and kanji end a URL.

Scheme-less domains are where false positives come from, so they are held tighter than URLs
with a scheme: not glued to ``@``, ``/``, ``:`` or a word (an e-mail's domain is the e-mail's),
the top-level label all lower or all upper case (``done.It`` is a missing space, not Italy),
a letter in the registrable label, and not a file name whose extension is also a country code
(``main.py``, ``README.md``, ``run.sh``: ``FILE_EXTENSIONS``).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import regex

from .base import JpPatternRecognizer
from .email import offline_tld_extractor

#: A Unicode letter of an alphabetic script (an IDN host or path written out:
#: ``https://пример.рф/``); kana and kanji end a URL (``https://example.comをご覧``).
_INTL = r"(?![\p{Han}\p{Hiragana}\p{Katakana}ー々])[\p{L}\p{M}]"
_CH = rf"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]|{_INTL})"
_END = rf"(?:[A-Za-z0-9\-_~/#=&%+]|{_INTL})"
_SCHEME_URL = rf"(?:(?:https?|ftp)://|www\.){_CH}*{_END}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:xn--[A-Za-z0-9-]{1,59}[A-Za-z0-9]|[A-Za-z]{2,24})"
_DOMAIN = (
    rf"(?:{_LABEL}\.)+{_TLD}(?![A-Za-z0-9-])(?::[0-9]{{1,5}}(?![0-9]))?(?:/(?:{_CH}*{_END})?)?"
)
URL_REGEX = rf"(?<![A-Za-z0-9]){_SCHEME_URL}"
DOMAIN_REGEX = rf"(?<![A-Za-z0-9@._%+\-/:]){_DOMAIN}(?!@)"
QUOTED_URL_REGEX = rf"(?<![A-Za-z0-9])([\"'])(?:{_SCHEME_URL}|{_DOMAIN})\1"

#: File extensions that are also top-level domains: ``main.py`` is a file, not Paraguay.
FILE_EXTENSIONS = frozenset(
    "py md sh pl rs ts cs ps cc so pm mk zip mov".split()  # noqa: SIM905
)
_HOST = regex.compile(r"^(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)")


def _url_host(text: str) -> tuple[str, bool]:
    """The host of a URL match and whether it was written without a scheme or ``www.``."""
    body = text.strip("\"'")
    lowered = body.lower()
    scheme_less = "://" not in body and not lowered.startswith("www.")
    rest = body.split("://", 1)[-1]
    m = _HOST.match(rest)
    return (m.group(1) if m else ""), scheme_less


class JpUrlRecognizer(JpPatternRecognizer):
    """URLs and domains inside Japanese or English text."""

    ENTITY = "URL"
    PATTERNS = (
        ("url", URL_REGEX, 0.6),
        ("domain", DOMAIN_REGEX, 0.5),
        ("quoted url", QUOTED_URL_REGEX, 0.6),
    )
    CONTEXT = ("url", "リンク", "サイト", "http", "website", "link", "domain", "ドメイン")
    FLAGS = regex.IGNORECASE  # 'HTTPS://' and 'WWW.' too

    def validate_result(self, pattern_text: str) -> bool:
        """A host that is an IP address, or a registrable domain under a public suffix (more
        conditions without a scheme: see the module doc)."""
        return host_ok(*_url_host(pattern_text))


@lru_cache(maxsize=8192)
def host_ok(host: str, scheme_less: bool) -> bool:
    """``validate_result`` for one host; cached, since hosts repeat across URLs (one site's
    pages) and the public-suffix look-up is most of a URL candidate's cost."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return not scheme_less
    except ValueError:
        pass
    ext = offline_tld_extractor()(host)
    # a registrable domain, or a multi-label public suffix that is a site itself
    # (``ishikawa.jp``, a prefecture's domain, is on the public-suffix list)
    if not ext.suffix or not (ext.domain or "." in ext.suffix):
        return False
    if ext.domain.lower() == "www" and not ext.subdomain and "." not in ext.suffix:
        return False
    if not scheme_less:
        return True
    top = host.rsplit(".", 1)[-1]
    return (
        (top.islower() or top.isupper())
        and top.lower() not in FILE_EXTENSIONS
        and any(ch.isalpha() for ch in ext.domain or ext.suffix)
    )
