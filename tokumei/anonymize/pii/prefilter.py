"""Vectorized Polars prefilter: which values could contain an entity at all.

Scrubbing calls Presidio only for values this prefilter selects, so it must be a *superset* of
what the recognizers can match. It runs on the original (un-normalized) text, with each ASCII
character of the recognizers' patterns widened to every character whose per-character NFKC
consists only of characters of the same kind; this is why it is exact with respect to
``normalize.py``:

* every digit-based entity except IP addresses and street addresses contains one of these digit
  shapes (``d``: a digit, ``s``: a character from ``DIGIT_SEPARATORS``), read off the
  recognizers' regexes:

  - ``ddd s? dddd``: postal code (3-4 or 7), bank account (7), passport (7), residence card
    (8), and every 4-4-4 / 1-4-4-4 / 4-6-5 / plain 12+ digit number (My Number, licence,
    corporate number, card): ``dddd s? dddd`` contains it;
  - ``0 d (s{0,2} d){8}``: a national phone number (trunk 0, then 9-10 digits, at most two
    separators between two digits); ``+ s? d``: an international one (``+81``, and
    ``PHONE_NUMBER``'s ``+1 415 ...``), whose grouping after the country code is free;
  - ``PHONE_NUMBER`` (other regions, ``international_phone.py``) reports a national number
    only when it holds ``ddd s? dddd`` or the trunk-0 shape (its ``validate_result`` checks),
    and an international one only after ``+ s? d``;

  One original character produces at most one digit unless it is an "escape" character
  (below), and at least one normalized character, so a normalized run of k separators comes
  from at most k original ones (each of which normalizes to separators only). A date-time such
  as ``2024-05-03 12:00`` (ten digits as 4-2-2-2) has none of these shapes. The digit shapes
  are pinned to the recognizer regexes by ``RECOGNIZER_PATTERNS_SHA256``: a changed pattern
  fails ``tests/test_pii_prefilter.py`` until the shapes above have been re-checked;
* IPv4: four 1-3 digit groups joined by dots; IPv6: two colons with at most four hex digits in
  between; e-mail: an at-sign; URL: ``://`` or ``www`` (either case); a scheme-less domain:
  a letter or digit, a dot, two letters (``microsoft.com``, ``a.xn--p1ai``), where a
  character counts as letters when its NFKC is only ASCII letters (``㎝`` is ``cm``), since
  ``a.㎝`` normalizes to a domain;
* street address, user name and person name: every text those recognizers match in contains
  one of their literals (a prefecture name, ``address.PREFECTURES``; a label such as
  ユーザー名, ``username.LABELS``; a phrase such as ``my name is`` or an honorific such as 様,
  ``person_name.LABELS`` and ``SUFFIXES``). Each literal becomes a sequence of character
  classes, one per character: every code point whose NFKC is that character (half-width ｱｶｳﾝﾄ,
  full-width Ｉ, CJK compatibility ideographs ...). Half-width kana with a separate voiced mark (ﾕｰｻﾞｰ) stay
  two characters under per-character NFKC, so neither the recognizer nor the prefilter reads
  them as ユーザー;
* escape: any character whose NFKC expands to several characters including a digit, ':', '/',
  '+', 'w', a dot among other characters (``㏂`` is ``a.m.``; ``…`` is dots only and stays a
  dot) or a character of a literal (⑩, ⒈, ㏠, ℅, ㌔ ...) makes the value a candidate,
  because counting inside such expansions in a regex is not worth the complexity; they are rare.

The same argument holds entity by entity (``ENTITY_RULES``: the digit shapes for the digit-based
entities, the IP rules for IP addresses, each literal rule for its recognizer), so the analyzer
also runs each recognizer only on the values its entity's rules select (``entity_pattern``;
``tests/test_pii_prefilter.py`` checks both supersets).

NER (``ner=True``) has no such signal, so NER columns bypass the prefilter.
The class tables are computed once per process from ``unicodedata`` (about a second).
"""

from __future__ import annotations

import hashlib
import string
import sys
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import polars as pl

from .recognizers import RECOGNIZERS
from .recognizers.address import PREFECTURES
from .recognizers.base import DIGIT_SEPARATORS
from .recognizers.person_name import LABELS as NAME_LABELS
from .recognizers.person_name import SUFFIXES as NAME_SUFFIXES
from .recognizers.username import LABELS

#: Every text the address, user-name and person-name recognizers match in contains one of these.
LITERALS: tuple[str, ...] = PREFECTURES + LABELS + NAME_LABELS + NAME_SUFFIXES

_HEX = set("0123456789abcdefABCDEF")
_ASCII_ALNUM = set(string.ascii_letters + string.digits)
_ESCAPE_TRIGGERS = set("0123456789:/+wW")
#: SHA-256 of every recognizer regex (``recognizer_patterns_digest``) when the digit shapes in
#: the module doc were last checked against them.
RECOGNIZER_PATTERNS_SHA256 = "c63f66ed78fd2847df57d575bf96074ac50dc683f83d77305d3bb1b9fe739468"


def recognizer_patterns_digest() -> str:
    """SHA-256 over all pattern recognizers' regexes, in registry order."""
    text = "\n".join(r for cls in RECOGNIZERS.values() for _, r, _ in cls.PATTERNS)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _char_class(members: list[int]) -> str:
    """A Rust/Python-regex character class for the code points in ``members``."""
    members = sorted(set(members))
    ranges: list[tuple[int, int]] = []
    for cp in members:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[{body}]"


@lru_cache(maxsize=1)
def _classes() -> dict[str, str]:
    preds: dict[str, Callable[[str], bool]] = {
        "digit": lambda n: len(n) == 1 and n.isascii() and n.isdigit(),
        "zero": lambda n: n == "0",
        "plus": lambda n: n == "+",
        "sep": lambda n: all(ch in DIGIT_SEPARATORS for ch in n),
        "dot": lambda n: all(ch == "." for ch in n),
        "colon": lambda n: n == ":",
        "slash": lambda n: n == "/",
        "hex": lambda n: all(ch in _HEX for ch in n),
        "w": lambda n: n in ("w", "W"),
        "at": lambda n: "@" in n,
        "alnums": lambda n: all(ch in _ASCII_ALNUM for ch in n),
        "alphas": lambda n: all(ch in _ASCII_ALNUM and not ch.isdigit() for ch in n),
        "alphas2": lambda n: (
            len(n) > 1 and all(ch in _ASCII_ALNUM and not ch.isdigit() for ch in n)
        ),
        "escape": lambda n: (
            len(n) > 1
            and (any(ch in _ESCAPE_TRIGGERS for ch in n) or ("." in n and set(n) != {"."}))
        ),
    }
    members: dict[str, list[int]] = {k: [] for k in preds}
    literal_chars = {ch for lit in LITERALS for ch in lit}
    # "=x": code points whose NFKC is exactly the literal character x
    members.update({f"={ch}": [ord(ch)] for ch in literal_chars})
    relevant = _HEX | _ASCII_ALNUM | _ESCAPE_TRIGGERS | set(DIGIT_SEPARATORS) | set(".@+")
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if ch not in relevant and unicodedata.is_normalized("NFKC", ch):
            continue  # unchanged by NFKC and not a pattern character: in no class
        n = unicodedata.normalize("NFKC", ch)
        if not n:
            continue
        for name, pred in preds.items():
            if pred(n):
                members[name].append(cp)
        if n != ch and len(n) == 1 and n in literal_chars:
            members[f"={n}"].append(cp)
        elif len(n) > 1 and literal_chars.intersection(n):
            members["escape"].append(cp)
    return {k: _char_class(v) for k, v in members.items()}


@lru_cache(maxsize=1)
def _rules() -> dict[str, str]:
    """The prefilter's rules by name (Rust ``regex`` syntax, also valid for Python ``regex``)."""
    c = _classes()
    d, s = c["digit"], c["sep"]
    return {
        "digits": f"{d}{{3}}{s}?{d}{{4}}",
        "trunk phone": f"{c['zero']}{d}(?:{s}{{0,2}}{d}){{8}}",
        "plus": f"{c['plus']}{s}?{d}",
        "ipv4": f"{d}{{1,3}}{c['dot']}{d}{{1,3}}{c['dot']}{d}{{1,3}}{c['dot']}{d}",
        "ipv6": f"{c['colon']}{c['hex']}{{0,4}}{c['colon']}",
        "at": c["at"],
        "scheme": f"{c['colon']}{c['slash']}{c['slash']}",
        "www": f"{c['w']}{{3}}",
        "domain": f"{c['alnums']}{c['dot']}(?:{c['alphas2']}|{c['alphas']}{c['alphas']})",
        "escape": c["escape"],
        **{f"literal {lit}": "".join(c[f"={ch}"] for ch in lit) for lit in LITERALS},
    }


def _pattern(rules: list[str]) -> str:
    return "|".join(f"(?:{r})" for r in rules)


@lru_cache(maxsize=1)
def candidate_pattern() -> str:
    """The prefilter as one regex (Rust ``regex`` syntax, also valid for Python ``regex``)."""
    return _pattern(list(_rules().values()))


_DIGIT_RULES = ("digits", "trunk phone", "plus")


def _literals(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"literal {w}" for w in words)


#: The rules that can fire on a text a pattern entity's recognizer reports in, read off the
#: module doc (the digit shapes hold every digit-based entity but IP and street addresses; the
#: literal rules, the recognizer of those literals). ``escape`` gates every entity; an entity
#: not listed here is gated by every rule (the whole prefilter).
ENTITY_RULES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "JP_MY_NUMBER",
            "JP_CORPORATE_NUMBER",
            "JP_PASSPORT",
            "JP_RESIDENCE_CARD",
            "JP_DRIVERS_LICENSE",
            "JP_PHONE",
            "PHONE_NUMBER",
            "JP_POSTAL_CODE",
            "JP_BANK_ACCOUNT",
            "CREDIT_CARD",
        ),
        _DIGIT_RULES,
    ),
    "IP_ADDRESS": ("ipv4", "ipv6"),
    "EMAIL_ADDRESS": ("at",),
    "URL": ("scheme", "www", "domain"),
    "JP_ADDRESS": _literals(PREFECTURES),
    "USERNAME": _literals(LABELS),
    "PERSON_NAME": _literals(NAME_LABELS + NAME_SUFFIXES),
}


@lru_cache(maxsize=64)
def entity_pattern(entity: str) -> str:
    """The prefilter of one pattern entity: False where its recognizer cannot report anything.

    Why per entity: a value the whole prefilter selects goes through every recognizer, while
    most could only match one or two (a MAC address: the IPv6 rule, so only ``IP_ADDRESS``);
    the analyzer skips the others (PII discovery on 10,000 sampled MAC addresses: 1.54 ->
    0.41 CPU-s; bench/results/scale.md, session 13).
    """
    rules = _rules()
    names = ENTITY_RULES.get(entity)
    if names is None:
        return candidate_pattern()
    return _pattern([rules[n] for n in (*names, "escape")])


def entity_candidates(texts: list[str], entities: list[str]) -> list[list[bool]]:
    """Per entity (in order), per text: could the entity's recognizer report anything in it
    (:func:`entity_pattern` on the original text)."""
    values = pl.Series("v", texts, dtype=pl.String)
    return [values.str.contains(entity_pattern(e)).fill_null(False).to_list() for e in entities]


def candidate_expr(col: pl.Expr) -> pl.Expr:
    """Boolean expression: True where the string could contain a pattern entity (null → False)."""
    return col.str.contains(candidate_pattern()).fill_null(False)
