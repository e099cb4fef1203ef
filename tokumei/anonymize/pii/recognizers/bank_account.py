"""JP_BANK_ACCOUNT: 7-digit bank account number (口座番号), reported only with context."""

from __future__ import annotations

from .base import LB, RB, JpPatternRecognizer


class JpBankAccountRecognizer(JpPatternRecognizer):
    """Seven digits next to an account word (口座, 普通, 当座, account ...)."""

    ENTITY = "JP_BANK_ACCOUNT"
    PATTERNS = (("bank_account", rf"{LB}[0-9]{{7}}{RB}", 0.6),)
    CONTEXT = ("口座", "普通預金", "当座", "普通", "account no", "account number", "bank account")
    CONTEXT_REQUIRED = True
    WINDOW_BEFORE = 30
