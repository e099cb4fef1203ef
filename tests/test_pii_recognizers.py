"""Recognizers on Japanese and English text: positives, formats, offsets, hard negatives."""

from __future__ import annotations

import pytest

from tokumei.anonymize.pii import TokumeiAnalyzer
from tokumei.anonymize.pii.normalize import detect_language, normalize


@pytest.fixture(scope="module")
def analyzer() -> TokumeiAnalyzer:
    return TokumeiAnalyzer()


def found(analyzer: TokumeiAnalyzer, text: str) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start : f.end]) for f in analyzer.analyze(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("メールはtaro@example.co.jpです", ("EMAIL_ADDRESS", "taro@example.co.jp")),
        (
            "連絡先ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍまで",
            ("EMAIL_ADDRESS", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        ),
        ("電話は０９０－１２３４－５６７８です", ("JP_PHONE", "０９０－１２３４－５６７８")),
        ("TEL:03-1234-5678", ("JP_PHONE", "03-1234-5678")),
        ("携帯09012345678に", ("JP_PHONE", "09012345678")),
        ("フリーダイヤル0120-123-456", ("JP_PHONE", "0120-123-456")),
        ("call +81-90-1234-5678 now", ("JP_PHONE", "+81-90-1234-5678")),
        ("マイナンバーは1234 5678 9018です", ("JP_MY_NUMBER", "1234 5678 9018")),
        ("番号123456789018を登録", ("JP_MY_NUMBER", "123456789018")),
        ("法人番号7000012050002", ("JP_CORPORATE_NUMBER", "7000012050002")),
        ("〒150-0002 渋谷区", ("JP_POSTAL_CODE", "150-0002")),
        ("郵便番号1500002", ("JP_POSTAL_CODE", "1500002")),
        ("パスポート番号はTK1234567です", ("JP_PASSPORT", "TK1234567")),
        ("在留カードAB12345678CDを確認", ("JP_RESIDENCE_CARD", "AB12345678CD")),
        ("運転免許証番号123456789012", ("JP_DRIVERS_LICENSE", "123456789012")),
        ("振込先：普通 1234567", ("JP_BANK_ACCOUNT", "1234567")),
        ("カード4111-1111-1111-1111で決済", ("CREDIT_CARD", "4111-1111-1111-1111")),
        ("接続元IPは192.168.10.5です", ("IP_ADDRESS", "192.168.10.5")),
        ("from 2001:db8::ff00:42:8329 failed", ("IP_ADDRESS", "2001:db8::ff00:42:8329")),
        ("詳しくはhttps://example.com/a?b=1をご覧ください", ("URL", "https://example.com/a?b=1")),
        (
            "配送先を東京都文京区後楽28-11-27 パレス432に変更してください",
            ("JP_ADDRESS", "東京都文京区後楽28-11-27 パレス432"),
        ),
        (
            "大阪府大阪市北区梅田一丁目2番3号です",
            ("JP_ADDRESS", "大阪府大阪市北区梅田一丁目2番3号"),
        ),
        (
            "住所：北海道札幌市中央区北１条西２丁目",
            ("JP_ADDRESS", "北海道札幌市中央区北１条西２丁目"),
        ),
        ("新潟県三条市笠堀12-4-25", ("JP_ADDRESS", "新潟県三条市笠堀12-4-25")),
        ("東京都千代田区一番町5-6にお届け", ("JP_ADDRESS", "東京都千代田区一番町5-6")),
        ("ユーザー名はfujiihir3257です。", ("USERNAME", "fujiihir3257")),
        ("ログインID：ｙａｍａｄａ．ｔ", ("USERNAME", "ｙａｍａｄａ．ｔ")),
        ("username: taro_y", ("USERNAME", "taro_y")),
        (
            "Hello, my name is Joseph Roberts. Please contact me.",
            ("PERSON_NAME", "Joseph Roberts"),
        ),
        ("Regards, Mary-Jane O'Neil", ("PERSON_NAME", "Mary-Jane O'Neil")),
        ("Name: Ken", ("PERSON_NAME", "Ken")),
        ("ＭＹ ＮＡＭＥ ＩＳ Ｊｏｅ Ｂｌｏｇｇｓ", ("PERSON_NAME", "Ｊｏｅ Ｂｌｏｇｇｓ")),
        ("お世話になっております。Maria Chenと申します。", ("PERSON_NAME", "Maria Chen")),
        ("Timothy Anderson様の代理で問い合わせます", ("PERSON_NAME", "Timothy Anderson")),
        ("Hello, my name is Mr. John Smith.", ("PERSON_NAME", "Mr. John Smith")),
        ("Mr Smith様の注文です", ("PERSON_NAME", "Mr Smith")),
        ("Dr. Kato様のご紹介", ("PERSON_NAME", "Dr. Kato")),
    ],
)
def test_entity_found_with_exact_span(analyzer, text, expected):
    assert expected in found(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "注文番号1234-5678-9018の商品",  # valid My Number check digit, but an order number
        "番号123456789012を登録",  # 12 digits, invalid My Number check digit
        "価格は3,980円でした",
        "2024年5月1日に発送",
        "配送日 2024-05-03 12:00",
        "バージョン1.2.3に更新",
        "123456789012",  # licence-shaped, no licence context
        "1234567",  # account-shaped, no account context
        "150-0002",  # postal-shaped, no 〒 and no context
        "商品型番AB1234567",
        "開始時刻12:30:00",
        "東京都内で2-3人が参加",  # no municipality between prefecture and number
        "大阪府警の5-6月の発表",
        "東京都の天気",
        "渋谷区神南1-2-3",  # no prefecture: left to NER
        "ユーザー登録の方法を教えてください",
        "usernamefoo",  # no boundary after the label
        "username and password",
        "I am Japanese and live in Osaka",  # a word that follows "I am", not a name
        "This is Urgent",
        "my name is not on the list",  # not capitalized
        "Tim said hello",  # a name with no phrase introducing it
        "enigma: Ken",  # "name:" inside another word
        "Amazonです",  # one word before an honorific: as often a product as a name
        "Tim Cook said",  # no honorific after the words
    ],
)
def test_hard_negatives(analyzer, text):
    assert found(analyzer, text) == []


def test_corporate_number_never_my_number(analyzer):
    kinds = {e for e, _ in found(analyzer, "取引先 7000012050002 様 マイナンバー")}
    assert kinds == {"JP_CORPORATE_NUMBER"}


def test_card_number_not_split_into_my_number(analyzer):
    assert found(analyzer, "4111 1111 1111 1111") == [("CREDIT_CARD", "4111 1111 1111 1111")]


def test_normalize_maps_offsets_back():
    n = normalize("ａ①ｂ㈱c")
    assert n.text == "a1b(株)c"
    assert n.to_original(3, 6) == (3, 4)  # '(株)' comes from '㈱'
    assert n.to_original(1, 2) == (1, 2)


def test_language_detection():
    assert detect_language("メール") == "ja"
    assert detect_language("mail me") == "en"
