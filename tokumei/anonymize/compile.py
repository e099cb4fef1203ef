"""The policy compiled into what the generalize and scrub steps run, per source.

Why: the policy YAML is what people review, so it must be what the engine does. Each column's
role, hierarchy, level and declared output names become one Polars ``select`` (generalize) and
one list of columns to scrub (role ``free_text``, NER where ``ner: true``); the steps call the
plan and name no source column themselves. Adding or re-levelling a column is a YAML change.

Rules, by role: a quasi-identifier (or free text with a hierarchy) is written only through the
outputs it declares, its exact value only if ``internal``; insensitive, sensitive and free text
without a hierarchy pass through; linking keys pass only if ``internal``; dropped and
special-care roles never reach this layer. A generalized column the policy gives no output, or
two columns claiming one output name, stop the run (:class:`PolicyError`), naming the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from tokumei.anonymize.hierarchies import builtin, to_mesh_1km
from tokumei.anonymize.policy import Policy, PolicyError, Role, SourcePolicy

#: The pseudonymous person column every partitioned source carries (added by pseudonymize).
PERSON = "person"

#: The landing sources generalized per person partition (the others only feed joins), in the
#: order the generalize step writes them.
PERSON_SOURCES = ("events", "measurements")

#: Hierarchies whose input is made of several source columns, and how (in ``paired_with``
#: order). Keyed by hierarchy, not by column: the policy decides which columns feed it.
MULTI_INPUT: dict[str, tuple[int, Callable[..., pl.Expr]]] = {"mesh": (2, to_mesh_1km)}

#: Entity types a hierarchy's output is made of by construction, so the scrubber keeps them
#: (a URL path template is a URL; every other personal entity in it is still replaced).
STRUCTURAL_ENTITIES: dict[str, tuple[str, ...]] = {"url": ("URL",)}

#: Roles passed through generalize unchanged (free text is scrubbed in the next step).
PASS_ROLES = frozenset({Role.INSENSITIVE, Role.SENSITIVE, Role.FREE_TEXT})


@dataclass(frozen=True)
class Generalization:
    """One generalized output column: ``hierarchy`` at ``level`` over ``inputs``."""

    output: str
    hierarchy: str
    level: int
    inputs: tuple[str, ...]

    def expr(self) -> pl.Expr:
        """The Polars expression that writes this output."""
        cols = [pl.col(c) for c in self.inputs]
        value = MULTI_INPUT[self.hierarchy][1](*cols) if len(cols) > 1 else cols[0]
        return builtin(self.hierarchy).expr(value, self.level).alias(self.output)


@dataclass(frozen=True)
class ScrubGroup:
    """Columns scrubbed with one entity set; ``kept_entities`` are not replaced."""

    columns: tuple[str, ...]
    ner_columns: tuple[str, ...] = ()
    kept_entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourcePlan:
    """What generalize writes for one source, and what scrub then replaces in it."""

    source: str
    columns: tuple[str | Generalization, ...]
    scrub: tuple[ScrubGroup, ...]

    @property
    def generalizations(self) -> tuple[Generalization, ...]:
        return tuple(c for c in self.columns if isinstance(c, Generalization))

    @property
    def outputs(self) -> tuple[str, ...]:
        """Column names of the generalized layer, in order (``person`` first)."""
        return (PERSON, *(c.output if isinstance(c, Generalization) else c for c in self.columns))

    def select(self) -> list[pl.Expr]:
        """The generalize step's ``select`` over the pseudonymous layer."""
        return [
            pl.col(PERSON),
            *(c.expr() if isinstance(c, Generalization) else pl.col(c) for c in self.columns),
        ]


def _fail(source: str, column: str, why: str) -> PolicyError:
    return PolicyError(f"policies/{source}.yaml: column {column!r}: {why}")


def compile_source(sp: SourcePolicy) -> SourcePlan:
    """Compile one source's policy; errors name the policy file and column."""
    src, cols = sp.source, sp.columns
    paired = {p.paired_with: c for c, p in cols.items() if p.paired_with}
    columns: list[str | Generalization] = []
    plain_text: list[str] = []
    ner: list[str] = []
    structural: dict[tuple[str, ...], list[str]] = {}
    for name, p in cols.items():
        if p.internal and p.role not in (Role.QUASI_IDENTIFIER, Role.LINKING_KEY):
            # free text kept raw would skip the scrub; other roles pass through anyway
            raise _fail(src, name, "internal is only for quasi-identifiers and linking keys")
        generalized = p.role is Role.QUASI_IDENTIFIER or (
            p.role is Role.FREE_TEXT and p.hierarchy is not None
        )
        if generalized:
            if name in paired:
                other = cols[paired[name]]
                if (
                    p.output
                    or p.outputs
                    or (p.hierarchy, p.level) != (other.hierarchy, other.level)
                ):
                    raise _fail(
                        src,
                        name,
                        f"is the second input of {paired[name]!r}: give it "
                        "no output and the same hierarchy and level",
                    )
                continue
            if p.hierarchy is None or not (p.output or p.outputs):
                raise _fail(src, name, "is generalized but declares no hierarchy and output")
            inputs = (name,)
            if p.paired_with is not None:
                if p.paired_with not in cols:
                    raise _fail(src, name, f"paired_with {p.paired_with!r} is not a column")
                inputs = (name, p.paired_with)
            arity = MULTI_INPUT.get(p.hierarchy, (1, None))[0]
            if len(inputs) != arity:
                raise _fail(src, name, f"hierarchy {p.hierarchy!r} takes {arity} column(s)")
            made = [Generalization(p.output, p.hierarchy, p.level or 0, inputs)] if p.output else []
            made += [Generalization(o.name, o.hierarchy, o.level, inputs) for o in p.outputs]
            for g in made:  # every output's hierarchy takes exactly the column's inputs
                takes = MULTI_INPUT.get(g.hierarchy, (1, None))[0]
                if len(inputs) != takes:
                    raise _fail(src, name, f"hierarchy {g.hierarchy!r} takes {takes} column(s)")
            columns += made
            if p.role is Role.FREE_TEXT:
                for g in made:
                    kept = STRUCTURAL_ENTITIES.get(g.hierarchy, ())
                    structural.setdefault(kept, []).append(g.output)
                    if p.ner:
                        ner.append(g.output)
            if p.internal:
                columns.append(name)
        elif p.role in PASS_ROLES:
            columns.append(name)
            if p.role is Role.FREE_TEXT:
                plain_text.append(name)
                if p.ner:
                    ner.append(name)
        elif p.role is Role.LINKING_KEY and p.internal:
            columns.append(name)
    names = [PERSON, *(c.output if isinstance(c, Generalization) else c for c in columns)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PolicyError(f"policies/{src}.yaml: output column(s) {dupes} declared twice")
    groups: list[ScrubGroup] = []
    if plain_text:
        groups.append(ScrubGroup(tuple(plain_text), tuple(c for c in ner if c in plain_text)))
    for kept, outs in structural.items():
        groups.append(ScrubGroup(tuple(outs), tuple(c for c in ner if c in outs), kept))
    return SourcePlan(src, tuple(columns), tuple(groups))


def compile_policy(policy: Policy, sources: tuple[str, ...]) -> dict[str, SourcePlan]:
    """The plans of ``sources`` (the landing sources generalized per person)."""
    return {s: compile_source(policy.source(s)) for s in sources}
