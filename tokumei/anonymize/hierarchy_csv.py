"""ARX-format CSV generalization hierarchies, as an implementation of the Hierarchy protocol.

ARX (and the Adult benchmark in ``shared/data/adult``) stores a hierarchy as a CSV file with one row
per raw value: level 0 (the raw value) first, then one column per coarser level, ``;``-separated,
``*`` for full suppression::

    39;35-39;30-39;20-39;*
    Bachelors;Undergraduate;Higher education;*

:class:`CsvHierarchy` compiles such a table into Polars expressions (``replace_strict`` from the
level-0 column to the level's column), so the k-anonymity engine treats it exactly like the
built-in hierarchies of :mod:`tokumei.anonymize.hierarchies`. Beyond the protocol it exposes ``domain``,
the hierarchy's leaves: the engine measures ARX's granularity loss against the hierarchy's leaves
(as ARX does), and falls back to the data's distinct values for hierarchies without one.

Example:
    >>> h = CsvHierarchy("sex", [["Male", "*"], ["Female", "*"]])
    >>> pl.DataFrame({"sex": ["Female"]}).select(h.expr(pl.col("sex"), 1)).item()
    '*'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from tokumei.anonymize.hierarchy import check_level
from tokumei.anonymize.streaming import per_batch


class CsvHierarchy:
    """A materialized hierarchy: ``rows[i][level]`` is leaf ``i``'s value at ``level``.

    The table is validated once: every row has the same number of levels, leaves are unique, and
    the hierarchy is monotone (values equal at one level stay equal at every higher level), which
    the lattice search relies on.
    """

    def __init__(self, name: str, rows: Sequence[Sequence[str]]) -> None:
        rows = [list(r) for r in rows]
        if not rows:
            raise ValueError(f"hierarchy {name!r} has no rows")
        widths = {len(r) for r in rows}
        if len(widths) != 1 or 0 in widths:
            raise ValueError(
                f"hierarchy {name!r}: every row needs the same number of levels, got {sorted(widths)}"
            )
        self.name = name
        self.levels = widths.pop()
        self._rows: dict[str, tuple[str, ...]] | None = None
        self.table = pl.DataFrame(
            {str(i): [r[i] for r in rows] for i in range(self.levels)},
            schema={str(i): pl.String for i in range(self.levels)},
        )
        leaves = self.table.get_column("0")
        if leaves.n_unique() != len(leaves):
            raise ValueError(f"hierarchy {name!r}: a value appears on more than one row")
        for lvl in range(1, self.levels):
            split = self.table.group_by(str(lvl - 1)).agg(pl.col(str(lvl)).n_unique().alias("n"))
            if split.get_column("n").max() != 1:
                raise ValueError(
                    f"hierarchy {name!r} is not monotone: values equal at level {lvl - 1} "
                    f"differ at level {lvl}"
                )

    def rows_by_leaf(self) -> dict[str, tuple[str, ...]]:
        """``{leaf: (level 0, level 1, …)}`` in file order (the table as Python data)."""
        if self._rows is None:
            self._rows = {r[0]: r for r in self.table.iter_rows()}
        return self._rows

    @property
    def domain(self) -> pl.Series:
        """The leaves (level-0 values), in file order."""
        return self.table.get_column("0").alias(self.name)

    def expr(self, col: pl.Expr, level: int) -> pl.Expr:
        """``col`` generalized to ``level`` (Utf8); a value missing from the hierarchy raises."""
        check_level(self, level)
        raw = col.cast(pl.String)
        if level == 0:
            return raw
        old, new = self.table.get_column("0"), self.table.get_column(str(level))
        return per_batch(raw, lambda b: b.replace_strict(old, new, return_dtype=pl.String))

    @classmethod
    def parse(cls, name: str, text: str, sep: str = ";") -> CsvHierarchy:
        """Parse ARX CSV text (quoted fields allowed; blank lines ignored)."""
        reader = csv.reader(io.StringIO(text), delimiter=sep, quotechar='"')
        return cls(name, [row for row in reader if row and any(f.strip() for f in row)])

    @classmethod
    def read(cls, path: str | Path, name: str | None = None, sep: str = ";") -> CsvHierarchy:
        """Read ``path``; the name defaults to the part after ``hierarchy_`` in the file name."""
        path = Path(path)
        if name is None:
            stem = path.stem
            name = stem.split("hierarchy_", 1)[1] if "hierarchy_" in stem else stem
        return cls.parse(name, path.read_text(encoding="utf-8-sig"), sep=sep)

    def __repr__(self) -> str:
        return f"CsvHierarchy({self.name!r}, levels={self.levels}, leaves={self.table.height})"


def find_hierarchy_file(directory: str | Path, column: str) -> Path:
    """The one file ``DIR/*hierarchy_<column>.csv`` (ARX's naming, e.g. adult_hierarchy_age.csv)."""
    matches = sorted(Path(directory).glob(f"*hierarchy_{column}.csv"))
    if not matches:
        raise FileNotFoundError(f"no hierarchy file *hierarchy_{column}.csv in {directory}")
    if len(matches) > 1:
        names = ", ".join(m.name for m in matches)
        raise ValueError(f"more than one hierarchy file for column {column!r}: {names}")
    return matches[0]


def load_hierarchies(
    directory: str | Path, columns: Iterable[str], sep: str = ";"
) -> dict[str, CsvHierarchy]:
    """Hierarchies for ``columns`` (in that order) from ``directory``."""
    return {
        c: CsvHierarchy.read(find_hierarchy_file(directory, c), name=c, sep=sep) for c in columns
    }
