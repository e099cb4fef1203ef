"""Registry of tokumei's pattern recognizers, one small module per entity (Presidio style).

``RECOGNIZERS`` maps each entity type to its recognizer class; ``pattern_recognizers(lang)``
instantiates all of them for one language. The patterns are language-independent (they run on
NFKC text and need no tokens), so the same set serves 'ja' and 'en'.
"""

from __future__ import annotations

from .address import JpAddressRecognizer
from .bank_account import JpBankAccountRecognizer
from .base import JpPatternRecognizer
from .corporate_number import JpCorporateNumberRecognizer
from .credit_card import JpCreditCardRecognizer
from .drivers_license import JpDriversLicenseRecognizer
from .email import JpEmailRecognizer
from .international_phone import PhoneNumberRecognizer
from .ip_address import JpIpRecognizer
from .my_number import JpMyNumberRecognizer
from .passport import JpPassportRecognizer
from .person_name import PersonNameRecognizer
from .phone import JpPhoneRecognizer
from .postal_code import JpPostalCodeRecognizer
from .residence_card import JpResidenceCardRecognizer
from .url import JpUrlRecognizer
from .username import UsernameRecognizer

RECOGNIZERS: dict[str, type[JpPatternRecognizer]] = {
    cls.ENTITY: cls
    for cls in (
        JpMyNumberRecognizer,
        JpCorporateNumberRecognizer,
        JpPassportRecognizer,
        JpResidenceCardRecognizer,
        JpDriversLicenseRecognizer,
        JpPhoneRecognizer,
        PhoneNumberRecognizer,
        JpPostalCodeRecognizer,
        JpBankAccountRecognizer,
        JpEmailRecognizer,
        JpCreditCardRecognizer,
        JpIpRecognizer,
        JpUrlRecognizer,
        JpAddressRecognizer,
        UsernameRecognizer,
        PersonNameRecognizer,
    )
}

PATTERN_ENTITIES: tuple[str, ...] = tuple(RECOGNIZERS)


def pattern_recognizers(language: str) -> list[JpPatternRecognizer]:
    """One instance of every pattern recognizer for ``language``."""
    return [cls(supported_language=language) for cls in RECOGNIZERS.values()]


__all__ = ["PATTERN_ENTITIES", "RECOGNIZERS", "JpPatternRecognizer", "pattern_recognizers"]
