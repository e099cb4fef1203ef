"""PERSON_NAME: a name in Latin letters introduced by a phrase or followed by an honorific.

``Hello, my name is Joseph Roberts. Please contact me at ...``: a text without kana or kanji is
English to ``detect_language``, and English texts have no NER here (GiNZA reads Japanese; spaCy
ships its English models outside PyPI, and nothing may be downloaded at run time), so such a name
stayed in the scrubbed text. The phrase is part of the pattern, like ``USERNAME``'s label:
``my name is`` / ``I am`` / ``I'm`` / ``this is`` / ``name:`` / a closing such as ``Regards,``,
then one to three capitalized words after an optional title (``Joseph Roberts``,
``Mr. O'Neil``), and ``\\K`` starts the finding after the phrase. In Japanese text, two or three
capitalized words (or a title and one) right before 様 / さん / 氏 / と申します / です are a name
too (``Maria Chenと申します``, ``Dr. Kato様``): GiNZA misses most names in Latin letters
there. A name with neither is not matched.

A separate entity from NER's ``PERSON``: the analyzer treats NER entities apart (dropped when NER
is off, ranked below pattern findings in overlaps), and this one must work without NER.
``validate_result`` drops words that commonly follow ``I am`` / ``this is`` capitalized (``I am
Japanese``, ``This is Urgent``); what it lets through is over-scrubbing, the safe side.

``prefilter.py`` relies on every text this recognizer matches in containing one of ``LABELS``
or ``SUFFIXES``.
"""

from __future__ import annotations

from .base import JpPatternRecognizer, literal_alternation

#: Phrases after which the next capitalized words are a person's name (spelled out, no flags:
#: the prefilter reads them as literals).
LABELS: tuple[str, ...] = (
    "my name is",
    "My name is",
    "MY NAME IS",
    "I am",
    "I'm",
    "this is",
    "This is",
    "Name:",
    "name:",
    "NAME:",
    "Regards,",
    "regards,",
    "Sincerely,",
    "Thanks,",
    "Thank you,",
)
_LABEL = literal_alternation(LABELS)
_WORD = r"[A-Z][A-Za-z'’\-]{1,20}"
#: What follows a name in a Japanese sentence: an honorific, or "I am called" (``Maria Chenと
#: 申します``, ``Timothy Anderson様の代理で``). GiNZA, trained on Japanese, misses most names in
#: Latin letters there.
SUFFIXES: tuple[str, ...] = ("様", "さま", "さん", "氏", "と申します", "といいます", "です")
_SUFFIX = literal_alternation(SUFFIXES)
#: Titles before a name: part of the finding (``Mr. John Smith``), and with a title one word is
#: a name (``Dr. Kato様``).
TITLES: tuple[str, ...] = ("Mr", "Mrs", "Ms", "Miss", "Dr")
_TITLE = literal_alternation(TITLES) + r"\.?[ ]"
_NAME = rf"{_WORD}(?:[ ]{_WORD}){{0,2}}"
# ``\K`` (``regex``) starts the finding after the phrase, like ``username.USERNAME_REGEX``.
PERSON_NAME_REGEX = rf"(?<![A-Za-z]){_LABEL}[ \t]{{1,3}}\K(?:{_TITLE})?{_NAME}(?![A-Za-z])"
# Without a title, two or three words before the honorific: one capitalized word before です is
# as often a product or a place (``Amazonです``) as a name.
NAME_BEFORE_SUFFIX_REGEX = (
    rf"(?<![A-Za-z])(?:{_TITLE}{_NAME}|{_WORD}(?:[ ]{_WORD}){{1,2}})(?=[ ]?{_SUFFIX})"
)

#: Capitalized words that follow the phrases but are not names (first word after any title).
NOT_NAMES = frozenset(
    """
    a an the not very so sorry unable trying writing looking contacting calling still just
    here there also really happy glad interested sure afraid concerned disappointed please
    japanese english american chinese korean new your our my his her their this that it
    regarding about urgent important customer member user
    """.split()  # noqa: SIM905
)
_TITLE_WORDS = frozenset(t.lower() for t in TITLES)


class PersonNameRecognizer(JpPatternRecognizer):
    """Capitalized words right after ``my name is`` / ``I am`` / ``Regards,`` ..."""

    ENTITY = "PERSON_NAME"
    PATTERNS = (
        ("introduced name", PERSON_NAME_REGEX, 0.6),
        ("name before an honorific", NAME_BEFORE_SUFFIX_REGEX, 0.6),
    )

    def validate_result(self, pattern_text: str) -> bool:
        """Not a word that commonly follows the phrase (``I am Japanese``, ``This is Urgent``);
        a leading title is skipped (``Mr Smith様`` is checked as ``Smith``)."""
        words = pattern_text.split()
        while words and words[0].rstrip(".").lower() in _TITLE_WORDS:
            words = words[1:]
        return bool(words) and words[0].strip("'’-").lower() not in NOT_NAMES
