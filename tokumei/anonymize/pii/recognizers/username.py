"""USERNAME: an account name written right after a label that says it is one.

``退会したいです。ユーザー名はfujiihir3257です。``: a login name is as identifying as an e-mail
address, but it has no shape of its own (``fujiihir3257`` could be a product code), so the
label is part of the pattern: ユーザー名 / ユーザーID / ログインID / アカウント名 / username
..., then at most three of は, が, :, =, space, then 3-32 ASCII letters, digits, ``_ . -``
(after NFKC, so full-width letters count). A bare name in a search query has no label and is
not matched; NER sometimes tags one as a person.

``prefilter.py`` relies on every match containing one of ``LABELS``.
"""

from __future__ import annotations

from .base import JpPatternRecognizer, literal_alternation

#: Labels after which the next ASCII token is an account name (spelled out, no flags: the
#: prefilter reads them as literals).
LABELS: tuple[str, ...] = (
    "ユーザー名",
    "ユーザ名",
    "ユーザーネーム",
    "ユーザーID",
    "ユーザID",
    "ログインID",
    "ログイン名",
    "アカウント名",
    "アカウントID",
    "username",
    "Username",
    "USERNAME",
    "user name",
    "User name",
    "user ID",
    "user id",
    "User ID",
    "login ID",
    "Login ID",
)
_FUNCTION_WORDS = frozenset(
    "and the for was not you your are with from that this has have had can will".split()  # noqa: SIM905
)
_LABEL = literal_alternation(LABELS)
# The label is matched, not looked behind for, and ``\\K`` (``regex``) starts the finding after
# it: a pattern that begins with literals is searched for as such, where a leading look-behind
# is tried at every character (this recognizer on 20,000 distinct URLs of the 10M-event day:
# 0.21 -> 0.06 s CPU). ``match.span()``, which Presidio and the direct path report, honours it.
USERNAME_REGEX = (
    rf"{_LABEL}[はが:=\s]{{0,3}}\K(?<![A-Za-z0-9_.\-])"
    r"[A-Za-z0-9][A-Za-z0-9_.\-]{2,31}(?![A-Za-z0-9_.\-])"
)


class UsernameRecognizer(JpPatternRecognizer):
    """An ASCII account name right after ユーザー名 / ログインID / username ..."""

    ENTITY = "USERNAME"
    PATTERNS = (("username", USERNAME_REGEX, 0.7),)

    def validate_result(self, pattern_text: str) -> bool:
        """Not an English function word (``username and password``). An all-digit token is
        kept: ``ユーザーID 12345`` is the person's account number, as identifying as a name."""
        return pattern_text.lower() not in _FUNCTION_WORDS
