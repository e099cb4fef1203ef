"""Presidio's own recognizer test cases: how many pass, our analyzer vs stock Presidio.

Run: ``uv run python bench/presidio_cases.py [--failures]``

Both sides are judged by one rule (``tokumei.anonymize.pii.presidio_cases.check``: the exact
spans Presidio's test expects for the case's entity type) on the vendored cases
(``tests/data/presidio_cases/cases.json``, source commit in its header):

* ours: ``TokumeiAnalyzer`` (patterns; no NER: the cases are English), asked for the case's
  entity types, as Presidio's test asks its one recognizer;
* stock: the installed presidio-analyzer's predefined recognizers for English through its
  ``AnalyzerEngine``, asked for the case's entity type, offline: a NoOp NLP engine instead of
  the en_core_web_lg download, e-mail TLDs from tldextract's bundled snapshot
  (``build_presidio_default_engine``). Its phone recognizer keeps its default regions, as
  shipped (the one case it fails is a Chinese number its test finds after adding CN).

Scores are not compared (see ``presidio_cases.py``). ``--failures`` lists the failed cases of
both sides (Presidio's sample texts, no personal data).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from importlib.metadata import version

from tokumei.anonymize.pii.analyzer import TokumeiAnalyzer, build_presidio_default_engine
from tokumei.anonymize.pii.presidio_cases import ENTITY_MAP, Case, load_cases, run_cases


def main() -> None:
    """Run every case on both sides and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--failures", action="store_true", help="list the failed cases")
    args = ap.parse_args()
    header, cases = load_cases()
    ours = TokumeiAnalyzer()
    stock = build_presidio_default_engine()

    def analyze_ours(case: Case) -> list[tuple[str, int, int]]:
        found = ours.analyze(case.text, "auto", sorted(ENTITY_MAP[case.entity]))
        return [(f.entity_type, f.start, f.end) for f in found]

    def analyze_stock(case: Case) -> list[tuple[str, int, int]]:
        found = stock.analyze(case.text, language="en", entities=[case.entity])
        return [(r.entity_type, r.start, r.end) for r in found]

    runs = {}
    for name, fn in (("tokumei", analyze_ours), ("presidio", analyze_stock)):
        t0 = time.perf_counter()
        runs[name] = (run_cases(cases, fn), time.perf_counter() - t0)
    total = Counter(c.entity for c in cases)
    print(
        f"cases: {len(cases)} from {header['source']} @ {header['commit'][:12]}; "
        f"stock = presidio-analyzer {version('presidio-analyzer')}"
    )
    print("| entity | cases | tokumei passed | Presidio passed |")
    print("|---|---:|---:|---:|")
    passed = {n: Counter(c.entity for c, f in res if f is None) for n, (res, _) in runs.items()}
    for entity in ENTITY_MAP:
        print(
            f"| {entity} | {total[entity]} | {passed['tokumei'][entity]} | "
            f"{passed['presidio'][entity]} |"
        )
    print(
        f"| all | {len(cases)} | {sum(passed['tokumei'].values())} | "
        f"{sum(passed['presidio'].values())} |"
    )
    print(
        f"time: tokumei {runs['tokumei'][1]:.2f} s, presidio {runs['presidio'][1]:.2f} s "
        "(one-time setup included)"
    )
    if args.failures:
        for name, (res, _) in runs.items():
            for case, failure in res:
                if failure is not None:
                    print(f"{name} FAIL {case.entity} {case.text[:60]!r}: {failure}")


if __name__ == "__main__":
    main()
