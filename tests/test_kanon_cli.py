"""``tokumei kanon`` end to end on a small file (CSV in, CSV/Parquet out, JSON on stdout)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer
from typer.testing import CliRunner

from tokumei.commands.kanon import kanon

app = typer.Typer()
app.command()(kanon)


def _write_inputs(tmp: Path) -> tuple[Path, Path]:
    hdir = tmp / "h"
    hdir.mkdir()
    (hdir / "demo_hierarchy_zip.csv").write_text("100;10*;*\n101;10*;*\n200;20*;*\n201;20*;*\n")
    (hdir / "demo_hierarchy_sex.csv").write_text("F;*\nM;*\n")
    rows = ["zip;sex;pid;disease"]
    zips, sexes = ["100", "101", "200", "201"], ["F", "M"]
    for i in range(40):
        rows.append(f"{zips[i % 4]};{sexes[i % 3 % 2]};p{i % 20};d{i % 3}")
    rows.append("101;M;p99;d0")  # a rare record
    data = tmp / "in.csv"
    data.write_text("\n".join(rows) + "\n")
    return data, hdir


def test_kanon_cli_csv(tmp_path: Path) -> None:
    data, hdir = _write_inputs(tmp_path)
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        app,
        [
            "--input",
            str(data),
            "--sep",
            ";",
            "--hierarchies",
            str(hdir),
            "--qi",
            "zip,sex",
            "--k",
            "3",
            "--max-suppression",
            "0.1",
            "--person-id",
            "pid",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(report) == {
        "transformation",
        "suppressed",
        "classes",
        "min_class_size",
        "granularity_loss",
        "discernibility",
        "metric",
        "score",
        "quality_model",
        "optimal",
        "seconds",
    }
    assert report["metric"] == "granularity"
    assert report["score"] == report["granularity_loss"]
    assert report["optimal"] is True
    assert len(report["transformation"]) == 2 and report["min_class_size"] >= 3
    frame = pl.read_csv(out, separator=";", infer_schema=False)
    assert frame.columns == ["zip", "sex", "disease"]  # the person column is not published
    assert frame.height == 41


def test_kanon_cli_parquet_l_diversity(tmp_path: Path) -> None:
    data, hdir = _write_inputs(tmp_path)
    pq = tmp_path / "in.parquet"
    pl.read_csv(data, separator=";", infer_schema=False).write_parquet(pq)
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(
        app,
        [
            "--input",
            str(pq),
            "--hierarchies",
            str(hdir),
            "--qi",
            "sex,zip",
            "--k",
            "2",
            "--max-suppression",
            "0",
            "--sensitive",
            "disease",
            "--l",
            "2",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    frame = pl.read_parquet(out)
    assert frame.group_by("sex", "zip").agg(pl.col("disease").n_unique())["disease"].min() >= 2


def test_kanon_cli_errors(tmp_path: Path) -> None:
    data, hdir = _write_inputs(tmp_path)
    args = [
        "--input",
        str(data),
        "--sep",
        ";",
        "--hierarchies",
        str(hdir),
        "--out",
        str(tmp_path / "o.csv"),
    ]
    res = CliRunner().invoke(app, [*args, "--qi", "zip", "--k", "500", "--max-suppression", "0"])
    assert res.exit_code == 1 and "no transformation satisfies" in res.output
    res = CliRunner().invoke(app, [*args, "--qi", "zip,nope", "--k", "2", "--max-suppression", "0"])
    assert res.exit_code == 1
    res = CliRunner().invoke(
        app, [*args, "--qi", "zip", "--k", "2", "--max-suppression", "0", "--l", "2"]
    )
    assert res.exit_code == 2


def _run(data: Path, hdir: Path, out: Path, *extra: str) -> dict:
    base = ["--input", str(data), "--sep", ";", "--hierarchies", str(hdir), "--qi", "zip,sex"]
    base += ["--k", "3", "--max-suppression", "0.1", "--person-id", "pid", "--out", str(out)]
    res = CliRunner().invoke(app, [*base, *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_kanon_cli_quality_models(tmp_path: Path) -> None:
    """Every --metric runs; the score is the one of the chosen model and its parameters."""
    data, hdir = _write_inputs(tmp_path)
    out = tmp_path / "out.csv"
    for m in ("granularity", "loss", "nu-entropy", "discernibility", "aecs", "height"):
        assert _run(data, hdir, out, "--metric", m)["metric"] == m
    for m in ("precision", "kl"):
        assert _run(data, hdir, out, "--metric", m)["metric"] == m
    geo = _run(data, hdir, out, "--metric", "loss")
    assert geo["quality_model"] == {"metric": "loss", "gs_factor": 0.5, "aggregate": "geometric"}
    mx = _run(data, hdir, out, "--metric", "loss", "--aggregate", "max", "--gs-factor", "0.3")
    assert mx["quality_model"] == {"metric": "loss", "gs_factor": 0.3, "aggregate": "max"}
    ent = _run(data, hdir, out, "--metric", "nu-entropy", "--monotonic")
    assert ent["quality_model"]["monotonic"] is True and ent["quality_model"]["aggregate"] == "sum"
    w = _run(data, hdir, out, "--metric", "loss", "--aggregate", "sum", "--weights", "zip=0")
    assert w["score"] >= 0
    assert _run(data, hdir, out, "--budget-nodes", "1")["optimal"] is False
    bad = CliRunner().invoke(
        app,
        ["--input", str(data), "--hierarchies", str(hdir), "--qi", "zip", "--k", "2"]
        + ["--max-suppression", "0", "--out", str(out), "--metric", "entropy"],
    )
    assert bad.exit_code == 2
    bad = CliRunner().invoke(
        app,
        ["--input", str(data), "--sep", ";", "--hierarchies", str(hdir), "--qi", "zip"]
        + ["--k", "2", "--max-suppression", "0", "--out", str(out), "--gs-factor", "2"],
    )
    assert bad.exit_code == 2


def test_kanon_cli_privacy_models(tmp_path: Path) -> None:
    """--l-variant entropy/recursive and --t run (no person column: they count records)."""
    data, hdir = _write_inputs(tmp_path)
    (hdir / "demo_hierarchy_disease.csv").write_text("d0;g0;*\nd1;g0;*\nd2;g1;*\n")
    out = tmp_path / "out.csv"
    base = ["--input", str(data), "--sep", ";", "--hierarchies", str(hdir), "--qi", "zip,sex"]
    base += ["--k", "2", "--max-suppression", "0.1", "--out", str(out), "--sensitive", "disease"]
    runs = [
        ["--l", "2", "--l-variant", "entropy"],
        ["--l", "2", "--l-variant", "recursive", "--c", "3"],
        ["--t", "0.2"],
        ["--t", "0.2", "--t-distance", "hierarchical"],
    ]
    for extra in runs:
        res = CliRunner().invoke(app, [*base, *extra])
        assert res.exit_code == 0, (extra, res.output)
    for extra in (["--l", "2", "--l-variant", "recursive"], ["--l", "2", "--c", "2"], []):
        assert CliRunner().invoke(app, [*base, *extra]).exit_code == 2, extra
