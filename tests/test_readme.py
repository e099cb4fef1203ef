"""Every command the README shows works verbatim after ``make demo`` (issue 17).

The cheap checks run always: each ``bash`` block parses, its commands are ones the built
environment has (``.venv/bin`` after ``source .venv/bin/activate``; ``uv`` may not be on the
``PATH``), and every ``tokumei`` invocation, in blocks and in the text, names a subcommand and
options that exist. The local try-out block ("Running a date") also runs verbatim, in a scratch
directory holding links to ``.venv`` and ``dags`` (slow: a generated day through the pipeline).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from typer.main import get_command

from tokumei.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)
#: what a README block may start a command with, besides the environment's executables
SHELL_WORDS = {"export", "source", "test", "mkdir", "cd", "make", "python", "umask", "cat"}


def _commands(block: str) -> list[list[str]]:
    """Simple commands of a block: continuation lines joined, comments dropped, split at the
    shell's operators (``&&``, ``||``, ``;``, ``|``, parentheses); redirections dropped."""
    commands: list[list[str]] = []
    for line in re.sub(r"\\\n", " ", block).splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        tokens = iter(lexer)
        for token in tokens:
            if token in (">", ">>", "<"):
                next(tokens, None)  # the redirection's file
            elif token and set(token) <= set("&|;()"):
                commands.append(words) if words else None
                words = []
            else:
                words.append(token)
        if words:
            commands.append(words)
    return commands


def _inline_tokumei() -> list[list[str]]:
    """``tokumei …`` in inline code spans of the text (joined over line breaks)."""
    spans = re.findall(r"`(tokumei [^`]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    return [shlex.split(s.replace("\n", " ")) for s in spans]


def test_blocks_exist_and_parse() -> None:
    assert len(BLOCKS) >= 3
    for block in BLOCKS:
        done = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True)
        assert done.returncode == 0, (block, done.stderr)


def test_every_command_is_in_the_built_environment() -> None:
    """``uv run …`` failed right after ``make`` (uv lives in .tools/bin); commands now come
    from the activated ``.venv``."""
    venv_bin = ROOT / ".venv" / "bin"
    for block in BLOCKS:
        for words in _commands(block):
            first = words[0]
            if "=" in first or first in SHELL_WORDS:
                continue
            assert first != "uv", f"README runs uv, which may not be on PATH: {words}"
            assert (venv_bin / first).exists(), f"{first} is not in .venv/bin: {words}"


def _check_tokumei(words: list[str]) -> None:
    root = get_command(app)
    assert words[0] == "tokumei"
    name = words[1]
    assert name in root.commands, f"no subcommand {name!r}: {words}"  # type: ignore[attr-defined]
    sub = root.commands[name]  # type: ignore[attr-defined]
    known = {opt for p in sub.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    for word in words[2:]:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"tokumei {name} has no option {word}"


def test_every_tokumei_invocation_names_real_options() -> None:
    seen = 0
    for block in BLOCKS:
        for words in _commands(block):
            if words[0] == "tokumei":
                _check_tokumei(words)
                seen += 1
    for words in _inline_tokumei():
        if len(words) > 1 and not words[1].startswith("-") and words[1] != "TEXT":
            _check_tokumei([w.strip("[]") for w in words])
            seen += 1
    assert seen >= 5


def _block_with(text: str) -> str:
    [block] = [b for b in BLOCKS if text in b]
    return block


@pytest.mark.slow
def test_the_local_try_out_runs_verbatim_twice(tmp_path: Path) -> None:
    """The "Running a date" block, as written, in a fresh directory; twice, as a user reruns
    it (the key is kept, the second run replaces the release)."""
    block = _block_with("tokumei run --landing data/landing")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "dags").symlink_to(ROOT / "dags")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "TOKUMEI_PSEUDONYM_KEY")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # nothing of ours on PATH, like a fresh shell
    for attempt in (1, 2):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (attempt, done.stderr[-3000:])
        assert "published run" in done.stderr
    assert (tmp_path / "data" / "out" / "published" / "catalog.duckdb").exists()
    assert oct((tmp_path / "data" / "pseudonym.key").stat().st_mode & 0o777) == "0o600"
