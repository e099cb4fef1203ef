"""Vendor Presidio's predefined-recognizer test cases into tests/data/presidio_cases/cases.json.

Run: ``uv run python bench/presidio_cases_extract.py /path/to/presidio [--commit SHA]``
(a checkout or the bare git directory of github.com/microsoft/presidio; with a bare directory
the files are read with ``git show COMMIT:path``).

Why a script and not a hand copy: the cases are read from the ``pytest.mark.parametrize`` lists
of ``presidio-analyzer/tests/test_{email,ip,url,phone,credit_card}_recognizer.py`` with ``ast``
(literals only, nothing of Presidio is executed), so re-vendoring a newer Presidio is one
command and the file can be checked against its source. The two URL tests written as functions
(a long host name; 3,000 dots) are added by hand below with their text built as the test
builds it. Presidio is MIT-licensed; the header of the output names the source and commit.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "presidio_cases" / "cases.json"
FILES = {
    "email": "EMAIL_ADDRESS",
    "ip": "IP_ADDRESS",
    "url": "URL",
    "phone": "PHONE_NUMBER",
    "credit_card": "CREDIT_CARD",
}


def _read(repo: Path, commit: str, path: str) -> str:
    if (repo / path).exists():
        return (repo / path).read_text(encoding="utf-8")
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _cases(source: str, path: str, entity: str) -> list[dict]:
    """Every parametrize row of every test function in one Presidio test file."""
    out: list[dict] = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("parametrize")):
                continue
            names = [n.strip() for n in ast.literal_eval(deco.args[0]).split(",")]
            rows = ast.literal_eval(ast.unparse(deco.args[1]).replace("f'", "'").replace('f"', '"'))
            for row in rows:
                values = dict(zip(names, row, strict=True))
                positions = values.get("expected_positions", values.get("expected_res", ()))
                case = {
                    "source": f"{path}::{node.name}",
                    "entity": entity,
                    "text": values["text"],
                    "expected_len": values["expected_len"],
                    "expected_spans": [list(p) for p in positions],
                }
                if "leniency" in values:
                    case["leniency"] = values["leniency"]
                if "expected_score_ranges" in values:
                    case["expected_score_ranges"] = [
                        [lo, hi] for lo, hi in values["expected_score_ranges"]
                    ]
                out.append(case)
    return out


def _url_function_cases(path: str) -> list[dict]:
    host = "a." * 60 + "example"
    long_text = f"http://{host}.com/path"
    return [
        {
            "source": f"{path}::test_long_valid_hostname_still_detected",
            "entity": "URL",
            "text": long_text,
            "expected_len": 1,
            "expected_spans": [[0, len(long_text)]],
        },
        {
            "source": f"{path}::test_repeated_dot_input_does_not_backtrack",
            "entity": "URL",
            "text": "." * 3000,
            "expected_len": 0,
            "expected_spans": [],
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("presidio", type=Path)
    ap.add_argument("--commit", default="HEAD")
    args = ap.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(args.presidio), "rev-parse", args.commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cases: list[dict] = []
    paths = []
    for name, entity in FILES.items():
        path = f"presidio-analyzer/tests/test_{name}_recognizer.py"
        paths.append(path)
        cases.extend(_cases(_read(args.presidio, commit, path), path, entity))
        if name == "url":
            cases.extend(_url_function_cases(path))
    doc = {
        "source": "https://github.com/microsoft/presidio",
        "commit": commit,
        "paths": paths,
        "license": "MIT License, Copyright (c) Presidio Contributors (test cases vendored)",
        "vendored_by": "bench/presidio_cases_extract.py",
        "note": (
            "text, expected number of results and expected (start, end) spans of each case, "
            "as Presidio's own tests assert them; PHONE_NUMBER cases carry the leniency the "
            "test sets (absent: Presidio's default, 1)."
        ),
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # one case per line: reviewable, and a diff of a re-vendoring shows cases, not brackets
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False, indent=1)
    lines = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases)
    OUT.write_text(head[:-2] + ',\n "cases": [\n' + lines + "\n ]\n}\n", encoding="utf-8")
    by_entity: dict[str, int] = {}
    for c in cases:
        by_entity[c["entity"]] = by_entity.get(c["entity"], 0) + 1
    print(f"{len(cases)} cases from {commit[:12]}: {by_entity} -> {OUT}")


if __name__ == "__main__":
    main()
