"""Per-character NFKC normalization with an offset map back to the original text.

Japanese text mixes full-width digits (０９０), full-width at-signs (＠) and hyphens of many
kinds, so the recognizers match on NFKC-normalized text. Normalizing character by character
(rather than the whole string at once) keeps a one-to-many map from each original character to
the characters it produced, so every span found in the normalized text maps back to exact
offsets in the original. It differs from whole-string NFKC only for composing sequences such as
half-width kana followed by a half-width voiced mark, which never occur inside the identifiers
we match. The same per-character mapping is what makes the Polars prefilter provably a superset
(see ``prefilter.py``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

#: Hiragana, Katakana (full and half width) and CJK ideographs: the script test for "ja".
JA_SCRIPT_CLASS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]"
_JA_RE = re.compile(JA_SCRIPT_CLASS)


@lru_cache(maxsize=8192)
def _nfkc_char(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized text and, for each normalized index, the original index it came from."""

    text: str
    original: str
    offsets: tuple[int, ...] | None  # None: identity (text == original)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of ``text`` to the smallest covering span of ``original``."""
        if self.offsets is None:
            return start, end
        if end <= start:
            pos = self.offsets[start]
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1


def normalize(text: str) -> Normalized:
    """NFKC-normalize ``text`` per character and remember where each character came from."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return Normalized(text, text, None)
    parts: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        n = _nfkc_char(ch)
        parts.append(n)
        offsets.extend([i] * len(n))
    norm = "".join(parts)
    if norm == text:
        return Normalized(text, text, None)
    return Normalized(norm, text, tuple(offsets))


def nfkc_per_char(text: str) -> str:
    """The normalized text alone (what the recognizers see)."""
    return normalize(text).text


def detect_language(text: str) -> str:
    """'ja' when the text holds any kana or kanji, else 'en' (script detection, no model)."""
    return "ja" if _JA_RE.search(text) else "en"
