"""Offline Presidio analyzers for tokumei, and the NFKC/offset-mapping layer around them.

Presidio as shipped is unusable here: ``AnalyzerEngine()`` downloads ``en_core_web_lg``, the
e-mail recognizer downloads the public-suffix list, and its ``\\b`` regexes miss identifiers
glued to Japanese text. This module builds engines that never touch the network:

* pattern engine (``ner=False``): Presidio's NoOp NLP engine for 'en' and 'ja' and tokumei's
  pattern recognizers (``recognizers/``). No model, no tokenizer: ~0.1 ms per short text.
* NER engine (``ner=True``, Japanese only): spaCy NLP engine on the installed ``ja_ginza``
  package, GiNZA labels mapped to PERSON / LOCATION / ORGANIZATION, plus the same patterns.
  English has no NER model installed, so English text always gets the pattern engine.

Both engines are module-level lazy singletons: GiNZA takes seconds to load and hundreds of MB,
so one per process (per Airflow worker) is the right lifetime; the engines are read-only after
construction, so sharing them is safe.

``TokumeiAnalyzer`` normalizes each text (per-character NFKC), runs the recognizers, maps spans
back to the original offsets and resolves overlaps (longest, then highest score, wins), so one
character is never claimed by two entities.

Pattern entities take a *direct* path by default: the pattern engine's own recognizer objects,
their compiled regexes, ``validate_result`` / ``invalidate_result`` and context scoring, with
Presidio's duplicate removal replayed on plain tuples. It computes what ``AnalyzerEngine``
computes for these recognizers (the engine adds NLP artifacts, registry look-ups, explanation
objects and a no-op context pass: three quarters of the cost of a short text), and
``tests/test_pii_direct.py`` checks findings are identical to the engine path
(``TokumeiAnalyzer(direct=False)``) on the corpus, on generated texts and on a benchmark sample.

NER takes a direct path too (``ner_spans``): the engine's own loaded GiNZA model, run with
``nlp.pipe`` in batches up to the parser on Docs of the words alone (``_ner_tokenizer``), then
the ``ner`` and, only where its sentence starts can matter, the ``parser`` components by
``_greedy_decode`` (``_decode_entities``).
Presidio's ``SpacyNlpEngine`` runs the whole ``ja_ginza`` pipeline (tok2vec, parser, ner,
morphologizer, compound splitter, bunsetu recognizer) and builds lemma lists and explanation
objects per text; the components after ``ner`` only add token annotations that no finding
reads. The parser (before ``ner``) must stay: it sets sentence starts, and spaCy's NER never
lets an entity cross one (without it entities change). The GiNZA labels are mapped, filtered
and scored as ``SpacyNlpEngine`` + ``SpacyRecognizer`` do (``NER_CONFIG``);
``tests/test_pii_ner_direct.py`` checks findings equal the engine path on the corpus and on
generated inquiry texts. Two fixes make the same model cheaper without changing a finding
(``bench/ner_cpu.py``): its matrix products run on numpy's OpenBLAS instead of a BLIS build
that falls back to its generic kernel here (``_fast_cpu_ops``), and the NER's greedy decoding
runs with the GIL held, which the Cython 3 build of spaCy 3.8 otherwise takes and drops for
every validity check (``_greedy_decode``, for the parser too). The scrubber's NER worker pool
scales it over cores.

By default NER reads each text with its pattern findings masked (``masking.py``: a phone
number reads ``<JP_PHONE>``), once per distinct masked text: inquiry texts that differ only in
their identifiers share one NER pass (a 10M-event day: 150 -> 76 s of scrubbing), and
standalone runs of 5+ digits read as zeros (``zero_numbers``: an order number; 17,260 -> 11,359
NER inputs on that day, no finding changed on 8,630 of its texts). Pattern
findings are unchanged; NER may see a different neighbourhood around an identifier, so the
engine comparison runs with ``mask_for_ner=False`` and the masked path has its own tests
(``tests/test_pii_masking.py``: no labelled corpus name is lost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from typing import Any

import regex
from presidio_analyzer import (
    AnalyzerEngine,
    BatchAnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import (
    NerModelConfiguration,
    NlpArtifacts,
    NoOpNlpEngine,
    SpacyNlpEngine,
)
from presidio_analyzer.pattern_recognizer import REGEX_TIMEOUT_SECONDS
from presidio_analyzer.predefined_recognizers import EmailRecognizer
from spacy.util import minibatch
from threadpoolctl import threadpool_limits

from .masking import Masked, mask_spans, zero_numbers
from .normalize import Normalized, detect_language, normalize
from .prefilter import entity_candidates
from .recognizers import PATTERN_ENTITIES, RECOGNIZERS, JpPatternRecognizer, pattern_recognizers
from .recognizers.email import offline_tld_extractor
from .recognizers.ginza import GINZA_LABEL_MAP, NER_ENTITIES, ginza_recognizer, is_code_span

LANGUAGES = ("en", "ja")
#: Entities that identify companies, not people: detected and reported, not scrubbed by default.
NON_PERSONAL_ENTITIES = frozenset({"JP_CORPORATE_NUMBER"})
ALL_ENTITIES: tuple[str, ...] = PATTERN_ENTITIES + NER_ENTITIES


@dataclass(frozen=True, slots=True)
class Finding:
    """One entity in the original text (offsets into the original, not the normalized, text)."""

    entity_type: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict without the matched text."""
        return {
            "entity_type": self.entity_type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
        }


class NoContextEnhancer(ContextAwareEnhancer):
    """Leaves scores alone: our recognizers do their own window-based context (``base.py``).

    Presidio's LemmaContextAwareEnhancer needs token lemmas (none with the NoOp engine) and
    deep-copies every result on every call, which was a third of the cost of a candidate.
    """

    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0.0,
            min_score_with_context_similarity=0.0,
            context_prefix_count=0,
            context_suffix_count=0,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts | None,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        """Return the results unchanged."""
        return raw_results


def build_pattern_engine(language: str) -> AnalyzerEngine:
    """Presidio engine with tokumei's pattern recognizers and no NLP model, for one language.

    One engine per language (rather than one registry holding both) halves Presidio's
    per-call recognizer lookup, which is a measurable share of the cost of a short text.
    """
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "noop"}])
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=[language])
    for rec in pattern_recognizers(language):
        registry.add_recognizer(rec)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[language],
        context_aware_enhancer=NoContextEnhancer(),
    )


#: How GiNZA entities become Presidio findings, shared by the engine and the direct NER path.
NER_CONFIG = NerModelConfiguration(
    model_to_presidio_entity_mapping=GINZA_LABEL_MAP,
    labels_to_ignore=[],
    low_score_entity_names=[],
    default_score=0.85,
)
#: Texts per ``nlp.pipe`` batch on the direct NER path: Presidio's batch size; 16-128 measured
#: within noise in CPU time (spaCy batches the tok2vec matrices; the NER's transition loop costs
#: the same per token whatever the batch), larger only holds more docs in memory.
NER_BATCH_SIZE = 64
#: Texts of one language from which the direct path asks the per-entity prefilter which
#: recognizers to run (one vectorized regex per recognizer; below, running them all is cheaper).
GATE_MIN_TEXTS = 32


def _fast_cpu_ops() -> None:
    """Make thinc run GiNZA's matrix products through numpy's OpenBLAS instead of BLIS.

    Why: the BLIS wheel thinc ships (``blis`` 1.3) falls back to its generic reference kernel
    on this CPU (``bli_sgemm_generic_ref`` in ``perf``): ~33 GFLOP/s against ~94 for numpy's
    OpenBLAS on one core, and tok2vec (width 256, depth 8) is almost all matrix products
    (bench/results/pii.md: 13.6 -> 3.5 ms CPU per inquiry text). Findings are unchanged
    (``tests/test_pii_ner_direct.py``). Must run before the model is loaded: a thinc model
    keeps the ops it was built with. OpenBLAS is held to one thread per process while NER
    runs (``ner_spans``): the scrubber parallelizes over processes, and a second BLAS thread
    per process only spins (17.9 vs 10.5 ms CPU per text measured).
    """
    from thinc.api import NumpyOps, set_current_ops

    set_current_ops(NumpyOps(use_blis=False))


def build_ner_engine() -> AnalyzerEngine:
    """Presidio engine on GiNZA (installed ``ja_ginza`` package) for Japanese NER + patterns."""
    _fast_cpu_ops()
    # GiNZA knows ~200 labels (Book, Date, …) of which we map a few; Presidio warns once per
    # unmapped label *per text*, flooding run logs. The warnings name labels, never text.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": "ja", "model_name": "ja_ginza"}],
        ner_model_configuration=NER_CONFIG,
    )
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["ja"])
    for rec in pattern_recognizers("ja"):
        registry.add_recognizer(rec)
    registry.add_recognizer(ginza_recognizer())
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=["ja"],
        context_aware_enhancer=NoContextEnhancer(),
    )


@lru_cache(maxsize=len(LANGUAGES))
def pattern_engine(language: str) -> AnalyzerEngine:
    """Process-wide pattern engine per language (cheap, but worth building once)."""
    return build_pattern_engine(language)


@lru_cache(maxsize=1)
def _entity_probes() -> tuple[tuple[str, tuple[regex.Pattern[str], ...]], ...]:
    """Each pattern entity with its recognizer's compiled regexes (same flags as Presidio)."""
    probes = []
    for entity, cls in RECOGNIZERS.items():
        flags = cls.FLAGS
        probes.append((entity, tuple(regex.compile(r, flags) for _, r, _ in cls.PATTERNS)))
    return tuple(probes)


def possible_entities(text: str, entities: Iterable[str]) -> frozenset[str]:
    """Pattern entities whose recognizer regex matches somewhere in (normalized) ``text``.

    A PatternRecognizer only reports regex matches, so a recognizer whose regexes find nothing
    cannot report anything: skipping it changes no finding, and saves Presidio's per-recognizer
    overhead (most candidates need one or two recognizers out of twelve).
    """
    wanted = set(entities)
    return frozenset(
        entity
        for entity, pats in _entity_probes()
        if entity in wanted and any(p.search(text) for p in pats)
    )


#: (entity_type, start, end, score) in normalized-text offsets: a RecognizerResult's fields.
_Raw = tuple[str, int, int, float]
#: Runs NER on distinct normalized Japanese texts for the given entity types (``ner_spans``,
#: or a pool of processes running it): one list of spans per text, in order.
NerRunner = Callable[[list[str], list[str]], list[list[_Raw]]]
_Direct = tuple[str, JpPatternRecognizer, tuple[tuple[regex.Pattern[str], float], ...]]


@lru_cache(maxsize=len(LANGUAGES))
def _direct_recognizers(language: str) -> tuple[_Direct, ...]:
    """The pattern engine's recognizers (registry order) with their regexes compiled exactly as
    ``PatternRecognizer`` compiles them (same ``regex`` module, same flags)."""
    table = []
    for rec in pattern_engine(language).registry.recognizers:
        if not isinstance(rec, JpPatternRecognizer) or rec.deny_list:
            raise TypeError(f"no direct path for {type(rec).__name__}")
        if type(rec).analyze is not JpPatternRecognizer.analyze:
            raise TypeError(f"{type(rec).__name__} overrides analyze: no direct path")
        flags = rec.FLAGS or rec.global_regex_flags
        pats = tuple((regex.compile(p.regex, flags=flags), float(p.score)) for p in rec.patterns)
        table.append((rec.supported_entities[0], rec, pats))
    return tuple(table)


def _remove_duplicates(results: list[_Raw]) -> list[_Raw]:
    """``EntityRecognizer.remove_duplicates`` on tuples: same keys, same order, same output."""
    ordered = sorted(set(results), key=lambda x: (x[0], x[1], -(x[2] - x[1]), -x[3]))
    kept: list[_Raw] = []
    for _, group in groupby(ordered, key=lambda x: x[0]):
        active: list[_Raw] = []
        for r in group:
            if r[3] == 0:
                continue
            active = [a for a in active if a[2] >= r[1]]
            if any(r[1] >= a[1] and r[2] <= a[2] and r[3] <= a[3] for a in active):
                continue
            kept.append(r)
            active.append(r)
    return sorted(kept, key=lambda x: (-x[3], x[1], -(x[2] - x[1])))


def _recognize(entity: str, rec: JpPatternRecognizer, pats: tuple, text: str) -> list[_Raw]:
    """What ``rec.analyze(text)`` returns (``PatternRecognizer`` matching + validation, then
    ``JpPatternRecognizer`` context scoring), as tuples."""
    raw: list[_Raw] = []
    for pat, base_score in pats:
        try:
            for m in pat.finditer(text, timeout=REGEX_TIMEOUT_SECONDS):
                start, end = m.span()
                if start == end:
                    continue
                matched = text[start:end]
                score = base_score
                valid = rec.validate_result(matched)
                if valid is not None:
                    score = EntityRecognizer.MAX_SCORE if valid else EntityRecognizer.MIN_SCORE
                if rec.invalidate_result(matched):
                    score = EntityRecognizer.MIN_SCORE
                if score > EntityRecognizer.MIN_SCORE:
                    raw.append((entity, start, end, score))
        except TimeoutError:  # as PatternRecognizer: skip the rest of this pattern
            logging.getLogger("presidio-analyzer").warning("regex timed out, pattern skipped")
    if not raw:
        return raw
    kept: list[_Raw] = []
    for _, start, end, score in _remove_duplicates(raw):
        new = rec.context_score(text, start, end, score)
        if new is not None:
            kept.append((entity, start, end, new))
    return kept


@lru_cache(maxsize=1)
def ner_engine() -> AnalyzerEngine:
    """Process-wide GiNZA engine: loading ja_ginza costs seconds, so load it once per process."""
    return build_ner_engine()


def _ner_score(label: str) -> float:
    """The score ``SpacyNlpEngine`` gives an entity whose (mapped) label is ``label``."""
    score = float(NER_CONFIG.default_score)
    if label in NER_CONFIG.low_score_entity_names:
        score *= NER_CONFIG.low_confidence_score_multiplier
    return score


def _greedy_decode(component: Any, docs: list[Any]) -> None:
    """Run a transition-based component (``parser`` or ``ner``) on ``docs``, GIL held.

    ``docs`` went through every component before this one. The parser and the NER are both
    spaCy ``Parser`` subclasses decoded by the same greedy loop; what follows is said of the
    NER, and the parser gains the same way (1.47 -> 0.91 ms CPU per inquiry text, identical
    heads, labels and sentence starts: ``bench/parser_gil.py``).

    Why not ``nlp.pipe``: spaCy 3.8's wheels are built with Cython 3, whose code for
    ``StateC::B`` (called by every move's validity check, 758 moves x every token for GiNZA's
    189 labels) acquires the GIL each time; spaCy's ``greedy_parse`` runs that loop in
    ``with nogil``, so each call is a real ``take_gil``/``drop_gil`` pair (90 % of the NER's
    time in ``perf``). The same greedy decoding, driven from Python with the GIL held, makes
    those acquisitions re-entrant and nearly free: the model's own ``predict`` scores each
    step and ``transition_states`` (spaCy's own ``c_transition_batch``: validity, arg-max,
    action) applies it; ``set_annotations`` writes the entities. Measured 6.1 -> 2.0 ms CPU
    per inquiry text, identical entities (bench/results/pii.md); the Presidio-engine path
    (``TokumeiAnalyzer(direct=False)``) still runs spaCy's loop, and
    ``tests/test_pii_ner_direct.py`` checks both give the same findings.
    """
    if not any(len(doc) for doc in docs):
        return
    batch = component.moves.init_batch(docs)
    model = component.model.predict(docs)
    states = [state for state in batch if not state.is_final()]
    while states:
        states = component.transition_states(states, model.predict(states))
    model.clear_memory()
    component.set_annotations(docs, batch)


#: Token attributes computed from a token's text alone (spaCy lexeme attributes).
_TEXT_ATTRS = frozenset({"ORTH", "LOWER", "SHAPE", "PREFIX", "SUFFIX"})


def _reads_words_only(nlp: Any) -> bool:
    """Whether everything up to ``ner`` reads only the words: tok2vec embeds text-only
    attributes and static vectors keyed by ORTH, and only the parser sits between it and NER
    (both read tok2vec's output; GiNZA: ORTH, SHAPE, vectors by ORTH)."""
    from spacy.attrs import ORTH

    names = nlp.pipe_names
    if "ner" not in names or names[: names.index("ner")] not in (
        ["tok2vec"],
        ["tok2vec", "parser"],
    ):
        return False
    try:
        attrs = set(nlp.config["components"]["tok2vec"]["model"]["embed"]["attrs"])
    except (KeyError, TypeError):
        return False
    return attrs <= _TEXT_ATTRS and nlp.vocab.vectors.attr == ORTH


@lru_cache(maxsize=4)
def _ner_tokenizer(nlp: Any) -> Callable[[str], Any]:
    """GiNZA's tokenization with only what the parser and NER read: the words and spaces.

    spaCy's ``JapaneseTokenizer`` also gives each token its tag, part of speech, lemma, norm,
    reading and inflection, and in split mode C splits every token again in modes A and B for
    the compound splitter (``user_data["sub_tokens"]``): 0.39 ms of a text's ~6.4 ms of NER,
    of which 0.17 ms remain here (bench/ner_pipe.py). When the model reads the words only
    (``_reads_words_only``), a Doc of the same words and spaces gives the same entities: same
    Sudachi morphemes, same dropping of empty and repeated-space tokens, same alignment
    (spaCy's own ``get_dtokens_and_spaces``). Anything else keeps the model's tokenizer.
    """
    from spacy.lang.ja import DetailedToken, JapaneseTokenizer, get_dtokens_and_spaces
    from spacy.tokens import Doc

    full = nlp.tokenizer
    if type(full) is not JapaneseTokenizer or not _reads_words_only(nlp):
        return full
    sudachi, vocab = full.tokenizer, nlp.vocab

    def tag(morpheme: Any) -> str:  # JapaneseTokenizer's tag; only spaces need it
        return "-".join(x for x in morpheme.part_of_speech()[:4] if x != "*")

    def make_doc(text: str) -> Any:
        words = []
        for m in sudachi.tokenize(text):
            surface = m.surface()
            if surface:  # JapaneseTokenizer._get_dtokens drops empty tokens (from "…")
                space = surface.isspace()
                words.append(DetailedToken(surface, tag(m) if space else "", "", *[None] * 4))
        # ... and a space token that follows a space token (Sudachi's "空白" tag)
        kept = [
            t
            for i, t in enumerate(words)
            if i == 0
            or not t.surface.isspace()
            or t.tag != "空白"
            or not words[i - 1].surface.isspace()
            or words[i - 1].tag != "空白"
        ]
        dtokens, spaces = get_dtokens_and_spaces(kept, text)
        return Doc(vocab, words=[t.surface for t in dtokens], spaces=spaces)

    return make_doc


def _decode_entities(parser: Any | None, ner: Any, docs: list[Any]) -> None:
    """Entities of parser-then-NER on ``docs`` (tok2vec done), the parser run only where its
    sentence starts can change one.

    spaCy's NER reads sentence starts in two validity checks only (``ner.pyx``: ``Begin`` and
    ``In`` are invalid when the next token starts a sentence), so the parser's sentence starts
    can only forbid moves, and no move's score depends on them. Decoded without them, greedy
    decoding picks the best move of a superset of the valid moves; when no multi-token entity
    it found has a sentence start on its second to last token, every move it picked is valid
    with the parser's sentence starts too, so parser-first decoding picks the same moves: the
    same entities. Hence NER first; the parser only on docs with a multi-token entity; and NER
    again, from a clean state, only on those where the parser starts a sentence inside one.
    """
    _greedy_decode(ner, docs)
    if parser is None:
        return
    spanning = [doc for doc in docs if any(len(ent) > 1 for ent in doc.ents)]
    if not spanning:
        return
    _greedy_decode(parser, spanning)
    crossed = [
        doc
        for doc in spanning
        if any(
            doc[i].is_sent_start
            for ent in doc.ents
            if len(ent) > 1
            for i in range(ent.start + 1, ent.end)
        )
    ]
    if crossed:
        for doc in crossed:
            doc.set_ents([], default="missing")  # every token's entity unknown, as a new Doc
        _greedy_decode(ner, crossed)


def ner_spans(
    texts: Sequence[str],
    entities: Iterable[str] = NER_ENTITIES,
    batch_size: int = NER_BATCH_SIZE,
) -> list[list[_Raw]]:
    """NER findings (type, start, end, score) for each (already normalized) Japanese text.

    What ``SpacyNlpEngine`` + ``SpacyRecognizer`` report for ``entities``, computed with the
    NER engine's model: Docs of the words alone (``_ner_tokenizer``) through ``nlp.pipe`` in
    batches up to the parser, then the ``ner`` and, where it can change an entity, the
    ``parser`` component by ``_greedy_decode`` (``_decode_entities``; the module doc says why
    the parser stays). Same entities as the whole pipeline (``bench/ner_pipe.py``).
    """
    wanted = set(entities) & set(NER_ENTITIES)
    if not wanted or not texts:
        return [[] for _ in texts]
    nlp = ner_engine().nlp_engine.get_nlp("ja")
    names = nlp.pipe_names
    first = names.index("ner")
    # GiNZA: [..., "parser", "ner", ...]; decode the parser here too when nothing sits between
    with_parser = names[first - 1 : first + 1] == ["parser", "ner"]
    skip = names[first - 1 if with_parser else first :]
    parser = nlp.get_pipe("parser") if with_parser else None
    ner = nlp.get_pipe("ner")
    make_doc = _ner_tokenizer(nlp)
    mapping = NER_CONFIG.model_to_presidio_entity_mapping or {}
    ignore = set(NER_CONFIG.labels_to_ignore or ())
    out: list[list[_Raw]] = []
    with threadpool_limits(limits=1, user_api="blas"):  # see _fast_cpu_ops
        docs = (make_doc(text) for text in texts)
        encoded = nlp.pipe(docs, batch_size=batch_size, disable=skip)
        for batch in minibatch(encoded, size=batch_size):
            by_length = sorted(batch, key=len)  # as spaCy's Parser.pipe orders a batch
            _decode_entities(parser, ner, by_length)
            for doc in batch:
                found: list[_Raw] = []
                for ent in doc.ents:
                    raw_label = ent.label_
                    if raw_label in ignore:
                        continue
                    label = mapping.get(raw_label, raw_label)  # unmapped labels kept as is
                    if label in ignore or label not in wanted:  # SpacyRecognizer's filter
                        continue
                    found.append((label, ent.start_char, ent.end_char, _ner_score(label)))
                out.append(found)
    return out


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's EmailRecognizer validating TLDs with the bundled public-suffix snapshot."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(offline_tld_extractor()(pattern_text).fqdn)


def build_presidio_default_engine() -> AnalyzerEngine:
    """Presidio 'as shipped' for comparison: default English recognizers, offline-configured.

    NoOp NLP engine instead of downloading en_core_web_lg (so no NER), and the e-mail
    recognizer's TLD check on tldextract's bundled snapshot. Patterns are Presidio's own.
    """
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "noop"}])
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_OfflineEmailRecognizer())
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


#: Pattern entities that yield to any other pattern entity on the same span: a 7- or 12-digit
#: number that a Japanese recognizer took with its context (postal code, licence) is also a
#: valid phone number of some region, and the specific reading is the better one.
GENERIC_ENTITIES = frozenset({"PHONE_NUMBER"})


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep non-overlapping findings: pattern entities first (they are validated, NER spans are
    guesses that often swallow a neighbouring postal code or number), then longer spans, then
    specific entities before generic ones (``GENERIC_ENTITIES``), then higher scores."""
    ordered = sorted(
        findings,
        key=lambda f: (
            f.entity_type in NER_ENTITIES,
            -(f.end - f.start),
            f.entity_type in GENERIC_ENTITIES,
            -f.score,
            f.start,
        ),
    )
    kept: list[Finding] = []
    for f in ordered:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def _entities_for(entities: Sequence[str] | None, ner: bool) -> list[str]:
    if entities is None:
        entities = ALL_ENTITIES if ner else PATTERN_ENTITIES
    return list(entities)


class TokumeiAnalyzer:
    """Analyze texts with the offline engines; spans are offsets into the original texts.

    ``direct=False`` sends pattern entities and NER through Presidio's ``AnalyzerEngine`` (the
    reference path the direct one is tested against); the findings are the same with
    ``mask_for_ner=False``. ``mask_for_ner`` (direct path): NER reads texts with pattern
    findings masked, once per distinct masked text. ``ner_runner``: what runs NER on those
    distinct texts (default ``ner_spans`` in this process; the scrubber passes a worker pool).
    """

    def __init__(
        self,
        ner: bool = False,
        score_threshold: float = 0.0,
        direct: bool = True,
        mask_for_ner: bool = True,
        ner_runner: NerRunner | None = None,
    ) -> None:
        self.ner = ner
        self.score_threshold = score_threshold
        self.direct = direct
        self.mask_for_ner = mask_for_ner
        self.ner_runner = ner_runner

    def _engine(self, language: str) -> AnalyzerEngine:
        if self.ner and language == "ja":
            return ner_engine()
        return pattern_engine(language)

    def _entities(self, language: str, entities: Sequence[str] | None) -> list[str]:
        ents = _entities_for(entities, self.ner)
        if not (self.ner and language == "ja"):
            ents = [e for e in ents if e not in NER_ENTITIES]
        return ents

    def analyze(
        self, text: str, language: str = "auto", entities: Sequence[str] | None = None
    ) -> list[Finding]:
        """Findings for one text."""
        return self.analyze_batch([text], language, entities)[0]

    def analyze_batch(
        self,
        texts: Sequence[str],
        language: str = "auto",
        entities: Sequence[str] | None = None,
    ) -> list[list[Finding]]:
        """Findings for many texts, grouped by language; NER through Presidio's batch engine."""
        langs = [detect_language(t) if language == "auto" else language for t in texts]
        out: list[list[Finding]] = [[] for _ in texts]
        for lang in sorted(set(langs)):
            ents = self._entities(lang, entities)
            if not ents:
                continue
            if self.direct:
                self._analyze_direct(texts, langs, lang, ents, out)
                continue
            ner_ents = [e for e in ents if e in NER_ENTITIES]
            groups: dict[frozenset[str], list[tuple[int, Normalized]]] = {}
            for i, lg in enumerate(langs):
                if lg != lang:
                    continue
                norm = normalize(texts[i])
                key = possible_entities(norm.text, ents)
                if key or ner_ents:
                    groups.setdefault(key, []).append((i, norm))
            batch = BatchAnalyzerEngine(self._engine(lang))
            for key, members in groups.items():
                results: list[list[RecognizerResult]] = batch.analyze_iterator(
                    [n.text for _, n in members],
                    language=lang,
                    batch_size=64,
                    entities=sorted(key) + ner_ents,
                    score_threshold=self.score_threshold,
                )
                for (i, norm), res in zip(members, results, strict=True):
                    found = []
                    for r in res:
                        if r.entity_type in NER_ENTITIES and is_code_span(
                            norm.text, r.start, r.end
                        ):
                            continue
                        s, e = norm.to_original(r.start, r.end)
                        found.append(Finding(r.entity_type, s, e, float(r.score)))
                    out[i] = resolve_overlaps(found)
        return out

    def _analyze_direct(
        self,
        texts: Sequence[str],
        langs: list[str],
        lang: str,
        ents: list[str],
        out: list[list[Finding]],
    ) -> None:
        """Pattern recognizers and NER without the engine: same findings (see the module doc).

        With ``mask_for_ner``, NER reads each text with its pattern findings masked
        (``masking.py``) and runs once per distinct masked text.
        """
        wanted = set(ents)
        table = [t for t in _direct_recognizers(lang) if t[0] in wanted]
        ner_ents = [e for e in ents if e in NER_ENTITIES] if self.ner and lang == "ja" else []
        threshold = self.score_threshold
        members = [i for i, lg in enumerate(langs) if lg == lang]
        norms = [normalize(texts[i]) for i in members]
        # each recognizer only where its entity's prefilter fires (exact: a superset of where
        # it can report, tests/test_pii_prefilter.py); a few texts are cheaper without
        gates = (
            entity_candidates([texts[i] for i in members], [t[0] for t in table])
            if len(members) >= GATE_MIN_TEXTS
            else None
        )
        patterns: list[list[_Raw]] = []
        for k, norm in enumerate(norms):
            raw: list[_Raw] = []
            for j, (entity, rec, pats) in enumerate(table):
                if gates is None or gates[j][k]:
                    raw.extend(_recognize(entity, rec, pats, norm.text))
            # AnalyzerEngine: score threshold, then duplicates (per entity type, so pattern
            # findings dedupe alone: NER types are disjoint from pattern types)
            patterns.append(_remove_duplicates([r for r in raw if r[3] >= threshold]))
        ner_found = self._ner(norms, patterns, ner_ents) if ner_ents else None
        for k, (i, norm) in enumerate(zip(members, norms, strict=True)):
            raw = patterns[k]
            if ner_found is not None and ner_found[k]:
                ner_raw = [
                    r
                    for r in ner_found[k]
                    if r[3] >= threshold and not is_code_span(norm.text, r[1], r[2])
                ]
                raw = _remove_duplicates(raw + ner_raw)
            if not raw:
                continue
            found = [Finding(e, *norm.to_original(s, t), float(sc)) for e, s, t, sc in raw]
            out[i] = resolve_overlaps(found)

    def _ner(
        self, norms: list[Normalized], patterns: list[list[_Raw]], ner_ents: list[str]
    ) -> list[list[_Raw]]:
        """NER spans per normalized text, each distinct (masked) text through NER once."""
        if not self.mask_for_ner:
            masked = [Masked(n.text, ()) for n in norms]
        else:
            masked = [
                mask_spans(n.text, [r[:3] for r in p]) for n, p in zip(norms, patterns, strict=True)
            ]
            # same length: the masks' offsets hold (zero_numbers)
            masked = [Masked(zero_numbers(m.text), m.masks) for m in masked]
        distinct = list(dict.fromkeys(m.text for m in masked))
        runner = self.ner_runner or ner_spans
        by_text = dict(zip(distinct, runner(distinct, ner_ents), strict=True))
        return [[(e, *m.to_source(s, t), sc) for e, s, t, sc in by_text[m.text]] for m in masked]


def replace_spans(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each (non-overlapping) finding replaced by ``<ENTITY_TYPE>``."""
    parts: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        parts.append(text[pos : f.start])
        parts.append(f"<{f.entity_type}>")
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)
