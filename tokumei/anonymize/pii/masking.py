"""Mask pattern findings before NER, and map NER spans back to the unmasked text.

Why: NER (GiNZA) is the cost of scrubbing free text (~6 ms CPU a text against ~0.1 ms for all
pattern recognizers), and it runs once per *distinct* text. Inquiry texts differ mostly in the
identifiers they carry (a phone number, an e-mail address, an order number): two texts that
differ only there are the same text to NER once those spans read ``<JP_PHONE>``, so NER runs
once for both. The pattern findings are replaced in the output anyway, and a NER span that
overlaps one is dropped by ``resolve_overlaps`` (validated pattern findings win), so the mask
only changes what NER reads around an identifier, not what is scrubbed inside it. How often
that changes a finding elsewhere is measured (bench/results/pii.md).

>>> m = mask_spans("山田です 090-1234-5678 まで", [("JP_PHONE", 5, 18)])
>>> m.text
'山田です <JP_PHONE> まで'
>>> m.to_source(0, 2), m.to_source(16, 18)
((0, 2), (19, 21))
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: A run of 5+ ASCII digits that is not part of a longer ASCII word: ``ORD-8337625949``'s
#: number, not the digits of a user name such as ``naoto_okad2284`` (texts are NFKC-normalized,
#: so full-width digits are ASCII here).
_NUMBER = re.compile(r"(?<![0-9A-Za-z_])[0-9]{5,}(?![0-9A-Za-z_])")


@dataclass(frozen=True, slots=True)
class Masked:
    """A text with spans replaced by ``<ENTITY>`` tags, and where each tag came from.

    ``masks`` holds ``(masked_start, masked_end, source_start, source_end)`` per tag, in order.
    """

    text: str
    masks: tuple[tuple[int, int, int, int], ...]

    def to_source(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of ``text`` to the source text; a span that reaches into a tag
        is widened to the whole masked source span (it cannot end inside an identifier)."""
        shift_start = shift_end = 0
        src_start: int | None = None
        src_end: int | None = None
        for m_start, m_end, s_start, s_end in self.masks:
            delta = (s_end - s_start) - (m_end - m_start)
            if src_start is None:
                if start >= m_end:
                    shift_start += delta
                elif start >= m_start:
                    src_start = s_start
            if src_end is None:
                if end >= m_end:
                    shift_end += delta
                    if end == m_end:
                        src_end = s_end
                elif end > m_start:
                    src_end = s_end
        return (
            src_start if src_start is not None else start + shift_start,
            src_end if src_end is not None else end + shift_end,
        )


def mask_spans(text: str, spans: Iterable[tuple[str, int, int]]) -> Masked:
    """``text`` with each ``(entity, start, end)`` span replaced by ``<entity>``.

    Overlapping spans are merged into one tag (named after the first, by start then length).
    """
    merged: list[tuple[str, int, int]] = []
    for entity, start, end in sorted(spans, key=lambda s: (s[1], -(s[2] - s[1]))):
        if start >= end:
            continue
        if merged and start < merged[-1][2]:
            last = merged[-1]
            merged[-1] = (last[0], last[1], max(last[2], end))
            continue
        merged.append((entity, start, end))
    if not merged:
        return Masked(text, ())
    parts: list[str] = []
    masks: list[tuple[int, int, int, int]] = []
    pos = out = 0
    for entity, start, end in merged:
        parts.append(text[pos:start])
        out += start - pos
        tag = f"<{entity}>"
        parts.append(tag)
        masks.append((out, out + len(tag), start, end))
        out += len(tag)
        pos = end
    parts.append(text[pos:])
    return Masked("".join(parts), tuple(masks))


def zero_numbers(text: str) -> str:
    """``text`` with each standalone run of 5+ ASCII digits read as zeros of the same length.

    Why: after the pattern mask, most distinct inquiry texts of a day still differ only in a
    number no recognizer claims (an order number: 5,902 of the 17,260 NER inputs of the
    10M-event day, each once). A digit run is never a name, and GiNZA sees the same shape of
    token, so texts differing only in such a number go through NER once; the length is kept,
    so NER offsets need no mapping. What it changes in the findings is measured
    (``bench/ner_mask_numbers.py``, bench/results/pii.md).

    >>> zero_numbers("注文番号はORD-8337625949です。naoto_okad2284 2026年")
    '注文番号はORD-0000000000です。naoto_okad2284 2026年'
    """
    return _NUMBER.sub(lambda m: "0" * len(m.group()), text)
