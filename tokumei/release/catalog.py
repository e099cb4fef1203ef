"""The analysts' DuckDB catalog: what its views say of themselves, and how to open it anywhere.

``published/catalog.duckdb`` (built by ``tokumei.infra.storage.build_catalog``) holds one view
per published table over globs relative to ``published/``, so a copy of the folder works
wherever it lands (docs/architecture.md §5). The comments come from the same specs as
``docs/data_dictionary.md``, so ``duckdb_views()`` / ``duckdb_columns()`` tell an analyst what
``docs/data_dictionary.md`` tells a reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tokumei.infra.storage import ViewDoc

if TYPE_CHECKING:
    import duckdb

CATALOG = "catalog.duckdb"


def view_docs() -> dict[str, ViewDoc]:
    """Comments for every view the catalog can hold, keyed by view name.

    >>> view_docs()["daily_active_users"].columns["persons"].startswith("number of distinct")
    True
    """
    from tokumei.anonymize.records import COLUMN_DOCS as RECORD_DOCS
    from tokumei.anonymize.records import COLUMN_MODEL
    from tokumei.stats.tables import COLUMN_DOCS, TABLES

    docs: dict[str, ViewDoc] = {}
    for name, spec in TABLES.items():
        comment = f"{spec.description} Released: {spec.release}."
        if spec.description_ja:
            comment += f" / {spec.description_ja}"
        columns = {
            col: f"{COLUMN_DOCS[col][1]} / {COLUMN_DOCS[col][0]}"
            for col in spec.columns
            if col in COLUMN_DOCS
        }
        docs[name] = ViewDoc(comment, columns)
    docs["anonymized_page_views"] = ViewDoc(
        "Record-level release (匿名加工情報): one row per page view of a known person, "
        "k-anonymized over persons; see docs/data_dictionary.md.",
        {col: f"{RECORD_DOCS[col]} ({COLUMN_MODEL[col]})" for col in RECORD_DOCS},
    )
    return docs


def connect(published: Path | str, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open ``<published>/catalog.duckdb`` from any working directory.

    The views read paths relative to ``published/``; DuckDB resolves such paths against
    ``file_search_path``, which is a session setting, so it is set here on every connection.

    >>> con = connect("out/published")  # doctest: +SKIP
    >>> con.sql("select sum(persons) from daily_active_users where not suppressed")  # doctest: +SKIP
    """
    import duckdb

    root = Path(published).resolve()
    path = root / CATALOG
    if not path.is_file():
        raise FileNotFoundError(f"no {CATALOG} in {root}: has a run published there?")
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET file_search_path = ?", [str(root)])
    return con
