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
* a national number grouped as one of Presidio's default regions (US, GB, DE, FR, IL, IN, CA,
  BR) or CN groups it (``STRICT_GROUPING``: ``(415) 555-0132``, ``030 1234567``), or grouped
  and led by its country code without ``+`` (``91-415-555-0132``): reported without context;
  a context word raises the score.
* any other valid national number (of any region): reported only with a context word (phone,
  number, 電話 ...): ungrouped digits (``13812345678``), a grouping no plan uses, another
  region. A digit run is valid in *some* numbering plan more often than not: in our Japanese
  corpus, without this rule, postal codes (``035-7205``, a German number by digits), licence
  numbers and 12-digit ticket numbers were reported as phone numbers.
* a number valid in Japan (national, or ``+81``) is left to ``JP_PHONE``, whose context rules
  (order and tracking numbers) apply to it.

``prefilter.py`` relies on every reported number either starting with ``+`` and a digit, or
containing one of its digit shapes (``ddd s? dddd`` or ``0 d (s{0,2} d){8}``): national numbers
without one (``912 34 56 78``) are not reported. ``validate_result`` enforces it.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
import regex
from phonenumbers import CountryCodeSource, Leniency, PhoneNumberMatcher

from .base import HYPHENS, JpPatternRecognizer, digits_only

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


def _valid_in(text: str, region: str) -> bool:
    """Cheap first test (parse + is_valid_number, ~25 us): the matcher (~50 us and more) only
    runs for a number that is valid in ``region`` at all."""
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


def _with_country_code(text: str, region: str) -> bool:
    """A valid number of ``region`` written with its country code but no ``+``
    (``91-415-555-0132``): the country code says what the digits are."""
    if not digits_only(text).startswith(str(phonenumbers.country_code_for_region(region))):
        return False
    if not _whole_match(text, region):
        return False
    number = phonenumbers.parse(text, region, keep_raw_input=True)
    return number.country_code_source == CountryCodeSource.FROM_NUMBER_WITHOUT_PLUS_SIGN


@lru_cache(maxsize=4096)
def classify(text: str) -> str | None:
    """How sure the digits alone make a phone number: 'international' (``+`` and a valid
    number), 'national' (grouped as a default region groups it, ``STRICT_GROUPING``, or led
    by its country code), 'maybe' (a phone number only if a context word is near and it is
    valid in some region: ``valid_anywhere``, run only then, since it tries 240 regions) or
    ``None`` (no phone number, or a Japanese one: ``JP_PHONE``'s)."""
    if text.startswith("+"):
        return "international" if _whole_match(text, "US") else None  # region unused after '+'
    if _SHAPE.search(text) is None:
        return None
    if _valid_in(text, "JP"):
        for match in PhoneNumberMatcher(text, "JP", leniency=Leniency.VALID):
            if match.start == 0 and match.end == len(text):
                return None  # JP_PHONE's, with its own context rules
    grouped = not text.isdigit()
    if grouped and any(_whole_match(text, r, Leniency.STRICT_GROUPING) for r in DEFAULT_REGIONS):
        return "national"
    if grouped and any(_with_country_code(text, r) for r in DEFAULT_REGIONS):
        return "national"
    return "maybe"


@lru_cache(maxsize=4096)
def valid_anywhere(text: str) -> bool:
    """A whole valid number (matcher, leniency VALID) of some region but Japan."""
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
