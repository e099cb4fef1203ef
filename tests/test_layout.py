"""The package layout of docs/architecture.md §2, enforced: one ``tokumei`` package, data flowing
one way between its sub-packages, and infrastructure that imports no domain code.

Imports are read with ``ast`` (function-level imports included), so a lazy import cannot hide a
dependency that goes the wrong way.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tokumei"
#: Sub-packages that are infrastructure: anything may import them, they import no other part.
INFRA = {"infra"}


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tokumei"


def _edges() -> dict[str, set[str]]:
    """Sub-package → sub-packages it imports (any import anywhere in its modules)."""
    edges: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        src = _subpackage(module)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("tokumei.") and _subpackage(name) != src:
                    edges.setdefault(src, set()).add(_subpackage(name))
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_subpackages_import_each_other_without_cycles() -> None:
    edges = _edges()
    assert edges, "no tokumei imports found: the test reads the wrong tree"
    assert _cycle(edges) is None, f"import cycle between sub-packages: {_cycle(edges)}"


def test_infrastructure_imports_no_domain_package() -> None:
    edges = _edges()
    for pkg in INFRA:
        assert not edges.get(pkg), f"tokumei.{pkg} imports domain packages {edges.get(pkg)}"


def test_domain_does_not_import_orchestration() -> None:
    """The domain (ingest, anonymize, stats, expectations, release) never imports the steps."""
    edges = _edges()
    for pkg in ("ingest", "anonymize", "stats", "expectations", "release", "synthetic"):
        assert "pipeline" not in edges.get(pkg, set()), f"tokumei.{pkg} imports tokumei.pipeline"


def test_cycle_detection_finds_a_planted_cycle() -> None:
    """The checker itself: a two-node cycle is reported, a chain is not."""
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_the_wheel_ships_one_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["tokumei"]
    stray = [p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()]
    assert stray == ["tokumei"], f"importable top-level folders besides tokumei: {stray}"
