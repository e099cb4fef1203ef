"""GiNZA's parser: spaCy's own greedy loop vs ``_greedy_decode`` (the same decoding, GIL held).

    uv run python bench/parser_gil.py [--texts 1500] [--rounds 2]

The scrubber's NER needs the parser only for sentence starts. spaCy 3.8's Cython-3 build takes
and drops the GIL on every validity check of its ``nogil`` decoding loop, for the parser as for
the NER (``tokumei.anonymize.pii.analyzer._greedy_decode``). Same generated inquiry texts
(``pii_scrub.inquiry_texts``) through ``tok2vec``, then the parser both ways, one BLAS thread;
prints CPU ms per text and whether heads, labels and sentence starts are identical.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    """Alternate both ways for ``--rounds`` rounds and print the CPU per text."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from pii_scrub import inquiry_texts
    from spacy.util import minibatch
    from threadpoolctl import threadpool_limits

    import tokumei.anonymize.pii.analyzer as an

    texts = inquiry_texts(args.texts)
    nlp = an.ner_engine().nlp_engine.get_nlp("ja")
    tok2vec, parser = nlp.get_pipe("tok2vec"), nlp.get_pipe("parser")

    def encoded() -> list:
        return list(tok2vec.pipe([nlp.make_doc(t) for t in texts], batch_size=64))

    def annotations(docs: list) -> list:
        return [[(t.head.i, t.dep_, t.is_sent_start) for t in d] for d in docs]

    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.rounds):
            docs = encoded()
            t0 = time.process_time()
            spacy_docs = list(parser.pipe(docs, batch_size=64))
            cpu_spacy = time.process_time() - t0
            ours = encoded()
            t0 = time.process_time()
            for batch in minibatch(ours, size=64):
                an._greedy_decode(parser, sorted(batch, key=len))
            cpu_ours = time.process_time() - t0
            same = annotations(spacy_docs) == annotations(ours)
            print(
                f"parser: spaCy loop {cpu_spacy * 1000 / len(texts):.2f} ms/text, GIL held "
                f"{cpu_ours * 1000 / len(texts):.2f} ms/text, identical {same}"
            )


if __name__ == "__main__":
    main()
