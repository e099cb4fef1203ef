"""The privacy policy: the YAML contract people review, compiled into what the engine runs.

Like dbt's schema files, one YAML per source lists every column with its type (the landing
contract) and its privacy *role* (docs/architecture.md §4). The engine never guesses: a landing column missing
from the policy stops the run before anything is written (:class:`UnclassifiedColumnError`), and
a policy that names an unknown role or hierarchy fails at load time, naming file and column.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokumei.anonymize.folding import DEFAULT_SPECIAL_CARE_KEYWORDS, SpecialCare
from tokumei.anonymize.hierarchies import BUILTIN
from tokumei.infra.errors import SafeMessage
from tokumei.infra.settings import default_policy_dir as _default_policy_dir


class Role(StrEnum):
    """Privacy roles of docs/architecture.md §4; each implies a fixed handling."""

    DIRECT_IDENTIFIER = "direct_identifier"
    IDENTIFICATION_CODE = "identification_code"
    FINANCIAL = "financial"
    LINKING_KEY = "linking_key"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    FREE_TEXT = "free_text"
    INSENSITIVE = "insensitive"
    #: 要配慮個人情報 (APPI Art. 2(3)): health records, biometric data (face images, templates),
    #: creed, criminal records ... Dropped at read time: never typed, written or published.
    SPECIAL_CARE = "special_care"


#: Roles whose columns are removed outright before anything leaves extraction.
DROPPED_ROLES = frozenset({Role.DIRECT_IDENTIFIER, Role.IDENTIFICATION_CODE, Role.FINANCIAL})

#: Roles whose columns are not even read: the readers (tokumei/ingest/) check that the column
#: is classified, then leave its values in the landing file or DB (no Parquet, no quarantine
#: copy, no work layer). Special-care data has no use in a statistics release and a copy of
#: it is a liability, so the only safe handling is never to hold it.
NOT_READ_ROLES = frozenset({Role.SPECIAL_CARE})

ColumnType = Literal["string", "int", "float", "bool", "timestamp", "date"]


class PolicyError(SafeMessage, ValueError):
    """The policy itself is wrong (bad YAML, unknown role, unknown hierarchy)."""


class UnclassifiedColumnError(SafeMessage, RuntimeError):
    """Landing data carries a column the policy does not classify: stop before writing."""

    def __init__(self, source: str, columns: list[str], where: str) -> None:
        self.source, self.columns, self.where = source, columns, where
        cols = ", ".join(sorted(columns))
        super().__init__(
            f"source {source!r}: column(s) {cols} in {where} are not classified by the policy; "
            f"add them to policies/{source}.yaml with a role before running"
        )

    def __reduce__(self) -> tuple[type, tuple[str, list[str], str]]:
        # rebuilt from its arguments when it crosses a process pool (steps.ingest's workers)
        return (type(self), (self.source, self.columns, self.where))


#: Output column names: lower-case identifiers (they become Parquet columns and notice text).
OUTPUT_NAME = r"^[a-z][a-z0-9_]{0,62}$"


class OutputPolicy(BaseModel):
    """A further generalized column one source column yields (``outputs:``): its name, and the
    hierarchy and level that make it. A user agent, say, yields its browser family and its
    device class; each is its own column of the work layer."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=OUTPUT_NAME)
    hierarchy: str
    level: int = 0

    @model_validator(mode="after")
    def _check(self) -> OutputPolicy:
        if self.hierarchy not in BUILTIN:
            raise ValueError(
                f"unknown hierarchy {self.hierarchy!r} (known: {', '.join(sorted(BUILTIN))})"
            )
        return self


class ColumnPolicy(BaseModel):
    """One column: its landing type and its privacy role.

    For the sources generalized per person (events, measurements) the policy also says what the
    generalize step writes (compiled by :mod:`tokumei.anonymize.compile`): ``output`` names the
    column made by ``hierarchy`` at ``level``, ``outputs`` adds further ones, ``paired_with``
    names the second input of a two-column hierarchy (mesh: longitude beside latitude), and
    ``internal`` keeps the exact pseudonymous value in the work layer for internal use only.
    The operational DB's ``users`` go through the same compiler: ``derive`` names the value the
    hierarchy reads (``age_on_run_date``: completed years on the run's date, from a birth date;
    with ``internal``, ``internal_as`` names that exact value), ``fallback`` names a column whose
    own hierarchy and level give this column's values where it is null (prefecture from the
    postal code), ``missing`` is what a null output becomes, and ``output_type: date`` reads a
    ``YYYY-MM-DD`` output as a date.
    """

    model_config = ConfigDict(extra="forbid")

    type: ColumnType
    role: Role
    required: bool = False
    description: str = ""
    hierarchy: str | None = None
    level: int | None = None
    allowed: list[str] | None = None
    min: float | None = None
    max: float | None = None
    ner: bool = False
    output: str | None = Field(None, pattern=OUTPUT_NAME)
    outputs: list[OutputPolicy] = Field(default_factory=list)
    paired_with: str | None = None
    internal: bool = False
    derive: Literal["age_on_run_date"] | None = None
    internal_as: str | None = Field(None, pattern=OUTPUT_NAME)
    fallback: str | None = None
    missing: str | None = None
    output_type: Literal["date"] | None = None
    domain: str | None = Field(
        None,
        pattern=OUTPUT_NAME,
        description="pseudonym domain of a linking key: the same id in two columns of one "
        "domain is one pseudonym (one person); two domains never collide",
    )

    @model_validator(mode="after")
    def _check(self) -> ColumnPolicy:
        if self.domain and self.role != Role.LINKING_KEY:
            raise ValueError("domain is the pseudonym domain of a linking key")
        if (self.output or self.paired_with or self.fallback) and self.hierarchy is None:
            raise ValueError("output, paired_with and fallback need the column's hierarchy")
        if self.internal_as and not (self.internal and self.derive):
            raise ValueError("internal_as names the derived value kept with internal: true")
        if self.hierarchy is not None and self.hierarchy not in BUILTIN:
            raise ValueError(
                f"unknown hierarchy {self.hierarchy!r} (known: {', '.join(sorted(BUILTIN))})"
            )
        return self


class PersonPolicy(BaseModel):
    """Who a row of a person-level source belongs to (``person:``): the person's own id, the
    id that stands for the person without one, the source that maps that id to its owner, and
    the time column that decides the row's JST day. Read by tokumei/anonymize/person_rows.py."""

    model_config = ConfigDict(extra="forbid")

    id: str
    fallback: str | None = None
    owners: str | None = None
    day: str | None = None


class OwnerPolicy(BaseModel):
    """What a source tells of the ids other sources fall back to (``owner:``): the id, its
    owner's user id and, where the source has one, the consent that decides for rows without a
    user (a cookie's banner consent)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    user: str
    consent: str | None = None


class SourcePolicy(BaseModel):
    """All columns of one landing source or operational table."""

    model_config = ConfigDict(extra="forbid")

    source: str
    description: str = ""
    person: PersonPolicy | None = None
    owner: OwnerPolicy | None = None
    columns: dict[str, ColumnPolicy]
    event_key: list[str] = Field(
        default_factory=list,
        description="columns that together identify one event: a row whose key was already "
        "ingested that day (the same line in two files, a resent batch) is counted once",
    )

    @model_validator(mode="after")
    def _named_columns_are_read(self) -> SourcePolicy:
        named = [("event_key", c) for c in self.event_key]
        if self.person:
            named += [(f"person.{f}", getattr(self.person, f)) for f in ("id", "fallback", "day")]
        if self.owner:
            named += [(f"owner.{f}", getattr(self.owner, f)) for f in ("key", "user", "consent")]
        for where, column in named:
            spec = self.columns.get(column) if column else None
            if column and (spec is None or spec.role in NOT_READ_ROLES):
                raise ValueError(f"{where} column {column!r} is not a column that is read")
        return self

    def domain(self, column: str) -> str:
        """The pseudonym domain of ``column`` (its ``domain:``, else its own name)."""
        spec = self.columns.get(column)
        return (spec.domain if spec else None) or column

    def by_role(self, *roles: Role) -> list[str]:
        """Column names with any of ``roles``, in policy order."""
        return [c for c, p in self.columns.items() if p.role in roles]

    def readable(self) -> SourcePolicy:
        """This policy without the columns of :data:`NOT_READ_ROLES` (what the readers type)."""
        keep = {c: p for c, p in self.columns.items() if p.role not in NOT_READ_ROLES}
        if len(keep) == len(self.columns):
            return self
        return self.model_copy(update={"columns": keep})

    def check_columns(self, seen: list[str], where: str) -> None:
        """Raise :class:`UnclassifiedColumnError` for columns the policy does not know."""
        unknown = [c for c in seen if c not in self.columns]
        if unknown:
            raise UnclassifiedColumnError(self.source, unknown, where)


class Thresholds(BaseModel):
    """Release-wide parameters, reviewed with the policy."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=2, description="distinct persons per equivalence class")
    min_cell: int = Field(10, ge=1, description="distinct persons per published cell")
    max_suppression: float = Field(0.05, ge=0, le=1)
    pii_sample: int = Field(10_000, ge=100)
    insensitive_pii_max_rate: float = Field(0.0, ge=0, le=1)
    rounding_base: int = Field(
        1, ge=1, description="published person counts rounded half up to this base (1 = off)"
    )

    @model_validator(mode="after")
    def _rounding_keeps_min_cell(self) -> Thresholds:
        # A base that divides min_cell never rounds a published count (>= min_cell) below it.
        if self.min_cell % self.rounding_base:
            raise ValueError(
                f"rounding_base {self.rounding_base} must divide min_cell {self.min_cell}, so "
                "that no published count is rounded below min_cell"
            )
        return self


class DisclosurePolicy(BaseModel):
    """Attribute and magnitude disclosure rules of the statistics tables (``disclosure:``).

    Used by ``tokumei/stats/disclosure/diversity.py`` (a group's persons must spread over at
    least ``l_diversity`` bands of a sensitive measure, the largest band holding at most
    ``max_band_share`` of them) and ``magnitude.py`` (winsorizing, dominance and median rules
    for means, medians and amount totals). Defaults are the values reviewed in policy.yaml.
    """

    model_config = ConfigDict(extra="forbid")

    l_diversity: int = Field(2, ge=2, description="distinct published bands per group")
    max_band_share: float = Field(
        0.9, gt=0, lt=1, description="largest band's share of a group's published persons"
    )
    winsor_lower: float = Field(0.01, ge=0, lt=0.5, description="lower winsorizing percentile")
    winsor_upper: float = Field(0.99, gt=0.5, le=1, description="upper winsorizing percentile")
    winsor_min_persons: int = Field(
        10, ge=2, description="persons at or beyond each winsorizing bound, at least"
    )
    winsor_step: float = Field(
        5.0, ge=0, description="winsorizing bounds rounded inward to this step (0 = exact)"
    )
    dominance_n: int = Field(2, ge=1, le=5, description="(n, k) rule: the n largest contributors")
    dominance_k: float = Field(0.8, gt=0, lt=1, description="(n, k) rule: their largest share")
    p_percent: float = Field(
        0.1, ge=0, lt=1, description="p% rule: the largest contributor's protection margin"
    )
    median_central: int = Field(3, ge=3, description="central values a published median averages")
    median_min_persons: int = Field(
        10, ge=5, description="persons a cell needs for its median to be published"
    )


#: Tables that can be released with differential privacy: each person sits in exactly one cell
#: (one demographic row per person and period), so a count's sensitivity is 1 by construction.
DP_TABLES = ("daily_active_users", "weekly_active_users", "monthly_active_users")


class NoisePolicy(BaseModel):
    """Optional differential privacy for person-count tables (``noise:`` in policy.yaml).

    Off unless present. Each listed table's release spends ``epsilon`` (and ``delta`` for the
    Gaussian mechanism); a run refuses to spend more than ``max_epsilon_per_run`` in total.
    """

    model_config = ConfigDict(extra="forbid")

    mechanism: Literal["laplace", "gaussian"] = "laplace"
    epsilon: float = Field(gt=0, description="privacy loss per noised table release")
    delta: float = Field(1e-7, ge=0, lt=1e-3)
    tables: list[str] = Field(min_length=1)
    max_epsilon_per_run: float = Field(gt=0)

    @model_validator(mode="after")
    def _known_tables(self) -> NoisePolicy:
        unknown = sorted(set(self.tables) - set(DP_TABLES))
        if unknown:
            raise ValueError(f"tables {unknown} cannot be noised; choose from {list(DP_TABLES)}")
        return self


class SpecialCareValues(BaseModel):
    """Values of free-text-derived columns (URL templates, search texts) that reveal
    special-care-required information (要配慮個人情報) and are folded to ``other``
    (``special_care_values:`` in policy.yaml; see :mod:`tokumei.anonymize.folding`).

    ``keywords``: matched at the start of a path token (ASCII) or anywhere (Japanese).
    ``public``: exact values published despite a keyword (a reviewed decision per value).
    Without the section the built-in keyword list applies: unsure means fold.
    """

    model_config = ConfigDict(extra="forbid")

    keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_SPECIAL_CARE_KEYWORDS))
    public: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> SpecialCareValues:
        if not any(k.strip() for k in self.keywords):
            raise ValueError("keywords is empty: no special-care value would be folded")
        return self

    def matcher(self) -> SpecialCare:
        """The compiled matcher the stats and record releases fold with."""
        return SpecialCare(tuple(self.keywords), frozenset(self.public))


class RecordsPolicy(BaseModel):
    """The record-level release ``anonymized/*`` (``records:`` in policy.yaml).

    ``l``: distinct values of the sensitive column (url_template) per class, so that knowing a
    person's class does not tell which page they saw. ``max_records_per_person_class``: records
    one person may contribute to a class; with k persons per class one person then holds at
    most m / (m + k - 1) of a class's records (3 / 12 = 25 % at k = 10), so no class's page mix
    is one person's browsing.
    """

    model_config = ConfigDict(extra="forbid")

    l: int = Field(2, ge=2, description="distinct url_template values per class")  # noqa: E741
    max_records_per_person_class: int = Field(3, ge=1)
    t_closeness: float | None = Field(
        None,
        gt=0,
        le=1,
        description="largest distance (total variation) of a class's url_template mix from "
        "the release's; None: measured and reported (max_class_distance), not enforced",
    )


class InputPolicy(BaseModel):
    """Expectations on a day's input, checked by ``extract`` before anything is computed
    (``input:`` in policy.yaml; docs/landing.md). A day far off them is a broken delivery (a
    file in another encoding, half a day), and its statistics would be wrong, not just noisy.
    """

    model_config = ConfigDict(extra="forbid")

    max_quarantine_share: float = Field(
        0.10, ge=0, le=1, description="share of a source's lines quarantined, at most"
    )
    volume_history_runs: int = Field(
        14, ge=1, description="earlier published runs whose median input a day is compared with"
    )
    volume_min_runs: int = Field(3, ge=1, description="earlier runs needed before checking")
    volume_min_ratio: float = Field(0.2, ge=0, description="a source's input / median, at least")
    volume_max_ratio: float = Field(5.0, gt=0, description="a source's input / median, at most")


class Policy(BaseModel):
    """The whole policy: version, thresholds, landing sources and operational tables."""

    model_config = ConfigDict(extra="forbid")

    version: str
    thresholds: Thresholds = Thresholds()
    noise: NoisePolicy | None = None
    disclosure: DisclosurePolicy = DisclosurePolicy()
    special_care_values: SpecialCareValues = Field(default_factory=SpecialCareValues)
    records: RecordsPolicy = Field(default_factory=RecordsPolicy)
    input: InputPolicy = Field(default_factory=InputPolicy)
    sources: dict[str, SourcePolicy]
    tables: dict[str, SourcePolicy]

    @model_validator(mode="after")
    def _owners_resolve(self) -> Policy:
        # a person-level source's fallback id must be the id its owners source describes, in
        # the same pseudonym domain, and both user ids in the domain of the users table
        for name, sp in self.sources.items():
            if sp.person is None:
                continue
            where = f"policies/{name}.yaml person"
            if not (sp.person.fallback and sp.person.owners and sp.person.day):
                raise PolicyError(f"{where}: a landing source's person needs fallback, owners, day")
            owners = self.sources.get(sp.person.owners)
            if owners is None or owners.owner is None:
                raise PolicyError(
                    f"{where}: owners {sp.person.owners!r} is not a source with owner:"
                )
            if sp.domain(sp.person.fallback) != owners.domain(owners.owner.key):
                raise PolicyError(
                    f"{where}: fallback {sp.person.fallback!r} is not in the domain of "
                    f"{sp.person.owners}'s owner key {owners.owner.key!r}"
                )
            if sp.domain(sp.person.id) != owners.domain(owners.owner.user):
                raise PolicyError(
                    f"{where}: id {sp.person.id!r} and the owners' user differ in domain"
                )
        return self

    def person_domains(self) -> tuple[str, ...]:
        """The pseudonym domains a ``person`` can be in: the persons table's id and every
        person-level source's own and fallback ids (users, cookies, devices as shipped)."""
        found = {self.persons.domain(self.persons.person.id)} if self.persons.person else set()
        for sp in self.sources.values():
            if sp.person and sp.person.fallback:
                found |= {sp.domain(sp.person.id), sp.domain(sp.person.fallback)}
        return tuple(sorted(found))

    @property
    def persons(self) -> SourcePolicy:
        """The operational DB table of persons (the one whose ``person:`` names its id)."""
        for sp in self.tables.values():
            if sp.person is not None:
                return sp
        raise PolicyError("no operational DB table declares person: (users.yaml)")

    def source(self, name: str) -> SourcePolicy:
        """The policy of a landing source, or a clear error."""
        try:
            return self.sources[name]
        except KeyError:
            raise PolicyError(f"the policy has no source {name!r}") from None


LANDING_SOURCES = ("events", "devices", "measurements", "cookies")
DB_TABLES = ("users", "consents", "rights_requests")


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return data


def load_policy(directory: Path) -> Policy:
    """Load ``policy.yaml`` + one ``<source>.yaml`` per landing source and DB table.

    Errors name the file and the offending key, so a reviewer can fix the YAML directly.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError(f"policy directory {directory} does not exist")
    root = _load_yaml(directory / "policy.yaml")
    parts: dict[str, dict[str, SourcePolicy]] = {"sources": {}, "tables": {}}
    for kind, names in (("sources", LANDING_SOURCES), ("tables", DB_TABLES)):
        for name in names:
            path = directory / f"{name}.yaml"
            if not path.exists():
                raise PolicyError(f"policy file {path} is missing ({kind[:-1]} {name!r})")
            try:
                sp = SourcePolicy.model_validate(_load_yaml(path))
            except ValidationError as exc:
                raise PolicyError(f"{path}: {_short(exc)}") from None
            if sp.source != name:
                raise PolicyError(f"{path}: 'source' is {sp.source!r}, expected {name!r}")
            parts[kind][name] = sp
    try:
        return Policy(
            version=str(root.get("version", "")),
            thresholds=Thresholds.model_validate(root.get("thresholds", {})),
            noise=NoisePolicy.model_validate(root["noise"]) if root.get("noise") else None,
            disclosure=DisclosurePolicy.model_validate(root.get("disclosure") or {}),
            special_care_values=SpecialCareValues.model_validate(
                root.get("special_care_values") or {}
            ),
            records=RecordsPolicy.model_validate(root.get("records") or {}),
            input=InputPolicy.model_validate(root.get("input") or {}),
            **parts,
        )
    except ValidationError as exc:
        raise PolicyError(f"{directory / 'policy.yaml'}: {_short(exc)}") from None


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])


def default_policy_dir() -> Path:
    """The policy shipped with the project (``policies/`` beside the packages)."""
    return _default_policy_dir()
