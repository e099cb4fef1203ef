"""Regenerate docs/data_dictionary.md from tokumei.stats.tables.TABLES.

Usage: ``uv run python scripts/gen_data_dictionary.py`` (``--check`` exits 1 if the file is stale).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tokumei.stats.tables import data_dictionary  # noqa: E402

TARGET = ROOT / "docs" / "data_dictionary.md"


def main(argv: list[str]) -> int:
    text = data_dictionary()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run scripts/gen_data_dictionary.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
