"""PERSON / LOCATION / ORGANIZATION from GiNZA's named entities (Japanese NER).

``ja_ginza`` labels entities with Sekine's Extended Named Entity hierarchy (Person, City,
Company, ...). Presidio's SpacyRecognizer only needs the mapping below, given to the spaCy NLP
engine as ``model_to_presidio_entity_mapping``; unmapped labels (Date, Money, Product ...) are
ignored. 'Email', 'URL', 'Phone_Number' and 'ID_Number' are left to the pattern recognizers,
which validate them.
"""

from __future__ import annotations

import regex
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")

GINZA_LABEL_MAP: dict[str, str] = {
    "Person": "PERSON",
    # places a person can be located by
    "Country": "LOCATION",
    "Province": "LOCATION",
    "City": "LOCATION",
    "County": "LOCATION",
    "GPE_Other": "LOCATION",
    "Location_Other": "LOCATION",
    "Postal_Address": "LOCATION",
    "Domestic_Region": "LOCATION",
    "Region_Other": "LOCATION",
    "Station": "LOCATION",
    "Road": "LOCATION",
    # organizations (employers, schools)
    "Company": "ORGANIZATION",
    "Company_Group": "ORGANIZATION",
    "Corporation_Other": "ORGANIZATION",
    "Organization_Other": "ORGANIZATION",
    "School": "ORGANIZATION",
    "Public_Institution": "ORGANIZATION",
    "Government": "ORGANIZATION",
    "Political_Organization_Other": "ORGANIZATION",
    "International_Organization": "ORGANIZATION",
    "Research_Institute": "ORGANIZATION",
}


def ginza_recognizer() -> SpacyRecognizer:
    """Presidio's spaCy recognizer reading the mapped GiNZA entities for Japanese."""
    return SpacyRecognizer(supported_language="ja", supported_entities=list(NER_ENTITIES))


#: ASCII characters a product code or an account token is written with.
_TOKEN_CH = "A-Za-z0-9_.\\-"
_JAPANESE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
#: A code: upper-case letters and digits in hyphen/underscore-joined groups, one digit at
#: least (``SKU-23167-JP``, ``ABC-1234``, ``XJ-900``); or a digit run (``23167``, ``2024-05``).
_CODE = regex.compile(r"(?:[A-Z0-9]+(?:[-_./][A-Z0-9]+)*|[0-9][0-9\-_./ ]*)")


def is_code_span(text: str, start: int, end: int) -> bool:
    """Whether an NER span is (part of) a product code or a digit run, not a name.

    GiNZA tags the digits of ``SKU-23167-JP`` as an organization and the ``ABC`` of
    ``ABC-1234`` as one too: it reads unknown ASCII tokens as proper nouns. The span is
    widened to the ASCII token it sits in; when that token is all upper-case letters and
    digits with a digit in it, or a digit run, and the span holds no kana or kanji, it is a
    code. User names stay names: they are written in lower case (``minoru_sasa4824``), and
    GiNZA tagging one is a catch the scrubber keeps (bench/results/pii.md).
    """
    span = text[start:end]
    if _JAPANESE.search(span):
        return False
    while start > 0 and regex.match(f"[{_TOKEN_CH}]", text[start - 1]):
        start -= 1
    while end < len(text) and regex.match(f"[{_TOKEN_CH}]", text[end]):
        end += 1
    token = text[start:end].strip()
    return bool(token) and any(ch.isdigit() for ch in token) and _CODE.fullmatch(token) is not None
