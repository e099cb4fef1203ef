"""Run settings: where landing data, the operational DB, outputs and the policy are.

The same settings object drives the CLI and the DAG; under Airflow it is read from ``TOKUMEI_*``
environment variables, so that DAG files stay free of configuration (docs/architecture.md §6).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from tokumei.infra.errors import TokumeiError


def default_policy_dir() -> Path:
    """The policy shipped with the project: ``policies/`` at the repository root."""
    return Path(__file__).resolve().parents[2] / "policies"


@dataclass(frozen=True)
class Settings:
    """Where things are. Paths are absolute after :meth:`resolved`."""

    landing: Path
    db_url: str
    out: Path
    policy_dir: Path = default_policy_dir()
    partitions: int = 1
    # object storage (tokumei.infra.objectstore): s3:// URLs; then `landing` is unused and `out` is
    # the local build root (staging, work layer, quarantine)
    landing_url: str | None = None
    out_url: str | None = None
    # docs/landing.md: run a day whose landing is incomplete; the release is marked partial
    allow_incomplete: bool = False

    @classmethod
    def from_env(cls, db_url: str | None = None) -> Settings:
        """Settings from ``TOKUMEI_LANDING``, ``TOKUMEI_DB_URL``, ``TOKUMEI_OUT``, ``TOKUMEI_POLICY``.

        ``db_url`` (under Airflow: from the operational DB's connection) wins over
        ``TOKUMEI_DB_URL``.
        """
        missing = [v for v in ("TOKUMEI_LANDING", "TOKUMEI_OUT") if not os.environ.get(v)]
        if missing:
            raise TokumeiError(f"environment variable(s) {', '.join(missing)} must be set")
        from tokumei.infra.objectstore import locations

        landing, landing_url, out, out_url = locations(
            os.environ["TOKUMEI_LANDING"], os.environ["TOKUMEI_OUT"]
        )
        db_url = db_url or os.environ.get("TOKUMEI_DB_URL")
        if landing_url and not db_url:
            raise TokumeiError(
                "TOKUMEI_DB_URL (or, under Airflow, the connection tokumei_opsdb) must be set "
                "when TOKUMEI_LANDING is a URL"
            )
        return cls(
            landing=landing,
            db_url=db_url or f"sqlite:///{landing / 'ops.db'}",
            out=out,
            policy_dir=Path(os.environ.get("TOKUMEI_POLICY") or default_policy_dir()),
            partitions=int(os.environ.get("TOKUMEI_PARTITIONS", "1")),
            landing_url=landing_url,
            out_url=out_url,
            allow_incomplete=os.environ.get("TOKUMEI_ALLOW_INCOMPLETE", "") in ("1", "true"),
        ).resolved()

    def error_roots(self) -> list[tuple[Path, str]]:
        """How failures name files (``tokumei.infra.errors.relative``): landing files relative to
        the landing, output files as ``<out folder name>/…``."""
        return [(self.landing, ""), (self.out, self.out.name or "out")]

    def resolved(self) -> Settings:
        """Absolute paths, checked: a missing landing zone or policy is a clear error."""
        landing, out, policy = self.landing.resolve(), self.out.resolve(), self.policy_dir.resolve()
        if not self.landing_url and not landing.is_dir():
            raise TokumeiError(f"landing directory {landing} does not exist")
        if not policy.is_dir():
            raise TokumeiError(f"policy directory {policy} does not exist")
        if self.partitions < 1:
            raise TokumeiError("partitions must be at least 1")
        return replace(self, landing=landing, out=out, policy_dir=policy)


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_day(day: str) -> str:
    """``YYYY-MM-DD`` and a real calendar date, or a clear error."""
    if not _DAY.match(day):
        raise TokumeiError(f"date {day!r} is not in YYYY-MM-DD form")
    try:
        date.fromisoformat(day)
    except ValueError:
        raise TokumeiError(f"date {day!r} is not a calendar date") from None
    return day
