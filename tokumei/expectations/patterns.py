"""PII regexes that GX runs over published string columns (no GX import here).

Why these regexes look the way they do:

* GX's pandas backend evaluates ``ExpectColumnValuesToNotMatchRegexList`` as
  ``column.astype(str).str.contains(regex)``. Under pandas 3 that column is Arrow-backed, so the
  regex may run on **RE2** (pyarrow ``match_substring_regex``) rather than Python ``re``. Every
  pattern is therefore written in the common subset of both engines: no look-arounds, no
  back-references, only non-capturing groups (capturing groups also make pandas warn). pandas
  itself falls back to Python ``re`` for any of those and for ``\\s``, or ``\\d``/``\\w`` on
  non-ASCII data: one such pattern makes every column scan ~15x slower (the 10M-event day's
  validate step: 19.3 -> 153.5 s), so whitespace is spelled out too, and
  ``tests/test_expectations.py`` checks that pandas keeps ``PII_ANY`` on RE2.
* RE2's ``\\d`` is ASCII-only while Python's is Unicode, so digits are spelled out as explicit
  classes that include the full-width forms (``０-９``) that Japanese users type. The same holds
  for separators: ASCII hyphen, the Unicode dashes, katakana prolonged sound mark ``ー`` (a very
  common typo for a hyphen in phone numbers), full-width hyphen/space and parentheses.
* ``\\b`` is useless in Japanese text (``メールはtaro@example.co.jpです`` has no word boundary
  around the address), so runs of digits are delimited with "not a digit or start/end of string"
  groups instead.
* The patterns are deliberately strict (fail closed): a published value that merely *looks* like
  PII blocks publication. Known false-positive sources are noted per pattern; the fix is to
  generalize the value (e.g. write CIDR ranges as ``192.168.1.*``) or not to list that column in
  ``pii_checked_columns`` when the policy already guarantees its form.
"""

from __future__ import annotations

import re
from typing import Final

from tokumei.anonymize.hierarchies import PREFECTURE_REGION

DIGIT: Final[str] = "[0-9０-９]"
"""One ASCII or full-width decimal digit."""

NOT_DIGIT_OR_START: Final[str] = "(?:^|[^0-9０-９])"
NOT_DIGIT_OR_END: Final[str] = "(?:[^0-9０-９]|$)"

_DASH: Final[str] = "-‐‑‒–—―−ー－ｰ"
"""Hyphen look-alikes seen in hand-typed Japanese numbers."""

SEP: Final[str] = f"[{_DASH} 　.()（）]"
"""One separator between digit groups of a phone number."""

GROUP_SEP: Final[str] = f"[{_DASH} 　]"
"""One separator inside identification / card numbers (grouped by spaces or hyphens)."""

_D = DIGIT

_MAIL_CHARS: Final[str] = "A-Za-z0-9Ａ-Ｚａ-ｚ０-９"
EMAIL: Final[str] = (
    f"[{_MAIL_CHARS}._%+\\-]+[@＠][{_MAIL_CHARS}\\-]+(?:[.．][{_MAIL_CHARS}\\-]+)*"
    f"[.．][A-Za-zＡ-Ｚａ-ｚ]{{2,}}"
)
"""Email address, ASCII or full-width (``ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ``). No ``\\b``: matches
inside Japanese text."""

PHONE_JP: Final[str] = (
    f"{NOT_DIGIT_OR_START}[0０](?:{_D}{{9,10}}|{_D}{{1,4}}{SEP}{{1,2}}{_D}{{1,4}}{SEP}{{1,2}}"
    f"{_D}{{3,4}}){NOT_DIGIT_OR_END}"
)
"""Japanese domestic number: ``0`` + 9-10 digits unbroken, or three groups with separators
(``090-1234-5678``, ``03(1234)5678``, ``０９０−９８７６−５４３２``, ``0120-123-456``)."""

PHONE_INTL: Final[str] = (
    f"[+＋]{_D}{{1,3}}{SEP}{{0,2}}{_D}{{1,4}}{SEP}{{0,2}}{_D}{{2,4}}{SEP}{{0,2}}{_D}{{3,4}}"
    f"{NOT_DIGIT_OR_END}"
)
"""International number with a leading ``+`` (``+81 90-1234-5678``, ``+1 415 555 0100``)."""

MY_NUMBER: Final[str] = (
    f"{NOT_DIGIT_OR_START}{_D}{{4}}{GROUP_SEP}?{_D}{{4}}{GROUP_SEP}?{_D}{{4}}{NOT_DIGIT_OR_END}"
)
"""A run of exactly 12 digits (My Number / 個人番号 shape), optionally grouped 4-4-4."""

CARD: Final[str] = f"{NOT_DIGIT_OR_START}{_D}(?:{GROUP_SEP}?{_D}){{12,15}}{NOT_DIGIT_OR_END}"
"""A run of 13-16 digits, optionally grouped (payment card shape; Luhn is not checked on
purpose: a non-Luhn 16-digit run in a published table is suspicious enough)."""

_OCTET: Final[str] = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4: Final[str] = f"(?:^|[^0-9.]){_OCTET}(?:\\.{_OCTET}){{3}}(?:[^0-9.]|$)"
"""Dotted-quad IPv4. False positives: four-part version strings (``1.2.3.4``) and CIDR ranges
written with a full last octet (``192.168.1.0/24``) — publish generalized IPs as ``192.168.1.*``."""

POSTAL_JP: Final[str] = f"{NOT_DIGIT_OR_START}〒?{_D}{{3}}[{_DASH}]{_D}{{4}}{NOT_DIGIT_OR_END}"
"""Japanese postal code ``〒123-4567`` / ``１２３−４５６７`` (the ``〒`` mark is optional)."""

_PREFECTURE: Final[str] = "(?:" + "|".join(PREFECTURE_REGION) + ")"
# Whitespace as literal characters, not ``\s`` (module doc: pandas would leave RE2).
_NOT_DIGIT_OR_SPACE: Final[str] = "[^0-9０-９ \t\r\n　]"
ADDRESS_JP: Final[str] = (
    f"{_PREFECTURE}{_NOT_DIGIT_OR_SPACE}{{0,40}}[市区町村郡]{_NOT_DIGIT_OR_SPACE}{{0,40}}"
    f"{_D}{{1,4}}(?:[{_DASH}]{_D}{{1,4}}|丁目|番)"
)
"""Street address: a prefecture, a municipality (市区町村郡) and a block number
(``東京都文京区後楽1-2-3``, ``大阪府大阪市北区梅田１丁目``). A published prefecture
(``東京都``) or prefecture + city never matches: it takes the number after them."""

PII_PATTERNS: Final[dict[str, str]] = {
    "email": EMAIL,
    "phone_jp": PHONE_JP,
    "phone_intl": PHONE_INTL,
    "my_number": MY_NUMBER,
    "card_number": CARD,
    "ipv4": IPV4,
    "postal_code_jp": POSTAL_JP,
    "address_jp": ADDRESS_JP,
}
"""Name → regex. The order is the order in the GX regex list (and thus in Data Docs)."""

PII_ANY: Final[str] = "|".join(f"(?:{rx})" for rx in PII_PATTERNS.values())
"""All of ``PII_PATTERNS`` as one alternation: what GX runs. A value matches it exactly when it
matches one of the patterns, but the column is scanned once instead of once per pattern (RE2
and Python ``re`` both handle the alternation in one pass): on the 4.9M-row anonymized
``page_views`` dataset 3.05 -> 0.46 s per string column (bench/results/scale.md). The names
stay in the expectation's ``meta``, so Data Docs still say which kinds are checked."""

_COMPILED: Final[dict[str, re.Pattern[str]]] = {k: re.compile(v) for k, v in PII_PATTERNS.items()}


def find_pii_kinds(text: str) -> list[str]:
    """Return the names of the patterns that match ``text`` (never the matched text).

    Used by tests and by callers that want to say *which kind* of PII a value resembles without
    ever echoing the value itself.
    """
    return [name for name, rx in _COMPILED.items() if rx.search(text)]
