"""Presidio's own recognizer test cases pass against our analyzer (issue 19).

``tests/data/presidio_cases/cases.json`` holds every parametrize case of Presidio's tests for
the entity types both analyzers handle (e-mail, IP, URL, phone, credit card), vendored with
their source path and commit. Each case runs through ``TokumeiAnalyzer`` with the case's
entity types requested, as Presidio's test runs the one recognizer, and passes when the
spans are exactly what Presidio's test expects (``presidio_cases.check``).
"""

from __future__ import annotations

import pytest

from tokumei.anonymize.pii import TokumeiAnalyzer
from tokumei.anonymize.pii.presidio_cases import ENTITY_MAP, Case, check, load_cases

HEADER, CASES = load_cases()
ANALYZER = TokumeiAnalyzer()


def test_vendored_file_names_its_source() -> None:
    assert HEADER["source"] == "https://github.com/microsoft/presidio"
    assert len(HEADER["commit"]) == 40
    assert "MIT" in HEADER["license"]
    # all five shared entity types, and Presidio's 184 cases at that commit
    assert {c.entity for c in CASES} == set(ENTITY_MAP)
    assert len(CASES) == 184


@pytest.mark.parametrize("case", CASES, ids=[c.case_id for c in CASES])
def test_presidio_case_passes(case: Case) -> None:
    found = ANALYZER.analyze(case.text, "auto", sorted(ENTITY_MAP[case.entity]))
    failure = check(case, [(f.entity_type, f.start, f.end) for f in found])
    assert failure is None, failure


def test_check_rejects_wrong_spans() -> None:
    """The rule can fail: a cut span, a missing and an extra finding are each a failure."""
    case = next(c for c in CASES if c.text == "192.168.1.0/24")
    assert check(case, [("IP_ADDRESS", 0, 14)]) is None
    assert check(case, [("IP_ADDRESS", 0, 11)]) is not None
    assert check(case, []) is not None
    assert check(case, [("IP_ADDRESS", 0, 14), ("IP_ADDRESS", 15, 20)]) is not None
    assert check(case, [("URL", 0, 14)]) is not None


def test_japanese_text_keeps_japanese_types() -> None:
    """A Japanese number stays JP_PHONE (its context rules apply); a foreign one in Japanese
    text is PHONE_NUMBER; a domain in Japanese text ends at the kana."""
    text = "電話は090-1234-5678、米国の番号は+1 415 555 0132、詳細はexample.comを見て"
    found = [(f.entity_type, text[f.start : f.end]) for f in ANALYZER.analyze(text)]
    assert found == [
        ("JP_PHONE", "090-1234-5678"),
        ("PHONE_NUMBER", "+1 415 555 0132"),
        ("URL", "example.com"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "配送日 2024-05-03 12:00",  # a US number by digits alone; libphonenumber rejects it
        "注文番号 415-555-0132",  # negative context
        "run main.py and README.md",  # file names whose extensions are country codes
        "done.It was late",  # a missing space
        "www.microsoft",  # www under a brand TLD
        "在庫 1234567 個",  # 7 digits: valid in some numbering plan, no context
    ],
)
def test_no_phone_or_domain_in(text: str) -> None:
    found = ANALYZER.analyze(text, "auto", ["PHONE_NUMBER", "URL"])
    assert found == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("連絡先 a@xn--d1acufc.xn--p1ai まで", ("EMAIL_ADDRESS", "a@xn--d1acufc.xn--p1ai")),
        ("user@пример.рфに送信", ("EMAIL_ADDRESS", "user@пример.рф")),
        ("see https://пример.рф/путь ok", ("URL", "https://пример.рф/путь")),
        ("http://xn--d1acufc.xn--p1ai/ ok", ("URL", "http://xn--d1acufc.xn--p1ai/")),
        ("xn--d1acufc.xn--p1aiです", ("URL", "xn--d1acufc.xn--p1ai")),
        ("接続元 fe80::1%eth0 から", ("IP_ADDRESS", "fe80::1%eth0")),
        ("社内網 10.0.0.0/8 内", ("IP_ADDRESS", "10.0.0.0/8")),
        ("番号は+44 (20) 7123 4567です", ("PHONE_NUMBER", "+44 (20) 7123 4567")),
    ],
)
def test_idn_ipv6_and_international_in_japanese_text(text: str, expected: tuple[str, str]) -> None:
    found = [(f.entity_type, text[f.start : f.end]) for f in ANALYZER.analyze(text)]
    assert found == [expected]
