"""Shared building blocks for tokumei's Presidio recognizers.

Presidio's own patterns use ``\\b``, which never fires between a kanji and a digit, and its
context enhancer needs token lemmas, which the offline NoOp engine does not produce (and which a
Japanese tokenizer would cost milliseconds per value to make). So our recognizers
 - use explicit ASCII look-arounds instead of ``\\b`` (CJK characters count as boundaries), and
 - check context words themselves, by substring search in a character window around the match
   of the normalized, lower-cased text — the natural notion of "near" for text without spaces.

Context words are kept in ``jp_context`` rather than Presidio's ``context`` so that the
lemma-based enhancer (active when GiNZA is loaded for NER) cannot change pattern scores: the
findings of a pattern recognizer must not depend on whether NER was asked for.

Every regex here runs on per-character NFKC text (``normalize.py``). The characters a pattern
allows *between two digits* must be in ``DIGIT_SEPARATORS`` and there may be at most
``MAX_SEPARATOR_RUN`` of them in a row; ``prefilter.py`` relies on the digit shapes of the
patterns (listed there, and pinned by a digest of all patterns) to be a superset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

#: Hyphen-like characters that survive NFKC (full-width '－' becomes '-', but 'ー', '−' ... stay).
HYPHENS = "-‐‑‒–—―−ー"
#: Every character any recognizer allows between two digits of one entity.
DIGIT_SEPARATORS = HYPHENS + " ().\u3000"
#: Longest run of separator characters any recognizer allows between two digits.
MAX_SEPARATOR_RUN = 4

H = f"[{HYPHENS}]"
# No ASCII letter or digit right before / after, and not the continuation of a longer digit
# group joined by a hyphen (so '1234-5678-9012-3456' is not read as a 12-digit number inside).
LB = rf"(?<![0-9A-Za-z])(?<![0-9]{H})"
RB = rf"(?![0-9A-Za-z])(?!{H}[0-9])"


def literal_alternation(words: Iterable[str]) -> str:
    """A non-capturing group matching any of ``words`` as written, longest first (so that
    ``ユーザー名`` is not cut short by a shorter word it starts with). Spaces stay literal: the
    prefilter reads these words as literals too."""
    escaped = (regex.escape(w, literal_spaces=True) for w in sorted(words, key=len, reverse=True))
    return "(?:" + "|".join(escaped) + ")"


def digits_only(text: str) -> str:
    """The ASCII digits of a (normalized) match, in order."""
    return "".join(ch for ch in text if "0" <= ch <= "9")


class JpPatternRecognizer(PatternRecognizer):
    """A PatternRecognizer with CJK-friendly, window-based context handling.

    ``context_required``: drop matches with no context word in the window (licence numbers and
    bank accounts are indistinguishable from other numbers without one).
    ``negative_context``: drop matches preceded by words that say what the number really is
    (order, tracking, invoice numbers), unless a positive context word is also present.
    """

    ENTITY: str = ""
    PATTERNS: Sequence[tuple[str, str, float]] = ()
    CONTEXT: Sequence[str] = ()
    NEGATIVE_CONTEXT: Sequence[str] = ()
    CONTEXT_REQUIRED: bool = False
    CONTEXT_BOOST: float = 0.35
    WINDOW_BEFORE: int = 24
    WINDOW_AFTER: int = 8
    FLAGS: int = 0

    def __init__(self, supported_language: str = "en") -> None:
        patterns = [Pattern(name=n, regex=r, score=s) for n, r, s in self.PATTERNS]
        super().__init__(
            supported_entity=self.ENTITY,
            name=f"Jp{self.ENTITY.title().replace('_', '')}Recognizer",
            patterns=patterns,
            supported_language=supported_language,
            global_regex_flags=self.FLAGS,
        )
        self.jp_context = tuple(w.lower() for w in self.CONTEXT)
        self.jp_negative_context = tuple(w.lower() for w in self.NEGATIVE_CONTEXT)

    def _window(self, text: str, start: int, end: int) -> str:
        before = text[max(0, start - self.WINDOW_BEFORE) : start]
        after = text[end : end + self.WINDOW_AFTER]
        return (before + " " + after).lower()

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Pattern matches, then context gating/boosting on a character window."""
        results = super().analyze(text, entities, nlp_artifacts, self.FLAGS or None)
        kept: list[RecognizerResult] = []
        for res in results:
            score = self.context_score(text, res.start, res.end, res.score)
            if score is None:
                continue
            res.score = score
            kept.append(res)
        return kept

    def context_score(self, text: str, start: int, end: int, score: float) -> float | None:
        """Score of a match after context: boosted with a context word in the window, ``None``
        (dropped) without one when context is required or a negative word is there."""
        window = self._window(text, start, end)
        if any(w in window for w in self.jp_context):
            return min(EntityRecognizer.MAX_SCORE, score + self.CONTEXT_BOOST)
        if self.CONTEXT_REQUIRED or any(w in window for w in self.jp_negative_context):
            return None
        return score
