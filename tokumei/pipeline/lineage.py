"""Lineage: the datasets each task reads and writes, named for OpenLineage, never a value.

The DAG tasks declare ``inlets``/``outlets`` as Assets with ``x-tokumei://`` URIs that name a
*logical* dataset (``x-tokumei://landing/events``, ``x-tokumei://work/pseudo``,
``x-tokumei://published/stats/page_views``): the same in every deployment, known when the DAG
file is parsed (no storage settings needed by the DAG processor) and unable to carry a path,
a credential or a run id. Airflow's OpenLineage provider turns an Asset into an OpenLineage
dataset only through a converter registered for its URI scheme; tokumei registers one for
``x-tokumei`` as a small Airflow provider (the ``apache_airflow_provider`` entry point in
``pyproject.toml`` points at :func:`provider_info`). The converter runs in the worker when an
event is emitted and resolves the logical name against that worker's storage settings, so the
event names the physical dataset the task used, following the OpenLineage naming conventions:
``file`` + absolute path for a local folder (as Airflow's ``common.io`` provider names
``file://`` Assets), ``s3://bucket`` + key prefix for object storage, ``<scheme>://host:port`` +
table for the operational database; user names, passwords and query strings are dropped.

docs/deploy.md, "Lineage (OpenLineage)", says how to turn it on; it is off unless a transport
is configured. This module imports only the standard library: Airflow's provider manager
imports it in every process that resolves Asset URIs.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

SCHEME = "x-tokumei"

#: Logical roots and where each lives: (environment variable of the location, sub-path).
#: ``work`` and ``staging`` are the run's private layers; their OpenLineage name leaves the run
#: id out (a dataset is the layer, not one run's copy of it).
_ROOTS: dict[str, tuple[str, str]] = {
    "landing": ("TOKUMEI_LANDING", ""),
    "work": ("TOKUMEI_OUT", "_work"),
    "staging": ("TOKUMEI_OUT", "_staging"),
    "published": ("TOKUMEI_OUT", "published"),
    "retained": ("TOKUMEI_OUT", "retained"),
    "reports": ("TOKUMEI_OUT", "reports"),
    "quarantine": ("TOKUMEI_OUT", "quarantine"),
}


def provider_info() -> dict[str, Any]:
    """What Airflow's provider manager reads from the ``apache_airflow_provider`` entry point:
    a URI handler and an OpenLineage converter for the ``x-tokumei`` scheme, nothing else."""
    uris = [
        {
            "schemes": [SCHEME],
            "handler": "tokumei.pipeline.lineage.sanitize_uri",
            "to_openlineage_converter": "tokumei.pipeline.lineage.to_openlineage",
        }
    ]
    return {
        "package-name": "tokumei",
        "name": "tokumei",
        "description": "tokumei's x-tokumei:// Asset URIs and their OpenLineage datasets.",
        "asset-uris": uris,
        "dataset-uris": uris,
    }


def sanitize_uri(uri: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    """Airflow's normalizer hook: a logical URI is kept as written, minus query and fragment."""
    if not uri.netloc:
        raise ValueError("an x-tokumei URI names a dataset: x-tokumei://<root>/<path>")
    return uri._replace(query="", fragment="")


def _location(raw: str) -> tuple[str, str]:
    """(namespace, name) of a storage location: a local path or a URL, without credentials."""
    parsed = urllib.parse.urlsplit(raw)
    if parsed.scheme and parsed.netloc and len(parsed.scheme) > 1:  # not a Windows drive
        host = parsed.hostname or ""
        if parsed.port:
            host = f"{host}:{parsed.port}"
        return f"{parsed.scheme}://{host}", parsed.path.strip("/")
    return "file", os.path.abspath(raw)


def _join(namespace: str, base: str, *parts: str) -> tuple[str, str]:
    tail = [p for p in parts if p]
    if namespace == "file":
        return namespace, str(PurePosixPath(base, *tail))
    return namespace, "/".join(p.strip("/") for p in (base, *tail) if p.strip("/"))


def resolve(uri: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of an ``x-tokumei`` URI under ``env``'s settings.

    ``opsdb/<table>`` resolves against ``TOKUMEI_DB_URL`` (host and port only; a SQLite file is
    ``file`` + its path and the table); ``policy`` against ``TOKUMEI_POLICY`` (default: the
    shipped ``policies/``). Without the
    setting (a process that has none) the dataset keeps its logical name in the ``tokumei``
    namespace rather than guessing a location.
    """
    env = os.environ if env is None else env
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != SCHEME:
        raise ValueError(f"not an {SCHEME} URI")
    root, rest = parsed.netloc, parsed.path.strip("/")
    logical = ("tokumei", f"{root}/{rest}".rstrip("/"))
    if root == "opsdb":
        db = env.get("TOKUMEI_DB_URL") or ""
        if db.startswith("sqlite:///"):
            return "file", f"{os.path.abspath(db[len('sqlite:///') :])}/{rest}"
        if not db:
            return logical
        namespace, _ = _location(db.replace("+psycopg", "").replace("+psycopg2", ""))
        database = urllib.parse.urlsplit(db).path.strip("/")
        return namespace, ".".join(p for p in (database, rest) if p)
    if root == "policy":  # the shipped policies/ unless TOKUMEI_POLICY (as Settings does)
        policy = env.get("TOKUMEI_POLICY") or str(Path(__file__).resolve().parents[2] / "policies")
        return "file", os.path.abspath(policy)
    if root not in _ROOTS:
        return logical
    variable, sub = _ROOTS[root]
    base = env.get(variable)
    if not base:
        return logical
    namespace, name = _location(base)
    return _join(namespace, name, sub, rest)


def to_openlineage(asset: Any, lineage_context: Any = None) -> Any:
    """The OpenLineage converter Airflow calls for an ``x-tokumei`` Asset (see the module doc)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    namespace, name = resolve(asset.uri)
    return Dataset(namespace=namespace, name=name)
