"""Topic categories of search queries and inquiry texts, by keyword rules.

The ``search_volume`` statistics table publishes *which kind of thing* people searched for or
asked about, never the text. The text it sees is the scrubbed one (personal spans already
replaced by ``<ENTITY_TYPE>``); the placeholders are removed before matching, so an entity name
such as ``<EMAIL_ADDRESS>`` can never decide a category.

Rules are tried in order and the first category with a matching keyword wins; a text that
matches none (or no text), or that mentions special care (要配慮個人情報, see
:func:`categorize`), is ``other``. Matching is case-insensitive on the NFKC-normalized text
(full-width ``ｉｐｈｏｎｅ`` matches ``iphone``). Product categories come before service
categories, so ``配送 イヤホン`` is electronics. ``送料`` is deliberately no shipping keyword:
``送料無料`` (free shipping) is a common search modifier, not a shipping question.

The keywords cover what the synthetic generator (``tokumei/synthetic/events.py``
``SEARCH_WORDS``, ``pii_plant.INQUIRY_TEMPLATES``) produces plus common variants; extend the
table here, and the data dictionary and the GX allowed-value set follow.

Example:
    >>> import polars as pl
    >>> s = pl.Series(["ワイヤレスイヤホン 安い", "返品したいです。", "<PERSON> 住所", None])
    >>> pl.select(categorize(pl.lit(s))).to_series().to_list()
    ['electronics', 'returns', 'other', 'other']
"""

from __future__ import annotations

import re

import polars as pl

from tokumei.anonymize.folding import DEFAULT_SPECIAL_CARE, SpecialCare

#: (category value, Japanese label, keywords). Order matters: first match wins.
CATEGORIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "electronics",
        "家電",
        (
            "家電",
            "イヤホン",
            "ヘッドホン",
            "炊飯器",
            "iphone",
            "android",
            "スマホ",
            "ドライヤー",
            "歯ブラシ",
            "コーヒーメーカー",
            "パソコン",
            "加湿器",
            "マウス",
            "バッテリー",
            "扇風機",
            "電気毛布",
            "ケーブル",
            "充電",
            "earbuds",
            "cable",
            "switch",
            "airpods",
            "laptop",
            "カメラ",
            "テレビ",
        ),
    ),
    (
        "fashion",
        "ファッション",
        (
            "ファッション",
            "スニーカー",
            "シューズ",
            "靴",
            "日傘",
            "リュック",
            "tシャツ",
            "シャツ",
            "財布",
            "バッグ",
            "ワンピース",
            "コート",
            "shoes",
            "sneaker",
            "bag",
            "shirt",
            "wallet",
        ),
    ),
    (
        "food",
        "食品",
        (
            "食品",
            "プロテイン",
            "お米",
            "ふるさと納税",
            "コーヒー豆",
            "coffee beans",
            "お菓子",
            "food",
            "snack",
            "protein",
        ),
    ),
    (
        "beauty",
        "美容",
        (
            "美容",
            "化粧",
            "コスメ",
            "ハンドクリーム",
            "クリーム",
            "シャンプー",
            "beauty",
            "cosmetic",
        ),
    ),
    (
        "sports_outdoor",
        "スポーツ・アウトドア",
        ("スポーツ", "アウトドア", "キャンプ", "ヨガ", "ランニング", "yoga", "camp", "outdoor"),
    ),
    (
        "kids_baby",
        "キッズ・ベビー",
        ("キッズ", "ベビー", "子供", "子ども", "おむつ", "kids", "baby"),
    ),
    (
        "shipping",
        "配送",
        (
            "配送",
            "配達",
            "届",
            "発送",
            "到着",
            "delivery",
            "shipping",
            "shipped",
            "arrive",
        ),
    ),
    ("returns", "返品", ("返品", "交換", "キャンセル", "return", "exchange", "cancel")),
    (
        "payment",
        "支払い",
        (
            "請求",
            "支払",
            "返金",
            "決済",
            "カード",
            "ポイント",
            "クーポン",
            "refund",
            "charged",
            "payment",
            "coupon",
            "points",
        ),
    ),
    (
        "account",
        "アカウント",
        (
            "アカウント",
            "登録",
            "退会",
            "ログイン",
            "パスワード",
            "メールアドレス",
            "電話番号",
            "ユーザー名",
            "本人確認",
            "マイナンバー",
            "アプリ",
            "account",
            "login",
            "password",
            "sign in",
        ),
    ),
)

OTHER = "other"

#: Every value the category column can take (GX allowed set, data dictionary).
CATEGORY_VALUES: tuple[str, ...] = (*(c for c, _, _ in CATEGORIES), OTHER)

#: Japanese labels of the category values.
CATEGORY_LABELS_JA: dict[str, str] = {c: ja for c, ja, _ in CATEGORIES} | {OTHER: "その他"}

_PLACEHOLDER = r"<[A-Z][A-Z0-9_]*>"


def _pattern(keywords: tuple[str, ...]) -> str:
    return "(?i)(?:" + "|".join(re.escape(k.lower()) for k in keywords) + ")"


def categorize(text: pl.Expr, special_care: SpecialCare = DEFAULT_SPECIAL_CARE) -> pl.Expr:
    """Category of a (scrubbed) free text, as a vectorized Polars expression; never null.

    A text that mentions special care (a disease, a clinic, a pregnancy test, a creed; policy
    ``special_care_values``) is ``other`` whatever product it also names: ``妊娠検査薬`` or
    ``不妊 ベビー`` must not put a person in a category next to the fact (issue 15). No category
    itself reveals special care: they are product and service kinds (``kids_baby`` is baby
    goods, not pregnancy or childbirth care), so the closed category set stays public.
    """
    clean = text.cast(pl.String).str.replace_all(_PLACEHOLDER, " ").str.normalize("NFKC")
    clean = clean.str.to_lowercase()
    rules = [
        pl.when(clean.str.contains(_pattern(keywords))).then(pl.lit(value))
        for value, _, keywords in CATEGORIES
    ]
    sensitive = pl.when(special_care.matches(clean)).then(pl.lit(OTHER))
    return pl.coalesce(sensitive, *rules, pl.lit(OTHER)).alias("category")


def describe_markdown() -> str:
    """The keyword table as Markdown (for the data dictionary)."""
    lines = ["| category | ラベル | keywords (first match wins, in this order) |", "|---|---|---|"]
    for value, ja, keywords in CATEGORIES:
        kw = ", ".join(k.strip() for k in keywords).replace("|", "\\|")
        lines.append(f"| `{value}` | {ja} | {kw} |")
    lines.append(
        f"| `{OTHER}` | その他 | (no keyword matched, or no text; and any text with a "
        "special-care keyword of the policy, `special_care_values`, whatever it also names) |"
    )
    return "\n".join(lines)
