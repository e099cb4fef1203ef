"""JP_POSTAL_CODE: 7-digit postal code, with the 〒 mark or next to a postal/address word.

'123-4567' alone is as often a part number as a postal code, so without 〒 a context word is
required. NFKC maps the circled postal mark 〶 to 〒.
"""

from __future__ import annotations

from .base import LB, RB, JpPatternRecognizer

SEP = "[-‐‑‒–—―−ー]"


class JpPostalCodeRecognizer(JpPatternRecognizer):
    """〒123-4567, 〒1234567, or 123-4567 / 1234567 after 郵便番号, 住所, zip ..."""

    ENTITY = "JP_POSTAL_CODE"
    PATTERNS = (("postal_code", rf"{LB}[0-9]{{3}}{SEP}?[0-9]{{4}}{RB}", 0.5),)
    CONTEXT = ("〒", "郵便番号", "郵便", "住所", "postal", "zip", "post code", "postcode")
    CONTEXT_REQUIRED = True
    WINDOW_BEFORE = 16
