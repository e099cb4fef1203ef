"""Generate tests/data/pii_corpus.jsonl: labelled Japanese/English PII and hard negatives.

Run: ``uv run python tests/data/make_pii_corpus.py`` (deterministic: Faker and random seeded).
Each line: {"id", "lang", "text", "spans": [{"start", "end", "entity_type"}], "kind"}.
Identifiers are generated valid (check digits, numbering plan) in varied written forms
(hyphens, spaces, full-width digits, +81, glued to kana); hard negatives are numbers that look
like PII but are not (order/tracking numbers, dates, prices, corporate numbers, 12-digit
numbers with an invalid My Number check digit, versions, times).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import phonenumbers
from faker import Faker
from stdnum.jp import cn, in_

SEED = 20261124
OUT = Path(__file__).with_name("pii_corpus.jsonl")
FW = str.maketrans("0123456789-", "０１２３４５６７８９－")

rng = random.Random(SEED)
fja = Faker("ja_JP")
fen = Faker("en_US")
fja.seed_instance(SEED)
fen.seed_instance(SEED)


def digits(n: int, first: str = "0123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def my_number() -> str:
    base = digits(11, "123456789")
    return base + in_.calc_check_digit(base)


def bad_my_number() -> str:
    n = my_number()
    wrong = (int(n[-1]) + rng.randint(1, 9)) % 10
    return n[:-1] + str(wrong)


def corporate_number() -> str:
    base = digits(12, "123456789")
    return cn.calc_check_digit(base) + base


def phone() -> str:
    while True:
        kind = rng.choice(["mobile", "tokyo", "osaka", "other", "free"])
        if kind == "mobile":
            d = rng.choice(["070", "080", "090"]) + digits(8, "123456789")
            parts = [d[:3], d[3:7], d[7:]]
        elif kind == "tokyo":
            d = "03" + digits(8, "3456")
            parts = [d[:2], d[2:6], d[6:]]
        elif kind == "osaka":
            d = "06" + digits(8, "4679")
            parts = [d[:2], d[2:6], d[6:]]
        elif kind == "other":
            d = rng.choice(["045", "052", "092", "011", "075"]) + digits(7, "2345678")
            parts = [d[:3], d[3:6], d[6:]]
        else:
            d = "0120" + digits(6, "123456789")
            parts = [d[:4], d[4:7], d[7:]]
        num = phonenumbers.PhoneNumber(country_code=81, national_number=int(d[1:]))
        if phonenumbers.is_valid_number(num):
            break
    style = rng.choice(["hyphen", "plain", "fullwidth", "intl", "paren", "space"])
    if style == "hyphen":
        return "-".join(parts)
    if style == "plain":
        return d
    if style == "fullwidth":
        return "-".join(parts).translate(FW)
    if style == "intl":
        return "+81-" + "-".join([parts[0][1:], *parts[1:]])
    if style == "paren":
        return f"({parts[0]}){parts[1]}-{parts[2]}"
    return " ".join(parts)


def grouped(num: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(num[i : i + s])
        i += s
    return sep.join(out)


def card() -> str:
    while True:
        n = fen.credit_card_number()
        if 14 <= len(n) <= 19:
            break
    style = rng.choice(["plain", "hyphen", "space"])
    if style == "plain" or len(n) != 16:
        return n
    return grouped(n, [4, 4, 4, 4], "-" if style == "hyphen" else " ")


def passport() -> str:
    return rng.choice(["TK", "TR", "TZ", "MU", "RE", "TH"]) + digits(7)


def residence_card() -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return (
        "".join(rng.choice(letters) for _ in range(2))
        + digits(8)
        + "".join(rng.choice(letters) for _ in range(2))
    )


def version() -> str:
    return f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}"


QUERIES = [
    "渋谷 カフェ",
    "京都 紅葉 見頃",
    "iPhone 16 ケース",
    "東京 天気 明日",
    "ランチ 新宿 安い",
]

Gen = Callable[[], str]
# (entity, lang, templates, value generator); {v} is the labelled span
POSITIVE: list[tuple[str, str, list[str], Gen]] = [
    (
        "JP_MY_NUMBER",
        "ja",
        ["マイナンバーは{v}です", "個人番号：{v}", "私の番号{v}を登録"],
        lambda: rng.choice(
            [
                lambda n: n,
                lambda n: grouped(n, [4, 4, 4], "-"),
                lambda n: grouped(n, [4, 4, 4], " "),
                lambda n: n.translate(FW),
            ]
        )(my_number()),
    ),
    (
        "JP_MY_NUMBER",
        "en",
        ["My Number: {v}", "individual number {v} attached"],
        lambda: grouped(my_number(), [4, 4, 4], rng.choice(["-", " ", ""])),
    ),
    (
        "JP_CORPORATE_NUMBER",
        "ja",
        ["法人番号{v}の会社", "登録番号 T{v}", "取引先 {v} 様"],
        corporate_number,
    ),
    (
        "JP_PHONE",
        "ja",
        [
            "電話番号は{v}です",
            "{v}までご連絡ください",
            "携帯{v}に折り返し",
            "TEL:{v}",
            "お問い合わせは{v}（平日9時〜17時）",
        ],
        phone,
    ),
    ("JP_PHONE", "en", ["Call me at {v} tomorrow", "phone {v}"], phone),
    (
        "EMAIL_ADDRESS",
        "ja",
        ["メールは{v}です", "連絡先{v}まで", "{v}に送信しました"],
        lambda: fja.email(),
    ),
    ("EMAIL_ADDRESS", "en", ["Contact {v} for details", "email: {v}."], lambda: fen.email()),
    ("CREDIT_CARD", "ja", ["カード番号{v}で決済", "クレジットカード：{v}"], card),
    ("CREDIT_CARD", "en", ["card {v} was charged", "Pay with {v}"], card),
    (
        "JP_POSTAL_CODE",
        "ja",
        ["〒{v} 東京都", "郵便番号{v}", "住所：〒{v}"],
        lambda: rng.choice([lambda p: p, lambda p: p.replace("-", ""), lambda p: p.translate(FW)])(
            fja.postcode()
        ),
    ),
    (
        "JP_PASSPORT",
        "ja",
        ["旅券番号{v}", "パスポート番号は{v}です", "パスポート {v} を提示"],
        passport,
    ),
    ("JP_PASSPORT", "en", ["passport no. {v}", "Passport: {v}"], passport),
    ("JP_RESIDENCE_CARD", "ja", ["在留カード番号{v}", "在留カード：{v}を確認"], residence_card),
    (
        "JP_DRIVERS_LICENSE",
        "ja",
        ["運転免許証番号{v}", "免許証の番号は{v}です"],
        lambda: rng.choice([lambda n: n, lambda n: grouped(n, [4, 4, 4], "-")])(digits(12)),
    ),
    ("JP_DRIVERS_LICENSE", "en", ["driver's license {v}"], lambda: digits(12)),
    (
        "JP_BANK_ACCOUNT",
        "ja",
        ["口座番号{v}", "普通預金 {v} へ振込", "振込先：普通 {v}"],
        lambda: digits(7),
    ),
    (
        "IP_ADDRESS",
        "ja",
        ["接続元IPは{v}です", "{v}からアクセス"],
        lambda: rng.choice([fja.ipv4, fja.ipv6])(),
    ),
    (
        "IP_ADDRESS",
        "en",
        ["login from {v} failed", "client {v}"],
        lambda: rng.choice([fen.ipv4, fen.ipv6])(),
    ),
    (
        "URL",
        "ja",
        ["詳しくは{v}をご覧ください", "リンク{v}を開けない"],
        lambda: fja.url() + rng.choice(["", "items/123", "search?q=abc"]),
    ),
    ("URL", "en", ["see {v} for more", "visit {v}"], lambda: fen.url()),
    (
        "PERSON",
        "ja",
        [
            "担当の{v}です",
            "{v}様よりお問い合わせがありました",
            "{v}さんに確認します",
            "昨日{v}から電話がありました",
        ],
        lambda: fja.last_name() + fja.first_name(),
    ),
]
PER_GROUP = {"ja": 26, "en": 10}
PERSON_COUNT = 60

NEGATIVES: list[tuple[str, str, Gen]] = [
    ("ja", "注文番号{v}の商品が届きません", lambda: grouped(digits(12), [4, 4, 4], "-")),
    ("ja", "注文番号：{v}", lambda: "ORD-" + digits(8) + "-" + digits(5)),
    ("ja", "お問い合わせ伝票番号 {v}", lambda: digits(12, "123456789")),
    ("ja", "追跡番号{v}で確認", lambda: grouped(digits(12), [4, 4, 4], "-")),
    ("ja", "{v}に発送しました", lambda: f"2024年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"),
    ("ja", "{v} 12:30 開始", lambda: f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"),
    ("ja", "価格は{v}です", lambda: f"{rng.randint(1, 99)},{rng.randint(100, 999)}円"),
    ("ja", "合計¥{v}（税込）", lambda: f"{rng.randint(1000, 999999):,}"),
    ("ja", "会員ID {v}", lambda: bad_my_number()),
    ("ja", "番号{v}を入力", lambda: grouped(bad_my_number(), [4, 4, 4], " ")),
    ("ja", "バージョン{v}に更新", version),
    ("ja", "開始時刻{v}", lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"),
    ("en", "Order #{v} shipped", lambda: digits(10, "123456789")),
    ("en", "tracking number {v}", lambda: "1Z" + digits(16)),
    ("en", "Total ${v}", lambda: f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"),
    ("en", "released on {v}", lambda: f"{rng.randint(2000, 2030)}/{rng.randint(1, 12)}/1"),
    ("en", "ticket {v}", lambda: bad_my_number()),
    ("ja", "商品型番{v}", lambda: "AB" + digits(7)),
    ("ja", "検索ワード：{v}", lambda: rng.choice(QUERIES)),
]
NEG_PER = 8


def record(rid: int, lang: str, template: str, value: str, entity: str | None) -> dict:
    start = template.index("{v}")
    text = template.replace("{v}", value)
    spans = (
        []
        if entity is None
        else [{"start": start, "end": start + len(value), "entity_type": entity}]
    )
    return {
        "id": rid,
        "lang": lang,
        "text": text,
        "spans": spans,
        "kind": "positive" if entity else "negative",
    }


def main() -> None:
    rows: list[dict] = []
    for entity, lang, templates, gen in POSITIVE:
        n = PERSON_COUNT if entity == "PERSON" else PER_GROUP[lang]
        for i in range(n):
            rows.append(record(len(rows), lang, templates[i % len(templates)], gen(), entity))
    for lang, template, gen in NEGATIVES:
        for _ in range(NEG_PER):
            rows.append(record(len(rows), lang, template, gen(), None))
    # two entities in one text, glued to kana
    for _ in range(20):
        e, p = fja.email(), phone()
        text = f"連絡先{e}または{p}まで"
        s1 = text.index(e)
        s2 = text.index(p, s1 + len(e))
        rows.append(
            {
                "id": len(rows),
                "lang": "ja",
                "text": text,
                "kind": "positive",
                "spans": [
                    {"start": s1, "end": s1 + len(e), "entity_type": "EMAIL_ADDRESS"},
                    {"start": s2, "end": s2 + len(p), "entity_type": "JP_PHONE"},
                ],
            }
        )
    with OUT.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    spans = sum(len(r["spans"]) for r in rows)
    print(f"wrote {len(rows)} records, {spans} labelled spans to {OUT.name}")


if __name__ == "__main__":
    main()
