"""One folding rule for values derived from free text (URL templates, search categories).

A value a visitor typed or a site owner minted for one person (``/u/<name>/wishlist``,
``/shops/<name>-kitchen``) identifies that person however many other columns are generalized,
and a value that names a clinic, a disease or a creed reveals special-care-required information
(要配慮個人情報, APPI Art. 2(3)) about whoever is attached to it. Both are published only as
``other``:

- **rare**: a value used by fewer than ``k`` distinct persons *in the set being released*;
- **special care**: a value matching a special-care keyword of the policy
  (``special_care_values`` in ``policies/policy.yaml``), unless the policy lists the value as
  ``public``.

The statistics table ``page_views`` and the record-level release ``anonymized/page_views`` both
fold with :func:`values_to_fold` + :func:`fold`, so a template can never be public in one and
folded in the other for a reason the other did not know. Search categories are a closed set;
a text that mentions special care is categorized ``other``
(:func:`tokumei.stats.categories.categorize`).

Matching (:meth:`SpecialCare.matches`) is on the NFKC-normalized, lower-cased value. An ASCII
keyword matches at the start of a token (a run of letters and digits), so ``clinic`` matches
``/clinic/``, ``/clinics`` and ``/dental-clinic`` but ``hiv`` does not match ``/archive``. A
non-ASCII keyword (Japanese has no word separators) matches anywhere, and its percent-encoded
UTF-8 form matches too, since URL templates keep paths undecoded. False positives cost only
utility (a page shown as ``other``); false negatives disclose, so the lists err on the broad side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import polars as pl

#: The value every folded value becomes. Part of every free-text-derived column's public domain.
OTHER = "other"

#: Default special-care keywords (the policy's ``special_care_values.keywords`` replaces them).
#: Health and medical care, pregnancy and fertility, disability, creed, criminal history, race
#: and social status (APPI Art. 2(3), Cabinet Order Art. 2), plus sexual orientation.
# fmt: off
DEFAULT_SPECIAL_CARE_KEYWORDS: tuple[str, ...] = (
    # health, medical treatment, medicine
    "clinic", "hospital", "medic", "pharma", "drug", "health", "disease", "illness", "diagnos",
    "symptom", "surgery", "therap", "dental", "dentist", "cancer", "oncolog", "diabet", "hiv",
    "aids", "hepatitis", "psychiat", "mental", "depression", "dementia", "rehab", "addiction",
    "allerg", "vaccin", "covid", "counsel", "nursing",
    # pregnancy, fertility, sexual health
    "pregnan", "fertility", "infertil", "ivf", "maternity", "abortion", "contracept",
    "sexual", "lgbt", "transgender",
    # disability
    "disabilit", "handicap", "wheelchair",
    # creed and religion
    "religio", "church", "temple", "shrine", "mosque", "buddhis", "christian", "islam",
    "muslim", "bible",
    # criminal history, race, social status
    "criminal", "arrest", "prison", "convict", "parole", "race", "ethnic", "buraku",
    # Japanese (matched anywhere in the value)
    "病", "医", "薬", "診", "治療", "健康", "検診", "妊", "出産", "中絶", "避妊", "不育",
    "がん", "癌", "精神", "心療", "うつ病", "障害", "障がい", "介護", "看護", "宗教", "信仰",
    "教会", "寺院", "神社", "犯罪", "前科", "逮捕", "刑務所", "人種", "部落", "性病",
)
# fmt: on


def _token_prefix(keywords: Iterable[str]) -> str | None:
    words = sorted({k for k in keywords if k.isascii()}, key=len, reverse=True)
    if not words:
        return None
    return r"(?:^|[^a-z0-9])(?:" + "|".join(re.escape(w) for w in words) + ")"


def _anywhere(keywords: Iterable[str]) -> str | None:
    forms: set[str] = set()
    for k in keywords:
        if k.isascii():
            continue
        forms.add(k)
        forms.add(quote(k, safe="").lower())  # values are lower-cased before matching
    if not forms:
        return None
    return "(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + ")"


@dataclass(frozen=True)
class SpecialCare:
    """Special-care keywords and the values the policy declares public despite them."""

    keywords: tuple[str, ...] = DEFAULT_SPECIAL_CARE_KEYWORDS
    public: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "keywords", tuple(_normalize(k) for k in self.keywords if k.strip())
        )
        if not self.keywords:
            raise ValueError("special_care_values.keywords is empty: nothing would be folded")

    def matches(self, value: pl.Expr) -> pl.Expr:
        """True where ``value`` reveals special care and is not public (null never matches)."""
        text = value.cast(pl.String).str.normalize("NFKC").str.to_lowercase()
        parts = [
            text.str.contains(p)
            for p in (_token_prefix(self.keywords), _anywhere(self.keywords))
            if p is not None
        ]
        hit = pl.any_horizontal(parts).fill_null(False)
        if self.public:
            hit = hit & ~value.cast(pl.String).is_in(sorted(self.public)).fill_null(False)
        return hit


def _normalize(keyword: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", keyword.strip()).lower()


#: What a run uses when the policy declares nothing (fail closed: fold, never publish).
DEFAULT_SPECIAL_CARE = SpecialCare()


def values_to_fold(
    persons_per_value: pl.LazyFrame, column: str, k: int, special_care: SpecialCare
) -> pl.LazyFrame:
    """The values of ``column`` to fold: fewer than ``k`` persons, or special care.

    ``persons_per_value`` has one or more rows per value with a ``persons`` column (partition
    histograms of person-disjoint partitions are summed). ``other`` itself is never returned.
    """
    return (
        persons_per_value.group_by(column)
        .agg(pl.col("persons").sum())
        .filter(
            ((pl.col("persons") < k) | special_care.matches(pl.col(column)))
            & (pl.col(column) != OTHER)
        )
        .select(column)
    )


def persons_per_value(records: pl.LazyFrame, column: str, person: str) -> pl.LazyFrame:
    """``column`` value → distinct persons using it in ``records``."""
    return records.group_by(column).agg(pl.col(person).n_unique().cast(pl.Int64).alias("persons"))


def fold(records: pl.LazyFrame, column: str, folded: pl.LazyFrame) -> pl.LazyFrame:
    """Replace the values listed in ``folded`` (one column ``column``) by ``other``."""
    flag = "_fold"
    return (
        records.join(
            folded.unique().with_columns(pl.lit(True).alias(flag)),
            on=column,
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.when(pl.col(flag)).then(pl.lit(OTHER)).otherwise(pl.col(column)).alias(column)
        )
        .drop(flag)
    )


def fold_rare(
    records: pl.LazyFrame, column: str, person: str, k: int, special_care: SpecialCare
) -> pl.LazyFrame:
    """Fold ``column`` on ``records`` themselves: the rule applied to the set being released."""
    folded = values_to_fold(persons_per_value(records, column, person), column, k, special_care)
    return fold(records, column, folded)
