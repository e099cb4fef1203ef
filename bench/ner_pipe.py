"""Our NER path per distinct text against GiNZA's own ``nlp.pipe`` on the same texts (issue 16).

    # 1. the texts scrub hands to NER, from a kept work layer (bench/step_rerun.py prep)
    uv run python bench/ner_pipe.py texts --root /tmp/scr_ner --landing /tmp/scale/landing
    # 2. every variant on a sample of them, each in its own process, rounds alternating
    uv run python bench/ner_pipe.py run --sample 2000 --rounds 2 [--baseline /tmp/wt]
    # 3. A/B of two of them, more rounds
    uv run python bench/ner_pipe.py run --variants ours-before,ours --rounds 6 --baseline /tmp/wt

``texts`` runs the scrub step's own plan (``steps._scrub_plan`` on the kept generalized layer,
patterns and masking as in a run) with a NER runner that records its input instead of running
GiNZA: the distinct masked, normalized Japanese texts of the day, written to a JSON file in /tmp
(synthetic data; nothing of it is printed but counts).

``run`` times, on the same texts, one BLAS thread each (``OPENBLAS_NUM_THREADS=1``), CPU seconds
after the model is loaded and warmed up on 100 other texts:

* ``ginza-all``: ``spacy.load("ja_ginza")`` and ``nlp.pipe(texts, batch_size=64)``, every
  component, as installed (thinc's BLIS ops, spaCy's decoding loop);
* ``ginza-ner``: the same with only what NER needs: ``exclude=`` every component but tok2vec,
  parser and ner (GiNZA's ``attribute_ruler``, ``morphologizer``, ``compound_splitter``,
  ``bunsetu_recognizer``);
* ``ginza-no-parser``: tok2vec and ner only, to show the parser is needed (sentence starts);
* ``ours-before`` (with ``--baseline CHECKOUT``): ``ner_spans`` of another checkout;
* ``ours``: ``tokumei.anonymize.pii.analyzer.ner_spans`` of this checkout.

Entities are compared as (label, start, end) after the Presidio label mapping and filter
(PERSON, LOCATION, ORGANIZATION); the ``ginza-*`` variants are also compared on every GiNZA
label. The ``ours`` child then times the stages one by one (spaCy's tokenizer vs the words-only
one, tok2vec, parser, NER) and counts how many texts the parser still has to read.
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
TEXTS = Path("/tmp/ner_pipe_texts.json")
NEEDED = ("tok2vec", "parser", "ner")
VARIANTS = ("ginza-all", "ginza-ner", "ginza-no-parser", "ours-before", "ours")
_Ents = list[list[tuple[str, int, int]]]


def load() -> str:
    """Load average as a/b/c."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def collect_texts(root: Path, landing: Path, out: Path) -> None:
    """The distinct texts the scrub step of the kept work layer under ``root`` gives NER."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ["TOKUMEI_PSEUDONYM_KEY"] = (root / "key").read_text().strip()
    import polars as pl
    from step_rerun import DAY, _settings

    import tokumei.anonymize.pii.analyzer as an
    import tokumei.anonymize.pii.scrub as scrub_mod
    from tokumei.anonymize.compile import PERSON_SOURCES, compile_policy
    from tokumei.pipeline import steps

    seen: list[str] = []

    def capture(texts: list[str], entities: list[str]) -> list[list[tuple[str, int, int, float]]]:
        seen.extend(texts)
        return [[] for _ in texts]

    an.ner_spans = capture  # the in-process runner (TokumeiAnalyzer._ner)
    scrub_mod._pooled_ner = lambda workers: capture  # the pool's
    settings = _settings(landing, root, 1)
    run_id = (root / "run_id").read_text().strip()
    paths = steps._paths(settings, DAY, run_id)
    plans = compile_policy(steps._policy(settings), PERSON_SOURCES)
    t0 = time.perf_counter()
    for source, plan in plans.items():
        if not plan.scrub:
            continue
        for p in steps._parts(settings, None):
            _, stats = steps._scrub_plan(
                steps.partition_scan(paths, "generalized", source, p), plan, ner=True
            )
            for name, col in (stats.columns if stats else {}).items():
                print(f"{source}.{name}: {col.distinct_candidates:,} distinct candidates")
    distinct = list(dict.fromkeys(seen))
    out.write_text(json.dumps(distinct, ensure_ascii=False))
    print(f"NER inputs: {len(distinct):,} distinct texts ({len(seen):,} handed over) in "
          f"{time.perf_counter() - t0:.1f} s -> {out}; polars {pl.__version__}")  # fmt: skip


def _mapped(raw: _Ents) -> _Ents:
    from tokumei.anonymize.pii.recognizers.ginza import GINZA_LABEL_MAP, NER_ENTITIES

    out = []
    for ents in raw:
        mapped = [(GINZA_LABEL_MAP.get(lab, lab), s, e) for lab, s, e in ents]
        out.append([x for x in mapped if x[0] in NER_ENTITIES])
    return out


def child(variant: str, texts_file: Path, baseline: str | None) -> None:
    """Time one variant; print JSON with CPU seconds and entities."""
    texts = json.loads(texts_file.read_text())
    warm, timed = texts[:100], texts[100:]
    if variant.startswith("ginza"):
        import spacy

        probe = spacy.load("ja_ginza")
        keep = {"ginza-all": probe.component_names, "ginza-ner": NEEDED}.get(
            variant, ("tok2vec", "ner")
        )
        nlp = spacy.load("ja_ginza", exclude=[c for c in probe.component_names if c not in keep])
        del probe

        def run(batch: list[str]) -> tuple[_Ents, _Ents]:
            raw = [[(e.label_, e.start_char, e.end_char) for e in doc.ents] for doc in nlp.pipe(batch, batch_size=64)]  # fmt: skip
            return raw, _mapped(raw)

        run(warm)
        t0 = time.process_time()
        raw, mapped = run(timed)
        cpu = time.process_time() - t0
        print(
            json.dumps(
                {"cpu": cpu, "n": len(timed), "pipes": nlp.pipe_names, "raw": raw, "ents": mapped}
            )
        )
        return
    sys.path.insert(0, baseline if variant == "ours-before" and baseline else str(ROOT))
    import tokumei.anonymize.pii.analyzer as an

    def ours(batch: list[str]) -> _Ents:
        return [[(lab, s, e) for lab, s, e, _ in found] for found in an.ner_spans(batch)]

    ours(warm)
    t0 = time.process_time()
    ents = ours(timed)
    cpu = time.process_time() - t0
    result = {"cpu": cpu, "n": len(timed), "ents": ents, "module": an.__file__}
    if variant == "ours":
        result["stages"] = stages(an, timed)
    print(json.dumps(result))


def stages(an, texts: list[str]) -> dict[str, float]:  # noqa: ANN001 - the analyzer module
    """CPU ms per text of each stage of ``ner_spans``, and how many texts the parser reads."""
    from spacy.util import minibatch
    from threadpoolctl import threadpool_limits

    nlp = an.ner_engine().nlp_engine.get_nlp("ja")
    tok2vec, parser, ner = (nlp.get_pipe(n) for n in NEEDED)
    words_only = an._ner_tokenizer(nlp)
    n = len(texts)
    out: dict[str, float] = {}

    def per_text(t0: float) -> float:
        return round(1000 * (time.process_time() - t0) / n, 3)

    with threadpool_limits(limits=1, user_api="blas"):
        t0 = time.process_time()
        [nlp.tokenizer(t) for t in texts]
        out["spacy_tokenizer"] = per_text(t0)
        t0 = time.process_time()
        docs = [words_only(t) for t in texts]
        out["words_only_tokenizer"] = per_text(t0)
        t0 = time.process_time()
        docs = list(tok2vec.pipe(docs, batch_size=an.NER_BATCH_SIZE))
        out["tok2vec"] = per_text(t0)
        batches = [sorted(b, key=len) for b in minibatch(docs, size=an.NER_BATCH_SIZE)]
        t0 = time.process_time()
        for b in batches:
            an._greedy_decode(ner, b)
        out["ner_without_parser"] = per_text(t0)
        spanning = [[d for d in b if any(len(e) > 1 for e in d.ents)] for b in batches]
        t0 = time.process_time()
        for b in batches:
            an._greedy_decode(parser, b)
        out["parser_every_text"] = per_text(t0)
        crossed = sum(
            1
            for b in spanning
            for d in b
            if any(
                d[i].is_sent_start for e in d.ents if len(e) > 1 for i in range(e.start + 1, e.end)
            )
        )
    out["texts_with_multitoken_entity"] = sum(map(len, spanning))
    out["texts_renamed_after_parser"] = crossed
    out["texts"] = n
    return out


def run_all(args: argparse.Namespace) -> None:
    """Every variant as a child, rounds alternating the order; print the comparison."""
    texts = json.loads(args.texts_file.read_text())
    step = max(1, len(texts) // (args.sample + 100))
    sample = texts[::step][: args.sample + 100]  # spread over the sorted candidates
    sample_file = Path("/tmp/ner_pipe_sample.json")
    sample_file.write_text(json.dumps(sample, ensure_ascii=False))
    chosen = args.variants.split(",") if args.variants else VARIANTS
    variants = [v for v in VARIANTS if v in chosen and (v != "ours-before" or args.baseline)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    print(f"cpus {os.cpu_count()}; {len(texts):,} distinct NER inputs, sample {len(sample) - 100:,} "
          f"(+100 warm-up); load before {load()}")  # fmt: skip
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    ref: dict[str, object] = {}
    for r in range(args.rounds):
        for variant in variants if r % 2 == 0 else list(reversed(variants)):
            cmd = [sys.executable, __file__, "child", variant, str(sample_file)]
            proc = subprocess.run(cmd + ([args.baseline] if args.baseline else []),
                                  capture_output=True, text=True, env=env, check=True)  # fmt: skip
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            cpu[variant].append(res["cpu"])
            ref.setdefault("ents", res["ents"])  # the first variant run is the reference
            ref.setdefault("name", variant)
            if "raw" in res:
                ref.setdefault("raw", res["raw"])
            same = res["ents"] == ref["ents"]
            same_raw = res["raw"] == ref["raw"] if "raw" in res else None
            differ = sum(1 for a, b in zip(res["ents"], ref["ents"], strict=True) if a != b)
            note = f", pipes {res['pipes']}" if "pipes" in res else ""
            print(f"  round {r + 1} {variant:16s} CPU {res['cpu']:6.1f} s = "
                  f"{1000 * res['cpu'] / res['n']:5.2f} ms/text; {sum(map(len, res['ents'])):,} "
                  f"PERSON/LOCATION/ORGANIZATION; same as {ref['name']}: {same} ({differ} texts "
                  f"differ){'' if same_raw is None else f'; every GiNZA label same: {same_raw}'}"
                  f"{note}; load {load()}", flush=True)  # fmt: skip
            if "stages" in res and r == 0:
                print(f"    stages (ms/text, counts): {res['stages']}", flush=True)
    base = min(cpu[variants[0]])
    print(f"load after {load()}")
    for v in variants:
        best = min(cpu[v])
        print(f"  {v:16s} best {1000 * best / (len(sample) - 100):5.2f} ms/text, "
              f"{base / best:.2f}x less CPU than {variants[0]}")  # fmt: skip


def main() -> None:
    """``texts`` or ``run`` (``child`` is internal)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=("texts", "run", "child"))
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, default=Path("/tmp/scr_ner"))
    ap.add_argument("--landing", type=Path, default=Path("/tmp/scale/landing"))
    ap.add_argument("--texts-file", type=Path, default=TEXTS)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", help="a checkout whose ner_spans runs as ours-before")
    ap.add_argument(
        "--variants", help="comma-separated subset of the variants, e.g. ours,ours-before"
    )
    args = ap.parse_args()
    if args.command == "texts":
        collect_texts(args.root, args.landing, args.texts_file)
    elif args.command == "child":
        child(args.rest[0], Path(args.rest[1]), args.rest[2] if len(args.rest) > 2 else None)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
