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
from datetime import date

import polars as pl

from tokumei.anonymize.hierarchies import builtin, to_mesh_1km
from tokumei.anonymize.policy import Policy, PolicyError, Role, SourcePolicy

#: The pseudonymous person column every partitioned source carries (added by pseudonymize).
PERSON = "person"

#: The landing sources generalized per person partition (the others only feed joins), in the
#: order the generalize step writes them.
PERSON_SOURCES = ("events", "measurements")

#: The operational DB table of persons, generalized once per run (not per partition): one row
#: per person that every partition joins.
PERSONS_SOURCE = "users"


def age_on(birth: pl.Expr, day: date | None) -> pl.Expr:
    """Completed years on ``day`` (the run's date) from a birth date: an age band must be the
    age on the day the data describes, not on the day the pipeline happens to run.

    >>> import polars as pl
    >>> from datetime import date
    >>> pl.select(age_on(pl.lit(date(1990, 6, 2)), date(2026, 6, 1))).item()
    35
    """
    if day is None:
        raise ValueError("age_on_run_date needs the run's date")
    month, dom = birth.dt.month(), birth.dt.day()
    before = (month > day.month) | ((month == day.month) & (dom > day.day))
    return pl.lit(day).dt.year() - birth.dt.year() - before.cast(pl.Int32)


#: Values a column's hierarchy reads instead of the column itself (policy ``derive``).
DERIVATIONS: dict[str, Callable[[pl.Expr, date | None], pl.Expr]] = {"age_on_run_date": age_on}

#: Hierarchies whose input is made of several source columns, and how (in ``paired_with``
#: order). Keyed by hierarchy, not by column: the policy decides which columns feed it.
MULTI_INPUT: dict[str, tuple[int, Callable[..., pl.Expr]]] = {"mesh": (2, to_mesh_1km)}

#: Entity types a hierarchy's output is made of by construction, so the scrubber keeps them
#: (a URL path template is a URL; every other personal entity in it is still replaced).
STRUCTURAL_ENTITIES: dict[str, tuple[str, ...]] = {"url": ("URL",)}

#: Roles passed through generalize unchanged (free text is scrubbed in the next step).
PASS_ROLES = frozenset({Role.INSENSITIVE, Role.SENSITIVE, Role.FREE_TEXT})


@dataclass(frozen=True)
class Fallback:
    """Where the input is null, ``column`` through its own ``hierarchy`` at ``level``."""

    column: str
    hierarchy: str
    level: int


@dataclass(frozen=True)
class Generalization:
    """One generalized output column: ``hierarchy`` at ``level`` over ``inputs`` (or over the
    value ``derive`` makes of them), with an optional fallback, null replacement and type."""

    output: str
    hierarchy: str
    level: int
    inputs: tuple[str, ...]
    derive: str | None = None
    fallback: Fallback | None = None
    missing: str | None = None
    output_type: str | None = None

    def expr(self, day: date | None = None) -> pl.Expr:
        """The Polars expression that writes this output (``day``: the run's date)."""
        cols = [pl.col(c) for c in self.inputs]
        value = MULTI_INPUT[self.hierarchy][1](*cols) if len(cols) > 1 else cols[0]
        if self.derive:
            value = DERIVATIONS[self.derive](value, day)
        hierarchy = builtin(self.hierarchy)
        if self.fallback:
            fb = self.fallback
            value = pl.coalesce(
                hierarchy.expr(value, 0), builtin(fb.hierarchy).expr(pl.col(fb.column), fb.level)
            )
        out = hierarchy.expr(value, self.level)
        if self.missing is not None:
            out = out.fill_null(self.missing)
        if self.output_type == "date":
            out = out.str.to_date("%Y-%m-%d")
        return out.alias(self.output)


@dataclass(frozen=True)
class Derived:
    """The exact derived value of a column, kept internal (policy ``internal_as``)."""

    output: str
    derive: str
    input: str

    def expr(self, day: date | None = None) -> pl.Expr:
        return DERIVATIONS[self.derive](pl.col(self.input), day).alias(self.output)


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
    columns: tuple[str | Generalization | Derived, ...]
    scrub: tuple[ScrubGroup, ...]

    @property
    def generalizations(self) -> tuple[Generalization, ...]:
        return tuple(c for c in self.columns if isinstance(c, Generalization))

    @property
    def outputs(self) -> tuple[str, ...]:
        """Column names of the generalized layer, in order (``person`` first)."""
        return (PERSON, *(c if isinstance(c, str) else c.output for c in self.columns))

    def select(self, day: date | None = None) -> list[pl.Expr]:
        """The generalize step's ``select`` over the pseudonymous layer (``day``: the run's
        date, for derived values such as the age on that day)."""
        return [
            pl.col(PERSON),
            *(pl.col(c) if isinstance(c, str) else c.expr(day) for c in self.columns),
        ]


def _fail(source: str, column: str, why: str) -> PolicyError:
    return PolicyError(f"policies/{source}.yaml: column {column!r}: {why}")


def compile_source(sp: SourcePolicy) -> SourcePlan:
    """Compile one source's policy; errors name the policy file and column."""
    src, cols = sp.source, sp.columns
    paired = {p.paired_with: c for c, p in cols.items() if p.paired_with}
    fallbacks = {p.fallback: c for c, p in cols.items() if p.fallback}
    columns: list[str | Generalization | Derived] = []
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
            if name in fallbacks and not (p.output or p.outputs):
                continue  # read only as another column's fallback, through its own level
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
            fallback = None
            if p.fallback is not None:
                fb = cols.get(p.fallback)
                if fb is None or fb.hierarchy is None:
                    raise _fail(src, name, f"fallback {p.fallback!r} is not a generalized column")
                fallback = Fallback(p.fallback, fb.hierarchy, fb.level or 0)
            extra = {
                "derive": p.derive,
                "fallback": fallback,
                "missing": p.missing,
                "output_type": p.output_type,
            }
            made = (
                [Generalization(p.output, p.hierarchy, p.level or 0, inputs, **extra)]
                if p.output
                else []
            )
            made += [
                Generalization(o.name, o.hierarchy, o.level, inputs, **extra) for o in p.outputs
            ]
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
            if p.internal and p.derive:
                if not p.internal_as:
                    raise _fail(src, name, "internal derived value needs internal_as (its name)")
                columns.append(Derived(p.internal_as, p.derive, name))
            elif p.internal:
                columns.append(name)
        elif p.role in PASS_ROLES:
            columns.append(name)
            if p.role is Role.FREE_TEXT:
                plain_text.append(name)
                if p.ner:
                    ner.append(name)
        elif p.role is Role.LINKING_KEY and p.internal:
            columns.append(name)
    names = [PERSON, *(c if isinstance(c, str) else c.output for c in columns)]
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
    """The plans of ``sources`` (landing sources or operational DB tables)."""
    return {s: compile_source(policy.tables.get(s) or policy.source(s)) for s in sources}
