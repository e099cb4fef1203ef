"""What a published table *is* in statistical-disclosure terms: the relations it holds.

Suppression is undone by arithmetic over relations the protector did not know (issue 15: the
weight and body-fat bands of ``measurement_trends`` partition the same persons, so their sums are
equal; the audit, which knew only per-table margins, said ``ok`` while an LP recovered 32 cells
exactly). So every table declares, next to its schema (``TableSpec.relations`` in
``tokumei.stats.tables``), every linear relation an attacker can rely on, and one linear system
per release is built from these declarations alone (``tokumei.stats.disclosure.release``). A
table without a declaration cannot be published (``UndeclaredRelationsError``).

Relation types (each one true of the unsuppressed data; a test checks it on generated runs):

- :class:`Aggregate` - a *total* cell aggregates *member* cells sharing its key: ``sum``
  (``total = sum(members)``, e.g. sessions' ``all`` row over duration bands), ``union``
  (distinct persons: ``member <= total <= sum(members)``), ``covers`` (only
  ``total <= sum(members)``: a period cell over the daily cells of its days, where a person who
  changed age band during the period is in a daily cell of another key, so ``total >= member``
  does not hold). Members may be rows of the same table, of another table of the same day, or of
  the daily releases of every day of the total's week or month (``over_days``).
- :class:`SamePersons` - two or more partitions of the same persons of a group (weight bands and
  body-fat bands of one month × age band × gender): ``sum over bands`` is equal across measures up
  to the persons who have one measure but not the other. The attacker is told those numbers (the
  worst case: a scale measures both for nearly everybody, and an attacker may know it).
- :class:`Order` - per row, columns that count nested sets of persons (funnel steps,
  ``cohort_persons >= persons``, ``sessions >= persons``).
- :class:`Equal` - a column repeated on several rows (the cohort size on every week of a cohort).
- :class:`Printed` - a count printed elsewhere (manifest ``sources.<source>.kept`` rows) that is
  at least the sum of a table's count (every counted person has a kept row).
- :class:`WithinDay` - every cell counts persons among those another table of the same day
  counts once each: a cell of ``page_views``, ``sessions``, ``search_volume``, ``funnel`` or
  ``revenue`` is at most the day's total of ``daily_active_users`` (all five count persons with
  an event that day, under the same pseudonym, and every active person is in exactly one
  demographic cell). Measurements come from the scale, not from events: not declared.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Aggregate kinds (see the module docstring).
AGGREGATE_KINDS = ("sum", "union", "covers")


@dataclass(frozen=True)
class Aggregate:
    """Each total cell of ``column`` aggregates the member cells that share ``key`` with it.

    ``members`` names the member table (``None``: the same table; then ``total_rows`` =
    ``(dim, value)`` selects the total rows and the other rows are members). ``over_days``: the
    members are the daily releases of every day of the total row's period (its ``date`` is the
    period's last day; ``week`` or ``month`` column says which), else the same ``date``.
    """

    label: str
    column: str
    kind: str
    key: tuple[str, ...]
    members: str | None = None
    member_column: str | None = None
    total_rows: tuple[str, str] | None = None
    over_days: bool = False

    def __post_init__(self) -> None:
        if self.kind not in AGGREGATE_KINDS:
            raise ValueError(f"relation {self.label!r}: kind must be one of {AGGREGATE_KINDS}")
        if self.members is None and self.total_rows is None:
            raise ValueError(f"relation {self.label!r}: a same-table aggregate needs total_rows")


@dataclass(frozen=True)
class SamePersons:
    """Rows of one ``group`` partition the same persons once per value of ``split`` (over
    ``over``): ``sum_over x[split=a] - sum_over x[split=b] = d_ab`` with ``d_ab`` the (told)
    difference of the persons having measure a but not b and vice versa."""

    label: str
    column: str
    group: tuple[str, ...]
    split: str
    over: str


@dataclass(frozen=True)
class Order:
    """Per row, ``columns[0] >= columns[1] >= ...`` (nested sets of persons)."""

    label: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Equal:
    """``column`` has the same value on every row sharing ``key`` (within one release)."""

    label: str
    column: str
    key: tuple[str, ...]


@dataclass(frozen=True)
class Printed:
    """``sum(column over the table) <= the count printed as sources.<source>.kept``."""

    label: str
    column: str
    source: str


@dataclass(frozen=True)
class WithinDay:
    """Each cell of ``column`` <= the sum of ``table.table_column`` over that table's whole
    day (its persons are among the persons ``table`` counts once each that day)."""

    label: str
    column: str
    table: str
    table_column: str = "persons"


Relation = Aggregate | SamePersons | Order | Equal | Printed | WithinDay


class UndeclaredRelationsError(ValueError):
    """A table without declared relations was about to be published (fail closed)."""


def columns_of(relation: Relation) -> tuple[str, ...]:
    """The columns of the declaring table a relation constrains."""
    if isinstance(relation, Order):
        return relation.columns
    return (relation.column,)
