"""PHONE_NUMBER: phone numbers of every region but Japan, validated by ``phonenumbers``.

``JP_PHONE`` (``phone.py``) takes Japanese numbers; this recognizer takes the rest, as
Presidio's ``PhoneRecognizer`` does (issue 19: our analyzer found 1 of Presidio's 28
international test numbers). The regex proposes a digit run with at most two separators
between digits (``(415) 555-0132``, ``+44 (20) 7123 4567``, ``09-7625400``); what is a phone
number is decided by libphonenumber's own ``PhoneNumberMatcher`` at leniency ``VALID``
(Presidio's default), which must accept the whole candidate. It brings what a regex cannot:
each region's numbering plan, and its rejection of dates and time stamps
(``2024-05-03 12`` is a valid US number by digits alone).

* ``+country ...``: every region (``phonenumbers``' metadata, offline), no context needed.
* a national number written as a default region writes it (Presidio's default regions US,
  GB, DE, FR, IL, IN, CA, BR, and CN; ``STRICT_GROUPING``): North American 3-3-4
  (``(415) 555-0132``), led by its country code without ``+`` (``91-415-555-0132``), or
  grouped after a trunk 0 (``020 7123 4567``, ``09-7625400``): reported without context; a
  context word raises the score (``classify`` says why only these shapes).
* any other valid national number (of any region): reported only with a context word (phone,
  number, 電話 ...): ungrouped digits (``13812345678``), other groupings, other regions. A
  digit run is valid in *some* numbering plan more often than not: in our Japanese corpus,
  without this rule, postal codes (``035-7205``, a German number by digits), licence numbers
  and 12-digit ticket numbers were reported as phone numbers.
* a number valid in Japan (national, or ``+81``) is left to ``JP_PHONE``, whose context rules
  (order and tracking numbers) apply to it.

``prefilter.py`` relies on every reported number either starting with ``+`` and a digit, or
containing one of its digit shapes (``ddd s? dddd`` or ``0 d (s{0,2} d){8}``): national numbers
without one (``912 34 56 78``) are not reported. ``validate_result`` enforces it.
"""

from __future__ import annotations

from functools import cache, lru_cache

import phonenumbers
import regex
from phonenumbers import CountryCodeSource, Leniency, PhoneNumberMatcher

from .base import HYPHENS, JpPatternRecognizer, digits_only
from .phone import valid_jp_national

_S = f"[{HYPHENS} .()]"
_LB = r"(?<![0-9A-Za-z+])"
_RB = rf"(?![0-9A-Za-z])(?![{HYPHENS}. ][0-9])"
PHONE_NUMBER_REGEX = rf"{_LB}(?:\+[ ]?|\()?[0-9](?:{_S}{{0,2}}[0-9]){{6,14}}{_RB}"

#: Presidio's ``PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS`` (with GB for its 'UK'), and CN,
#: which its tests add; JP is ``JP_PHONE``'s.
DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "CN")
OTHER_REGIONS: tuple[str, ...] = tuple(
    sorted(phonenumbers.SUPPORTED_REGIONS - set(DEFAULT_REGIONS) - {"JP"})
)
#: The prefilter's digit shapes (``prefilter.py``): a reported national number contains one.
_SHAPE = regex.compile(rf"[0-9]{{3}}{_S}?[0-9]{{4}}|0[0-9](?:{_S}{{0,2}}[0-9]){{8}}")


@cache
def _digit_counts(region: str) -> frozenset[int]:
    """How many digits a number of ``region`` can be written with: a national significant
    number of a possible length, alone, after the trunk prefix, or after the country code."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return frozenset()
    lengths = set(meta.general_desc.possible_length or ())
    extra = {0, len(str(meta.country_code))}
    if meta.national_prefix:
        extra.add(len(meta.national_prefix))
    return frozenset(n + e for n in lengths for e in extra)


def _valid_in(text: str, region: str) -> bool:
    """Cheap first tests: a digit count the region's numbers can have (a set look-up), then
    parse + is_valid_number; the matcher (slower) only runs for a number valid in ``region``."""
    if not text.startswith("+") and len(digits_only(text)) not in _digit_counts(region):
        return False
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(text, region)))
    except phonenumbers.NumberParseException:
        return False


def _whole_match(text: str, region: str, leniency: Leniency = Leniency.VALID) -> bool:
    """Whether libphonenumber's matcher at ``leniency`` takes all of ``text`` as one number
    (of a region other than Japan)."""
    if not _valid_in(text, region):
        return False
    for match in PhoneNumberMatcher(text, region, leniency=leniency):
        if match.start == 0 and match.end == len(text):
            return phonenumbers.region_code_for_number(match.number) != "JP"
    return False


#: Each default region's country code as written (``1``, ``44``, ``972`` ...).
_COUNTRY_CODES: tuple[tuple[str, str], ...] = tuple(
    (r, str(phonenumbers.country_code_for_region(r))) for r in DEFAULT_REGIONS
)


def _with_country_code(text: str, digits: str) -> bool:
    """A valid number of a default region written with its country code but no ``+``
    (``91-415-555-0132``): the country code says what the digits are. Only the regions whose
    code the digits start with are tried (a string test; most digit runs start with none)."""
    for region, code in _COUNTRY_CODES:
        if not digits.startswith(code) or not _whole_match(text, region):
            continue
        number = phonenumbers.parse(text, region, keep_raw_input=True)
        if number.country_code_source == CountryCodeSource.FROM_NUMBER_WITHOUT_PLUS_SIGN:
            return True
    return False


#: North American numbers as written: ``(415) 555-0132``, ``415-555-0132``, ``415.555.0132``.
_NANP = regex.compile(r"\(?[2-9][0-9]{2}\)?[ .\-]?[2-9][0-9]{2}[ .\-][0-9]{4}")
#: Default regions whose national numbers start with the trunk prefix 0.
_TRUNK_ZERO_REGIONS = tuple(
    r
    for r in DEFAULT_REGIONS
    if (phonenumbers.PhoneMetadata.metadata_for_region(r).national_prefix or "") == "0"
)


def _is_japanese(text: str) -> bool:
    """A valid Japanese number written nationally (trunk 0): ``JP_PHONE``'s, with its own
    context rules. The same cached check as ``JP_PHONE`` (``phone.valid_jp_national``): most
    phone candidates in our data are Japanese numbers, and JP's metadata is the costly one."""
    digits = digits_only(text)
    national = digits[1:]
    return (
        digits.startswith("0")
        and 8 <= len(national) <= 10
        and not national.startswith("0")
        and valid_jp_national(national)
    )


@lru_cache(maxsize=4096)
def classify(text: str) -> str | None:
    """How sure the digits alone make a phone number: 'international' (``+`` and a valid
    number), 'national' (written as a default region writes it: see below), 'maybe' (a phone
    number only if a context word is near and it is valid in some region: decided in
    ``context_score``) or ``None`` (no phone number).

    'national' is checked only for three shapes, with libphonenumber's ``STRICT_GROUPING``
    (the digit groups are the region's): the North American 3-3-4 (US, CA), a number led by a
    default region's country code (``91-415-555-0132``), a grouped number with the trunk 0 of
    the default regions that have one (``020 7123 4567``, ``09-7625400``; not a Japanese one).
    Why not every region for every digit run: each check costs a parse and a matcher pass,
    and most digit runs in our data are not phone numbers (My Numbers, postal codes, order
    numbers): checking the nine default regions cost ~2 ms per such candidate.
    """
    if text.startswith("+"):
        return "international" if _whole_match(text, "US") else None  # region unused after '+'
    if _SHAPE.search(text) is None:
        return None
    grouped = not text.isdigit()
    if _NANP.fullmatch(text) and any(
        _whole_match(text, r, Leniency.STRICT_GROUPING) for r in ("US", "CA")
    ):
        return "national"
    if grouped and _with_country_code(text, digits_only(text)):
        return "national"
    if (
        grouped
        and text.lstrip("(").startswith("0")
        and not _is_japanese(text)
        and any(_whole_match(text, r, Leniency.STRICT_GROUPING) for r in _TRUNK_ZERO_REGIONS)
    ):
        return "national"
    return "maybe"


@lru_cache(maxsize=4096)
def valid_anywhere(text: str) -> bool:
    """A whole valid number (matcher, leniency VALID) of some region, not a Japanese one."""
    if _is_japanese(text):
        return False
    return any(_whole_match(text, r) for r in DEFAULT_REGIONS + OTHER_REGIONS)


class PhoneNumberRecognizer(JpPatternRecognizer):
    """International and foreign national phone numbers (libphonenumber's matcher)."""

    ENTITY = "PHONE_NUMBER"
    PATTERNS = (("phone_number", PHONE_NUMBER_REGEX, 0.4),)
    CONTEXT = (
        "phone",
        "number",
        "telephone",
        "cell",
        "mobile",
        "call",
        "tel",
        "fax",
        "電話",
        "携帯",
        "連絡先",
    )
    NEGATIVE_CONTEXT = ("注文番号", "伝票番号", "追跡番号", "order", "tracking", "invoice")
    WINDOW_BEFORE = 32

    def validate_result(self, pattern_text: str) -> bool | None:
        """True for an international or a default region's national number, False for no
        phone number or a Japanese one; ``None`` (keep the base score) when only a context
        word can tell (``context_score`` decides)."""
        kind = classify(pattern_text)
        if kind is None:
            return False
        return None if kind == "maybe" else True

    def context_score(self, text: str, start: int, end: int, score: float) -> float | None:
        """As the base class; a 'maybe' number needs a context word and a region where it is
        valid."""
        window = self._window(text, start, end)
        has_context = any(w in window for w in self.jp_context)
        if classify(text[start:end]) == "maybe" and not (
            has_context and valid_anywhere(text[start:end])
        ):
            return None
        if has_context:
            return min(1.0, score + self.CONTEXT_BOOST)
        return super().context_score(text, start, end, score)
