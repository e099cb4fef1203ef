"""Which characters the scrubber covers, before and after a recognizer change (two checkouts).

    # in each checkout, the same texts (same --texts and --seed give the same texts):
    /work/old/.venv/bin/python /work/old/bench/scrub_coverage.py dump --out /tmp/old.json
    /work/main/.venv/bin/python /work/main/bench/scrub_coverage.py dump --out /tmp/new.json
    python bench/scrub_coverage.py compare /tmp/old.json /tmp/new.json

``dump`` runs ``TokumeiAnalyzer(ner=True)`` (the scrubber's analyzer for ``ner: true`` columns,
NER on masked texts) over ``--texts`` distinct generated inquiry texts (the generator's
templates and population, ``pii_scrub.inquiry_texts``) and writes each text's findings, the
planted values (the generator's registry) and the CPU seconds. ``compare`` reports, per entity,
how many findings each side has, and the characters covered by *some* finding on one side only:
a character the old run scrubbed and the new run leaves is a regression whatever entity type
either side gave it. It also counts texts in which a planted value is left unscrubbed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def dump(n: int, seed: int, out: Path) -> None:
    """Findings of the checkout's analyzer on ``n`` generated texts, with the planted values."""
    import numpy as np

    from tokumei.anonymize.pii.analyzer import ALL_ENTITIES, TokumeiAnalyzer, ner_engine
    from tokumei.synthetic.people import build_population
    from tokumei.synthetic.pii_plant import PiiRegistry, Planter

    pop = build_population(seed, 5_000, date(2026, 11, 24))
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        planter = Planter(PiiRegistry(Path(tmp) / "registry.txt"))
        rng = np.random.default_rng(seed)
        while len(texts) < n:
            text = planter.inquiry(pop.person(int(rng.integers(0, 5_000))), rng)
            texts.setdefault(text, list(planter.last_values))
        planter.registry.close()
    ner_engine()
    analyzer = TokumeiAnalyzer(ner=True)
    analyzer.analyze_batch(list(texts)[:50], "auto", ALL_ENTITIES)  # warm-up
    t0 = time.process_time()
    found = analyzer.analyze_batch(list(texts), "auto", ALL_ENTITIES)
    cpu = time.process_time() - t0
    rows = [
        {"text": t, "planted": planted, "found": [[f.entity_type, f.start, f.end] for f in fs]}
        for (t, planted), fs in zip(texts.items(), found, strict=True)
    ]
    out.write_text(json.dumps({"cpu_s": cpu, "rows": rows}, ensure_ascii=False))
    print(f"{len(rows)} texts, {cpu:.1f} CPU s -> {out}")


def _covered(found: list[list]) -> set[int]:
    return {i for _, s, e in found for i in range(s, e)}


def _left(row: dict) -> int:
    """Planted values of the row with at least one character not covered by a finding."""
    cov = _covered(row["found"])
    left = 0
    for value in row["planted"]:
        start = row["text"].find(value)
        if start >= 0 and not all(i in cov for i in range(start, start + len(value))):
            left += 1
    return left


def compare(old_path: Path, new_path: Path) -> None:
    """Print per-entity counts and the characters covered on one side only."""
    old, new = (json.loads(p.read_text()) for p in (old_path, new_path))
    assert [r["text"] for r in old["rows"]] == [r["text"] for r in new["rows"]], "different texts"
    counts = {
        side: Counter(f[0] for r in data["rows"] for f in r["found"])
        for side, data in (("old", old), ("new", new))
    }
    print(f"texts: {len(old['rows'])}; CPU s: old {old['cpu_s']:.1f}, new {new['cpu_s']:.1f}")
    print("| entity | old findings | new findings |\n|---|---:|---:|")
    for entity in sorted(set(counts["old"]) | set(counts["new"])):
        print(f"| {entity} | {counts['old'][entity]:,} | {counts['new'][entity]:,} |")
    lost = gained = texts_lost = 0
    examples: list[str] = []
    for a, b in zip(old["rows"], new["rows"], strict=True):
        ca, cb = _covered(a["found"]), _covered(b["found"])
        lost += len(ca - cb)
        gained += len(cb - ca)
        if ca - cb:
            texts_lost += 1
            if len(examples) < 5:
                examples.append(a["text"])
    left = {side: sum(_left(r) > 0 for r in d["rows"]) for side, d in (("old", old), ("new", new))}
    print(f"characters scrubbed by old only: {lost:,} (in {texts_lost:,} texts)")
    print(f"characters scrubbed by new only: {gained:,}")
    print(f"texts with a planted value left: old {left['old']:,}, new {left['new']:,}")
    for text in examples:
        print("  old-only coverage in:", text)


def main() -> None:
    """CLI: ``dump`` or ``compare``."""
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--texts", type=int, default=3000)
    d.add_argument("--seed", type=int, default=11)
    d.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        dump(args.texts, args.seed, args.out)
    else:
        compare(args.old, args.new)


if __name__ == "__main__":
    main()
