"""NER spans that are product codes or digit runs are not names (issue 19).

GiNZA tags the digits of ``SKU-23167-JP`` as an ORGANIZATION and ``ABC`` of ``ABC-1234`` too.
The analyzer drops such spans on both paths (direct and Presidio engine); lower-case account
names that GiNZA tags as persons stay (they are PII the scrubber catches).
"""

from __future__ import annotations

import pytest

from tokumei.anonymize.pii import TokumeiAnalyzer
from tokumei.anonymize.pii.recognizers.ginza import is_code_span


@pytest.mark.parametrize(
    ("text", "span", "code"),
    [
        ("SKU-23167-JPの在庫", "23167", True),
        ("型番ABC-1234を注文", "ABC", True),
        ("品番 98765 の返品", "98765", True),
        ("2024-05-03に", "2024-05-03", True),
        ("minoru_sasa4824です", "minoru_sasa4824", False),  # a user name: lower case
        ("トヨタ自動車に勤務", "トヨタ自動車", False),
        ("Kevin Roblesさん", "Kevin Robles", False),  # no digit
        ("田中3号", "田中", False),
    ],
)
def test_is_code_span(text: str, span: str, code: bool) -> None:
    start = text.index(span)
    assert is_code_span(text, start, start + len(span)) is code


@pytest.mark.slow
@pytest.mark.parametrize("direct", [True, False])
def test_codes_are_not_names_or_organizations(direct: bool) -> None:
    analyzer = TokumeiAnalyzer(ner=True, direct=direct)
    texts = [
        "商品SKU-23167-JPの在庫はありますか",
        "型番ABC-1234を注文しました",
        "田中太郎さんがSKU-23167-JPを購入",
        "minoru_sasa4824です",
        "トヨタ自動車に勤務",
    ]
    found = [
        [(f.entity_type, t[f.start : f.end]) for f in fs]
        for t, fs in zip(texts, analyzer.analyze_batch(texts, "ja"), strict=True)
    ]
    assert found[0] == [] and found[1] == []
    assert found[2] == [("PERSON", "田中太郎")]
    assert found[3] == [("PERSON", "minoru_sasa4824")]
    assert found[4] == [("ORGANIZATION", "トヨタ自動車")]
