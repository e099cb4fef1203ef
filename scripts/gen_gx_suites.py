"""Regenerate the generated GX suites in gx/expectations/ from the default policy's specs.

Usage: ``uv run python scripts/gen_gx_suites.py`` (``--check`` exits 1 if a file is stale).

The suites are the ones the pipeline builds at run time for the default policy
(``tokumei.pipeline.steps`` specs → ``tokumei.expectations.runner.build_expectations``), written
as GX suite JSON so the data-quality team can read and review them next to their own
hand-written suites (gx/README.md). Hand-written suites are never touched.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

from tokumei.anonymize.policy import default_policy_dir, load_policy  # noqa: E402
from tokumei.expectations.inputs import INPUT_NAME, input_spec  # noqa: E402
from tokumei.expectations.runner import build_expectations  # noqa: E402
from tokumei.expectations.suites import (  # noqa: E402
    GENERATED_META,
    OUTPUT_META,
    repo_gx_dir,
    suite_file_text,
)
from tokumei.pipeline.steps import (  # noqa: E402
    ANONYMIZED_VALIDATION_NAME,
    _anonymized_spec,
    _stats_specs,
)

TARGET = repo_gx_dir() / "expectations"


def generated_files() -> dict[str, str]:
    """File name → JSON text of every generated suite, for the default policy."""
    policy = load_policy(default_policy_dir())
    specs = dict(_stats_specs(policy))
    specs[ANONYMIZED_VALIDATION_NAME] = _anonymized_spec(policy, ANONYMIZED_VALIDATION_NAME)
    specs[INPUT_NAME] = input_spec(policy.input)  # the day's input metrics (policy input:)
    files = {}
    for name, spec in sorted(specs.items()):
        exps = []
        for e in build_expectations(spec):
            doc = e.configuration.to_json_dict()
            doc.pop("id", None)
            exps.append(doc)
        files[f"{name}.json"] = suite_file_text(
            name, exps, {OUTPUT_META: name, GENERATED_META: True}
        )
    return files


def stale_generated(target: Path) -> list[str]:
    """Files in ``target`` marked generated that the generator no longer writes."""
    wanted = generated_files()
    out = []
    for path in sorted(target.glob("*.json")):
        meta = json.loads(path.read_text(encoding="utf-8")).get("meta") or {}
        if meta.get(GENERATED_META) and path.name not in wanted:
            out.append(path.name)
    return out


def main(argv: list[str]) -> int:
    files = generated_files()
    if "--check" in argv:
        bad = [
            n
            for n, text in files.items()
            if not (TARGET / n).exists() or (TARGET / n).read_text(encoding="utf-8") != text
        ] + stale_generated(TARGET)
        if bad:
            print(
                f"{TARGET} is stale ({', '.join(bad)}): run scripts/gen_gx_suites.py",
                file=sys.stderr,
            )
            return 1
        return 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in stale_generated(TARGET):
        (TARGET / name).unlink()
    for name, text in files.items():
        (TARGET / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} generated suites to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
