"""Free-text scrubbing that scales to 10M-row columns.

Running Presidio on every value costs ~1 ms each (hours per day of logs). Instead:
1. a vectorized Polars regex (``prefilter.candidate_expr``, a proven superset of what the
   recognizers match) selects the few values that could hold an entity;
2. candidates are deduplicated (logs repeat the same queries and referrers);
3. only the distinct candidates go through the recognizers (``TokumeiAnalyzer.analyze_batch``:
   Presidio's recognizer objects, called directly, same findings as its engine), optionally
   split over worker processes; NER reads them with the pattern findings masked, once per
   distinct masked text (``masking.py``);
4. spans are replaced by ``<ENTITY_TYPE>`` and mapped back to all rows with a Polars
   ``replace`` (hash join), so per-row work stays in Rust.
NER (GiNZA) has no cheap prefilter, so it runs on every distinct Japanese-script value of the
columns where it is asked for (``ner=True`` / ``ner_columns``); other values of those columns
still go through the prefilter (there is no English NER model). It takes the
analyzer's direct batched path (``nlp.pipe``, pipeline cut after ``ner``), and with
``workers > 1`` and enough distinct values it runs in worker processes that each hold one copy
of the model (see ``analyze_distinct``).

Statistics carry counts only, never values.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from tokumei.anonymize.streaming import MAP_SCHEMA, apply_replacements
from tokumei.infra.progress import Progress

from .analyzer import (
    ALL_ENTITIES,
    NER_ENTITIES,
    NON_PERSONAL_ENTITIES,
    Finding,
    NerRunner,
    TokumeiAnalyzer,
    ner_engine,
    ner_spans,
    replace_spans,
)
from .normalize import JA_SCRIPT_CLASS, detect_language
from .prefilter import candidate_expr

#: Below this many distinct candidates, worker processes cost more than they save.
_PARALLEL_MIN = 20_000
#: NER in worker processes from this many distinct (masked) Japanese texts on. GiNZA costs
#: ~5 ms CPU a text since the OpenBLAS and GIL fixes on an AVX-512 host, ~14 ms on one without
#: (~13 ms before the fixes; bench/results/pii.md); a worker gets the parent's loaded model by
#: fork (near free), or loads it itself under spawn (2-5 s measured, the price of ~400-1,000
#: texts): 1,000 texts are ~5 s of NER, so a second worker pays for a forked start, and below
#: that a pool (and its copy of the model's memory) is not worth it.
NER_PARALLEL_MIN = 1_000
#: Texts per NER task: small enough to balance two workers, large enough for ``nlp.pipe``.
_NER_CHUNK = 512


def default_entities(ner: bool) -> tuple[str, ...]:
    """Entities scrubbed by default: all personal ones (NER types only with NER)."""
    return tuple(
        e for e in ALL_ENTITIES if e not in NON_PERSONAL_ENTITIES and (ner or e not in NER_ENTITIES)
    )


@dataclass
class ColumnScrubStats:
    """Counts for one scrubbed column (no values)."""

    rows: int = 0
    candidates: int = 0
    distinct_candidates: int = 0
    values_changed: int = 0
    entities: dict[str, int] = field(default_factory=dict)


@dataclass
class ScrubStats:
    """Per-column scrub statistics, safe to log and to put in the run manifest."""

    columns: dict[str, ColumnScrubStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """Plain dict for JSON."""
        return {
            name: {
                "rows": c.rows,
                "candidates": c.candidates,
                "distinct_candidates": c.distinct_candidates,
                "values_changed": c.values_changed,
                "entities": dict(sorted(c.entities.items())),
            }
            for name, c in self.columns.items()
        }


def _analyze_chunk(
    args: tuple[list[str], str, bool, tuple[str, ...]],
) -> list[list[Finding]]:
    texts, lang, ner, entities = args
    return TokumeiAnalyzer(ner=ner).analyze_batch(texts, lang, entities)


def _ner_chunk(args: tuple[list[str], list[str]]) -> list[list[tuple[str, int, int, float]]]:
    """Pool task: NER spans for a chunk of distinct normalized (masked) Japanese texts."""
    texts, entities = args
    return ner_spans(texts, entities)


def _pooled_ner(workers: int) -> NerRunner:
    """A ``NerRunner`` that splits the distinct texts over ``workers`` processes.

    Only NER goes to the pool; pattern recognition and masking stay in the parent (4.6 s for
    the 68,640 distinct inquiry texts of the 10M-event day on an AVX-512 host, 13.2 s on one
    without: ~0.07-0.2 ms a text, against ~5-14 ms of NER per distinct masked text), so the
    texts are masked and deduplicated over the whole column before the work is split.
    """

    def run(texts: list[str], entities: list[str]) -> list[list[tuple[str, int, int, float]]]:
        if len(texts) < NER_PARALLEL_MIN:
            return ner_spans(texts, entities)
        ctx = _pool_context()
        if ctx.get_start_method() == "fork":
            ner_engine()  # load before forking: every worker gets this copy
        size = max(64, min(_NER_CHUNK, -(-len(texts) // (workers * 4))))
        chunks = [(texts[i : i + size], entities) for i in range(0, len(texts), size)]
        progress = Progress("scrub")
        parts: list[list[list[tuple[str, int, int, float]]]] = []
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_warm_ner
        ) as pool:
            done = 0
            for part in pool.map(_ner_chunk, chunks):
                parts.append(part)
                done += len(part)
                progress(f"NER: {len(texts) - done:,} of {len(texts):,} texts left")
        return [r for part in parts for r in part]

    return run


def _ner_texts(texts: Sequence[str], lang: str) -> int:
    """How many of ``texts`` would go through GiNZA (Japanese script; English has no NER)."""
    if lang == "ja":
        return len(texts)
    if lang != "auto":
        return 0
    return sum(1 for t in texts if detect_language(t) == "ja")


def _pool_context() -> multiprocessing.context.BaseContext:
    """``fork`` where available: workers inherit the parent's loaded GiNZA (copy-on-write)
    instead of loading it again; workers only run Python/spaCy code, never Polars."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _warm_ner() -> None:
    """Pool initializer: build the NER engine once per worker (a no-op after fork)."""
    ner_engine()


def analyze_distinct(
    texts: list[str],
    lang: str,
    ner: bool,
    entities: Sequence[str],
    workers: int = 1,
) -> list[list[Finding]]:
    """Findings for distinct texts, split across ``workers`` processes when worth it.

    Without NER: ``workers`` processes from ``_PARALLEL_MIN`` texts on. With NER: from
    ``NER_PARALLEL_MIN`` Japanese texts on, the parent runs the pattern recognizers, masks
    their findings and deduplicates the masked texts, then NER runs in a pool (``_pooled_ner``:
    GiNZA loaded once, shared by forked workers, small chunks so the two cores finish
    together). Output order = input order, and the findings are those of the in-process path.
    """
    ents = tuple(entities)
    if ner and workers > 1 and _ner_texts(texts, lang) >= NER_PARALLEL_MIN:
        analyzer = TokumeiAnalyzer(ner=True, ner_runner=_pooled_ner(workers))
        return analyzer.analyze_batch(texts, lang, ents)
    if workers <= 1 or len(texts) < _PARALLEL_MIN or ner:
        return _analyze_chunk((texts, lang, ner, ents))
    size = -(-len(texts) // (workers * 4))
    chunks = [(texts[i : i + size], lang, ner, ents) for i in range(0, len(texts), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_analyze_chunk, chunks))
    return [r for part in parts for r in part]


class Scrubber:
    """Replace PII spans in free-text columns by ``<ENTITY_TYPE>``.

    Cheap to construct: engines are process-wide singletons built on first use.
    ``entities``: types to scrub (default: every personal type; pass a subset to keep e.g. URL).
    ``workers``: processes for the Presidio stage and for NER (default: ``TOKUMEI_PII_WORKERS``
    or 1; see ``analyze_distinct`` for when they are used).
    """

    def __init__(
        self,
        ner: bool = False,
        entities: Sequence[str] | None = None,
        workers: int | None = None,
    ) -> None:
        self.ner = ner
        self.entities = tuple(entities) if entities is not None else None
        self.workers = (
            workers if workers is not None else int(os.environ.get("TOKUMEI_PII_WORKERS", "1"))
        )

    def _entities(self, ner: bool) -> tuple[str, ...]:
        return self.entities if self.entities is not None else default_entities(ner)

    def replacements(
        self, counts: pl.DataFrame, lang: str = "auto", ner: bool | None = None
    ) -> tuple[list[str], list[str], ColumnScrubStats]:
        """Scrubbed text for each distinct candidate: ``(old, new, stats)``, changed ones only.

        ``counts`` has one row per distinct candidate value: ``v`` (the text) and ``len`` (how
        many rows hold it), so entity counts are per row, as if every row had been analyzed.
        ``stats.rows`` is left for the caller (it knows the column's length).
        """
        use_ner = self.ner if ner is None else ner
        stats = ColumnScrubStats()
        stats.candidates = int(counts["len"].sum() or 0)
        stats.distinct_candidates = counts.height
        old: list[str] = []
        new: list[str] = []
        if counts.height == 0:
            return old, new, stats
        texts = counts["v"].to_list()
        results = analyze_distinct(texts, lang, use_ner, self._entities(use_ner), self.workers)
        entity_counts: Counter[str] = Counter()
        for text, n, findings in zip(texts, counts["len"].to_list(), results, strict=True):
            if not findings:
                continue
            old.append(text)
            new.append(replace_spans(text, findings))
            stats.values_changed += n
            for f in findings:
                entity_counts[f.entity_type] += n
        stats.entities = dict(entity_counts)
        return old, new, stats

    def _candidates(self, column: pl.Expr, use_ner: bool, lang: str = "auto") -> pl.Expr:
        """Rows worth analyzing: the prefilter's superset, and with NER every value NER reads
        (Japanese-script values under ``lang='auto'``, all under ``'ja'``). NER never reads
        an English value (no English model), so with NER on, an ASCII-only value still needs
        the prefilter's signal: ``tokumei scrub`` has NER on by default, and a column of URLs
        or codes should not pay for it."""
        if not use_ner or lang == "en":
            return candidate_expr(column)
        if lang == "ja":
            return column.is_not_null()
        return candidate_expr(column) | column.str.contains(JA_SCRIPT_CLASS).fill_null(False)

    def scrub_series(
        self, values: pl.Series, lang: str = "auto", ner: bool | None = None
    ) -> tuple[pl.Series, ColumnScrubStats]:
        """Scrub one string Series; output aligned with the input (nulls stay null)."""
        use_ner = self.ner if ner is None else ner
        s = values.cast(pl.String)
        frame = s.to_frame("v")
        idx = frame.select(self._candidates(pl.col("v"), use_ner, lang).arg_true()).to_series()
        cand = s.gather(idx)
        counts = cand.to_frame("v").group_by("v").len()
        old, new, stats = self.replacements(counts, lang, use_ner)
        stats.rows = s.len()
        if not old:
            return s.alias(values.name), stats
        # replace on the candidate rows only, then scatter back: a hash lookup over 1-3% of
        # the rows instead of all of them
        out = s.scatter(idx, cand.replace(old, new))
        return out.alias(values.name), stats

    def replacement_map(
        self,
        frame: pl.LazyFrame,
        columns: Sequence[str],
        lang: str = "auto",
        ner_columns: Sequence[str] = (),
    ) -> tuple[pl.DataFrame, ScrubStats]:
        """What scrubbing ``columns`` of ``frame`` replaces: one row per changed distinct value
        (``column``, ``old``, ``new``; :data:`MAP_SCHEMA`), and the stats.

        Why a map: the scrub step keeps this instead of a scrubbed copy of its partition (a
        copy of the 10M-event day cost 10 CPU-s to read and write); readers put it on the
        partition with :func:`apply_replacements`.

        >>> lf = pl.LazyFrame({"q": ["mail a@example.com", "shoes"], "n": [1, 2]})
        >>> m, st = Scrubber().replacement_map(lf, ["q"])
        >>> m.rows(), st.columns["q"].values_changed
        ([('q', 'mail a@example.com', 'mail <EMAIL_ADDRESS>')], 1)
        """
        schema = frame.collect_schema()
        missing = [c for c in columns if c not in schema]
        if missing:
            raise KeyError(f"columns not in frame: {missing}")
        rows = int(frame.select(pl.len()).collect().item())
        stats = ScrubStats()
        maps: list[pl.DataFrame] = [pl.DataFrame(schema=MAP_SCHEMA)]
        for name in columns:
            use_ner = self.ner or name in ner_columns
            counts = (
                frame.select(pl.col(name).cast(pl.String).alias("v"))
                .filter(self._candidates(pl.col("v"), use_ner, lang))
                .group_by("v")
                .len()
                .sort("v")  # deterministic analysis order (and worker chunks)
                .collect(engine="streaming")
            )
            old, new, col_stats = self.replacements(counts, lang, use_ner)
            col_stats.rows = rows
            stats.columns[name] = col_stats
            if old:
                maps.append(
                    pl.DataFrame({"column": [name] * len(old), "old": old, "new": new}, MAP_SCHEMA)
                )
        return pl.concat(maps), stats

    def scrub_lazy(
        self,
        frame: pl.LazyFrame,
        columns: Sequence[str],
        lang: str = "auto",
        ner_columns: Sequence[str] = (),
    ) -> tuple[pl.LazyFrame, ScrubStats]:
        """``frame`` with ``columns`` scrubbed, as a LazyFrame to stream into a file.

        Why lazy: a day's event partition is 10M rows x 20 columns, but scrubbing needs only
        the distinct candidate values of a few text columns. Those are collected (one column
        at a time, streaming), analyzed, and the result is a per-column ``replace`` in the
        plan, so the caller can ``sink_parquet`` without ever holding the partition in memory.
        Findings and output equal ``scrub_frame`` on the collected frame.

        >>> lf = pl.LazyFrame({"q": ["mail a@example.com", "shoes"], "n": [1, 2]})
        >>> out, st = Scrubber().scrub_lazy(lf, ["q"])
        >>> out.collect()["q"].to_list(), st.columns["q"].values_changed
        (['mail <EMAIL_ADDRESS>', 'shoes'], 1)
        """
        mapping, stats = self.replacement_map(frame, columns, lang, ner_columns)
        return apply_replacements(frame, mapping), stats

    def scrub_frame(
        self,
        df: pl.DataFrame,
        columns: list[str],
        lang: str = "auto",
        ner_columns: Sequence[str] = (),
    ) -> tuple[pl.DataFrame, ScrubStats]:
        """Scrub ``columns`` of ``df``; NER on ``ner_columns`` (or on all when ``ner=True``)."""
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KeyError(f"columns not in frame: {missing}")
        stats = ScrubStats()
        replacements: list[pl.Series] = []
        for name in columns:
            use_ner = self.ner or name in ner_columns
            out, col_stats = self.scrub_series(df.get_column(name), lang, use_ner)
            replacements.append(out)
            stats.columns[name] = col_stats
        return df.with_columns(replacements), stats


def scrub_values(
    values: pl.Series,
    lang: str = "auto",
    ner: bool = False,
    entities: Sequence[str] | None = None,
) -> pl.Series:
    """Scrubbed copy of ``values`` (aligned); ``entities`` can e.g. leave URL out."""
    out, _ = Scrubber(ner=ner, entities=entities).scrub_series(values, lang)
    return out
