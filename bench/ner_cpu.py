"""GiNZA NER CPU per inquiry text: spaCy as installed vs the two fixes in ``ner_spans``.

    uv run python bench/ner_cpu.py [--texts 3000] [--rounds 2]

Three variants, each in its own child process (thinc fixes a model's ops when it is loaded),
over the same distinct generated Japanese inquiry texts (``bench/pii_scrub.inquiry_texts``,
the generator's templates and population), one process, one BLAS thread:

* ``blis+spacy``: what the code did before: thinc's default BLIS ops, spaCy's own greedy NER
  loop (``nlp.pipe`` up to ``ner``);
* ``openblas+spacy``: numpy/OpenBLAS ops (``_fast_cpu_ops``), spaCy's own loop;
* ``openblas+gil``: numpy/OpenBLAS ops and ``_greedy_decode`` (the same decoding with the GIL
  held): what ``tokumei.anonymize.pii.analyzer.ner_spans`` runs now.

Prints CPU seconds (``time.process_time``, after the model is loaded and warmed up on other
texts) per text and whether the entities (label, start, end) are identical to the first
variant's. Rounds alternate the variants so load changes hit all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("blis+spacy", "openblas+spacy", "openblas+gil")


def child(variant: str, texts_file: Path) -> None:
    """Load GiNZA the variant's way, time NER over the texts, print JSON (time + entities)."""
    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    import tokumei.anonymize.pii.analyzer as analyzer

    if variant == "blis+spacy":
        analyzer._fast_cpu_ops = lambda: None  # keep thinc's default (BLIS) ops
    nlp = analyzer.ner_engine().nlp_engine.get_nlp("ja")
    texts = json.loads(texts_file.read_text())
    names = nlp.pipe_names
    after = names[names.index("ner") + 1 :]

    def run(batch: list[str]) -> list[list[tuple[str, int, int]]]:
        if variant == "openblas+gil":
            spans = analyzer.ner_spans(batch, entities=analyzer.NER_ENTITIES)
            return [[(lab, s, e) for lab, s, e, _ in found] for found in spans]
        with threadpool_limits(limits=1, user_api="blas"):
            out = []
            for doc in nlp.pipe(batch, batch_size=analyzer.NER_BATCH_SIZE, disable=after):
                mapping = analyzer.NER_CONFIG.model_to_presidio_entity_mapping or {}
                out.append(
                    [
                        (mapping.get(e.label_, e.label_), e.start_char, e.end_char)
                        for e in doc.ents
                        if mapping.get(e.label_, e.label_) in analyzer.NER_ENTITIES
                    ]
                )
            return out

    run(texts[:100])  # warm-up (not timed, not in the compared set)
    t0 = time.process_time()
    ents = run(texts[100:])
    cpu = time.process_time() - t0
    print(json.dumps({"cpu": cpu, "n": len(texts) - 100, "ents": ents}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    sys.path.insert(0, str(ROOT))
    from bench.pii_scrub import inquiry_texts
    from tokumei.anonymize.pii.normalize import detect_language, normalize

    pool = [normalize(t).text for t in inquiry_texts(args.texts * 2)]
    texts = [t for t in dict.fromkeys(pool) if detect_language(t) == "ja"][: args.texts + 100]
    texts_file = Path("/tmp/ner_cpu_texts.json")
    texts_file.write_text(json.dumps(texts, ensure_ascii=False))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    print(f"cpus: {os.cpu_count()}, texts: {len(texts) - 100} distinct Japanese inquiry texts "
          f"(+100 warm-up), load before: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    ref = None
    for r in range(args.rounds):
        for variant in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", variant, str(texts_file)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            ref = ref if ref is not None else (variant, res["ents"])
            same = res["ents"] == ref[1]
            cpu[variant].append(res["cpu"])
            n_ents = sum(len(e) for e in res["ents"])
            print(f"  round {r + 1} {variant:15s} CPU {res['cpu']:6.1f} s = "
                  f"{1000 * res['cpu'] / res['n']:.2f} ms/text; {n_ents} entities; "
                  f"identical to {ref[0]}: {same}")  # fmt: skip
            if not same:
                sys.exit(f"{variant} found different entities than {ref[0]}")
    base = min(cpu["blis+spacy"])
    print(f"load after: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    for variant in VARIANTS:
        best = min(cpu[variant])
        print(f"  {variant:15s} best {best:6.1f} s, {base / best:.2f}x less CPU than blis+spacy")


if __name__ == "__main__":
    main()
