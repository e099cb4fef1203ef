"""Presidio's own recognizer test cases, run against any analyzer (ours or stock Presidio).

The cases live in ``tests/data/presidio_cases/cases.json`` (vendored from Presidio's
``presidio-analyzer/tests`` by ``bench/presidio_cases_extract.py``; source path and commit in
its header). Why here and not in the test: ``tests/test_pii_presidio_cases.py`` asserts every
case passes for ``TokumeiAnalyzer``, and ``bench/presidio_cases.py`` scores stock Presidio with
the same rule, so both sides are judged by one definition of "passes".

A case passes as Presidio's test checks it: the findings of the case's entity type are exactly
``expected_len`` many and, where the test lists spans, have exactly those (start, end) spans.
Scores are not compared: Presidio's tests pin its own scoring (0.4 for a phone number, a range
for an IP address), ours gives a validated match 1.0.
Two mappings, stated because they are choices:

* ``PHONE_NUMBER`` is matched by our ``PHONE_NUMBER`` or ``JP_PHONE`` (a Japanese number is
  reported under its own type, ``recognizers/phone.py``);
* a phone case that sets a leniency other than Presidio's default (1, ``VALID``) tests that
  knob of Presidio's ``PhoneNumberMatcher``; an analyzer has one setting, so such a case
  passes when the findings are between the case and the default: a superset of the expected
  spans at a stricter leniency (2, 3), a subset of them at a looser one (0).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CASES_PATH = (
    Path(__file__).resolve().parents[3] / "tests" / "data" / "presidio_cases" / "cases.json"
)
#: Presidio's entity type -> the types of ours that count as it.
ENTITY_MAP: dict[str, frozenset[str]] = {
    "EMAIL_ADDRESS": frozenset({"EMAIL_ADDRESS"}),
    "IP_ADDRESS": frozenset({"IP_ADDRESS"}),
    "URL": frozenset({"URL"}),
    "PHONE_NUMBER": frozenset({"PHONE_NUMBER", "JP_PHONE"}),
    "CREDIT_CARD": frozenset({"CREDIT_CARD"}),
}
DEFAULT_LENIENCY = 1

#: (entity_type, start, end) of one finding.
Span = tuple[str, int, int]


@dataclass(frozen=True)
class Case:
    """One parametrize row of a Presidio test."""

    source: str
    entity: str
    text: str
    expected_len: int
    expected_spans: tuple[tuple[int, int], ...]
    leniency: int = DEFAULT_LENIENCY

    @property
    def case_id(self) -> str:
        """Short id for test output: test name and the start of the text (Presidio's sample)."""
        return f"{self.source.rsplit('::', 1)[-1]}[{self.text[:40]!r}]"


def load_cases(path: Path = CASES_PATH) -> tuple[dict, list[Case]]:
    """The vendored file's header and its cases."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    cases = [
        Case(
            source=c["source"],
            entity=c["entity"],
            text=c["text"],
            expected_len=c["expected_len"],
            expected_spans=tuple((s, e) for s, e in c["expected_spans"]),
            leniency=c.get("leniency", DEFAULT_LENIENCY),
        )
        for c in doc["cases"]
    ]
    return {k: v for k, v in doc.items() if k != "cases"}, cases


def check(case: Case, findings: Iterable[Span]) -> str | None:
    """``None`` when ``findings`` pass the case, else why not (spans only, no other text)."""
    accepted = ENTITY_MAP[case.entity]
    got = sorted((s, e) for t, s, e in findings if t in accepted)
    want = sorted(case.expected_spans)
    if case.leniency > DEFAULT_LENIENCY:
        missing = set(want) - set(got)
        return f"missing {sorted(missing)}" if missing else None
    if case.leniency < DEFAULT_LENIENCY:
        extra = set(got) - set(want)
        return f"beyond the loosest leniency: {sorted(extra)}" if extra else None
    if len(got) != case.expected_len:
        return f"{len(got)} findings, expected {case.expected_len}: {got} vs {want}"
    if want and got != want:
        return f"spans {got}, expected {want}"
    return None


def run_cases(
    cases: Iterable[Case], analyze: Callable[[Case], Iterable[Span]]
) -> list[tuple[Case, str | None]]:
    """Every case with its failure (``None``: passed)."""
    return [(c, check(c, analyze(c))) for c in cases]
