"""ARX CSV hierarchies: parsing, validation, the Hierarchy protocol."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tokumei.anonymize.hierarchy import Hierarchy
from tokumei.anonymize.hierarchy_csv import CsvHierarchy, find_hierarchy_file, load_hierarchies

TEXT = "39;35-39;30-39;*\n38;35-39;30-39;*\n41;40-44;40-49;*\n\n"


def test_parse_and_expressions() -> None:
    h = CsvHierarchy.parse("age", TEXT)
    assert isinstance(h, Hierarchy)
    assert h.levels == 4 and h.domain.to_list() == ["39", "38", "41"]
    df = pl.DataFrame({"age": [39, 41]})  # integers are matched through their text
    got = [df.select(h.expr(pl.col("age"), lvl)).to_series().to_list() for lvl in range(4)]
    assert got == [["39", "41"], ["35-39", "40-44"], ["30-39", "40-49"], ["*", "*"]]
    with pytest.raises(ValueError, match="levels 0..3"):
        h.expr(pl.col("age"), 4)


def test_unknown_value_raises() -> None:
    h = CsvHierarchy.parse("age", TEXT)
    with pytest.raises(pl.exceptions.PolarsError):
        pl.DataFrame({"age": ["77"]}).select(h.expr(pl.col("age"), 1))


@pytest.mark.parametrize(
    "text, message",
    [
        ("a;x;*\nb;y\n", "same number of levels"),
        ("a;x;*\na;x;*\n", "more than one row"),
        ("a;x;*\nb;x;*\nc;y;*\nd;y;z\n", "not monotone"),
        ("", "no rows"),
    ],
)
def test_invalid_hierarchies(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CsvHierarchy.parse("h", text)


def test_quoted_fields_and_files(tmp_path: Path) -> None:
    (tmp_path / "x_hierarchy_city.csv").write_text('"Tokyo; Minato";Kanto;*\nOsaka;Kinki;*\n')
    (tmp_path / "x_hierarchy_sex.csv").write_text("F;*\nM;*\n")
    hs = load_hierarchies(tmp_path, ["sex", "city"])
    assert list(hs) == ["sex", "city"]
    assert hs["city"].domain.to_list() == ["Tokyo; Minato", "Osaka"]
    assert find_hierarchy_file(tmp_path, "sex").name == "x_hierarchy_sex.csv"
    with pytest.raises(FileNotFoundError):
        find_hierarchy_file(tmp_path, "zip")
    (tmp_path / "y_hierarchy_sex.csv").write_text("F;*\nM;*\n")
    with pytest.raises(ValueError, match="more than one"):
        find_hierarchy_file(tmp_path, "sex")
