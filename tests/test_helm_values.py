"""Static checks of deploy/helm/values.yaml, tokumei's values for the official Airflow Helm chart.

Neither ``helm`` nor the chart can be installed here (no package registry ships them), so the
file is checked against deploy/helm/chart-subset.schema.json, our own schema of the chart keys
it sets (types and allowed values as the chart's schema gives them), and against what tokumei
itself needs: no credential in the file, the key and the operational DB from Secrets and only
on the workers, ``TOKUMEI_*`` names that tokumei reads, an executor tokumei runs on, and the
Airflow version of uv.lock. With ``TOKUMEI_AIRFLOW_CHART`` pointing at an unpacked chart, the
merged values are also checked against the chart's real schema, and rendered by ``helm
template`` when ``helm`` is on PATH (skipped otherwise: nothing is downloaded).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tokumei.infra import secrets

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
SCHEMA = ROOT / "deploy" / "helm" / "chart-subset.schema.json"
WORKER_KINDS = ("celery", "kubernetes")

#: Chart keys that hold a credential inline (the chart would put it into a Secret it renders):
#: tokumei's values must name existing Secrets instead.
INLINE_SECRET_KEYS = (
    ("fernetKey",),
    ("jwtSecret",),
    ("apiSecretKey",),
    ("webserverSecretKey",),
    ("data", "metadataConnection"),
    ("data", "resultBackendConnection"),
    ("data", "brokerUrl"),
    ("redis", "password"),
    ("postgresql", "auth"),
    ("createUserJob", "defaultUser"),
    ("webserver", "defaultUser"),
)
#: Env names whose value is a credential: they may only come from a Secret.
_SECRET_NAME = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN|CREDENTIAL|^AIRFLOW_CONN_)", re.I)


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())


def _worker_env(values: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in values["workers"][kind].get("env", [])}


def _all_env_names(values: dict[str, Any]) -> set[str]:
    names = {e["name"] for e in values.get("env", [])}
    names |= {s["envName"] for s in values.get("secret", [])}
    for kind in WORKER_KINDS:
        names |= set(_worker_env(values, kind))
    return names


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def _names_tokumei_reads() -> set[str]:
    """Every ``TOKUMEI_…`` literal in tokumei's code and DAGs (a name ending in ``_`` is a
    prefix, e.g. ``TOKUMEI_TIMEOUT_`` + task)."""
    found: set[str] = set()
    for folder in ("tokumei", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"TOKUMEI_[A-Z0-9_]+", path.read_text()))
    return found


def _opsdb_conn_id() -> str:
    """``OPSDB_CONN_ID`` of tokumei/pipeline/airflow_tasks.py, read without importing Airflow."""
    tree = ast.parse((ROOT / "tokumei" / "pipeline" / "airflow_tasks.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "OPSDB_CONN_ID" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError("OPSDB_CONN_ID not found")


def _lock_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def test_values_match_our_schema_of_the_chart_keys(
    values: dict[str, Any], schema: dict[str, Any]
) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)


def test_schema_rejects_what_the_chart_or_tokumei_would(
    values: dict[str, Any], schema: dict[str, Any]
) -> None:
    """The schema is not vacuous: each of these edits is refused."""
    bad: list[tuple[str, Any]] = [
        ("executor", "SequentialExecutor"),
        ("executor", "LocalExecutor"),
        ("images.airflow.pullPolicy", "Sometimes"),
        ("env", [{"name": "TOKUMEI_PARTITIONS", "value": 4}]),  # chart: values are strings
        ("secret", [{"envName": "X"}]),  # chart: secretName is required
        ("workers.celery.env", [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
        ("workers.celery.extraVolumeMounts", [{"name": "tokumei-data", "mountPath": "data"}]),
        ("fernetKey", "inline"),  # not in the subset: a new key needs the chart's schema first
    ]
    for dotted, value in bad:
        edited = copy.deepcopy(values)
        *parents, last = dotted.split(".")
        node = edited
        for p in parents:
            node = node[p]
        node[last] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(edited, schema)


def test_executor_switch_is_one_line(values: dict[str, Any], schema: dict[str, Any]) -> None:
    """KubernetesExecutor task pods get the same secrets, volume and mount as Celery workers."""
    assert values["executor"] == "CeleryExecutor"
    switched = dict(values, executor="KubernetesExecutor")
    jsonschema.validate(switched, schema)
    celery, k8s = values["workers"]["celery"], values["workers"]["kubernetes"]
    for key in ("env", "extraVolumes", "extraVolumeMounts"):
        assert k8s[key] == celery[key], key


def test_no_credential_inline(values: dict[str, Any]) -> None:
    for path in INLINE_SECRET_KEYS:
        node: Any = values
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        assert node is None, f"{'.'.join(path)} would put a credential into the values"
    literal = list(values.get("env", []))
    for kind in WORKER_KINDS:
        literal += [e for e in values["workers"][kind].get("env", []) if "value" in e]
    for entry in literal:
        assert not _SECRET_NAME.search(entry["name"]), f"{entry['name']} must come from a Secret"
    text = VALUES.read_text()
    for s in _strings(values):
        # no user:password@ in any URL, no long random-looking token (a pasted key)
        assert not re.search(r"[a-z][a-z0-9+.-]*://[^/\s@]+:[^/\s@]*@", s), s
        for token in re.findall(r"[A-Za-z0-9+/=-]{32,}", s):
            assert not re.search(r"\d", token), s
    assert secrets.ENV_NAME + "=" not in text


def test_key_and_opsdb_come_from_secrets_on_the_workers_only(values: dict[str, Any]) -> None:
    key_conn = f"AIRFLOW_CONN_{secrets.KEY_NAME.upper()}"
    opsdb_conn = f"AIRFLOW_CONN_{_opsdb_conn_id().upper()}"
    for kind in WORKER_KINDS:
        env = _worker_env(values, kind)
        for name in (key_conn, opsdb_conn, secrets.ENV_NAME):
            assert name in env, f"workers.{kind}.env lacks {name}"
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["name"] and ref["key"] and not ref.get("optional"), (kind, name)
        # the two forms of the key come from the same Secret
        assert (
            env[key_conn]["valueFrom"]["secretKeyRef"]["name"]
            == env[secrets.ENV_NAME]["valueFrom"]["secretKeyRef"]["name"]
        )
    every_component = {e["name"] for e in values.get("env", [])}
    every_component |= {s["envName"] for s in values.get("secret", [])}
    for name in (key_conn, opsdb_conn, secrets.ENV_NAME):
        assert name not in every_component, f"{name} would reach the scheduler and api-server"
    # the ops DB is the Airflow connection, never the environment fallback
    assert "TOKUMEI_DB_URL" not in _all_env_names(values), "the ops DB is the connection"


def test_env_names_are_ones_tokumei_reads(values: dict[str, Any]) -> None:
    read = _names_tokumei_reads()
    prefixes = tuple(n for n in read if n.endswith("_"))
    set_here = {n for n in _all_env_names(values) if n.startswith("TOKUMEI_")}
    unknown = {n for n in set_here if n not in read and not n.startswith(prefixes)}
    assert not unknown, f"tokumei reads no such variable: {sorted(unknown)}"
    # the commented-out endpoint variable of the file is one too
    assert "TOKUMEI_S3_ENDPOINT_URL" in read and "TOKUMEI_S3_ENDPOINT_URL" in VALUES.read_text()
    conns = {n for n in _all_env_names(values) if n.startswith("AIRFLOW_CONN_")}
    assert conns == {
        f"AIRFLOW_CONN_{secrets.KEY_NAME.upper()}",
        f"AIRFLOW_CONN_{_opsdb_conn_id().upper()}",
    }


def test_storage_settings_are_accepted_by_tokumei(
    values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The env of the file, as tokumei's own settings parse it (ops DB URL as the connection
    would give it)."""
    from tokumei.infra.settings import Settings

    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["TOKUMEI_LANDING"].startswith("s3://") and env["TOKUMEI_OUT"].startswith("s3://")
    for name in list(os.environ):
        if name.startswith("TOKUMEI_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TOKUMEI_POLICY", str(ROOT / "policies"))
    settings = Settings.from_env(db_url="postgresql+psycopg://ops-db/service")
    assert settings.landing_url == env["TOKUMEI_LANDING"]
    assert settings.out_url == env["TOKUMEI_OUT"]
    local_out = Path(env["TOKUMEI_LOCAL_OUT"])
    assert settings.out == local_out
    # the local build root is each pod's own scratch volume, mounted in both kinds of worker:
    # workers share no disk (the work layer, retained layer and lock live under TOKUMEI_OUT)
    for kind in WORKER_KINDS:
        mounts = {
            m["name"]: Path(m["mountPath"]) for m in values["workers"][kind]["extraVolumeMounts"]
        }
        mine = [n for n, m in mounts.items() if local_out.is_relative_to(m)]
        assert mine, kind
        volumes = {v["name"]: v for v in values["workers"][kind]["extraVolumes"]}
        assert all("emptyDir" in volumes[n] for n in mine), kind


def test_versions_auth_and_pools(values: dict[str, Any]) -> None:
    assert values["airflowVersion"] == _lock_version("apache-airflow")
    base = re.findall(
        r"^FROM\s+apache/airflow:(\S+)-python", (ROOT / "Dockerfile").read_text(), re.M
    )
    assert base == [values["airflowVersion"]]
    auth = (values.get("config", {}).get("core", {}) or {}).get("auth_manager", "")
    assert "SimpleAuthManager" not in auth, "SimpleAuthManager is for local use (compose) only"
    assert values["createUserJob"]["enabled"] is False  # no admin user with a known password
    # the pools of the memory-heavy tasks exist before any task is scheduled
    script = " ".join(values["migrateDatabaseJob"]["args"])
    assert "airflow db migrate" in script
    assert "airflow pools import /opt/airflow/dags/pools.json" in script
    assert (ROOT / "dags" / "pools.json").is_file()
    assert "COPY --chown=airflow:0 dags/ /opt/airflow/dags/" in (ROOT / "Dockerfile").read_text()


def _merge(base: Any, override: Any) -> Any:
    """Helm's merge of a values file over the chart's defaults: maps deep, the rest replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = _merge(base[k], v) if k in base else v
        return merged
    return override


def test_against_the_real_chart_when_given(values: dict[str, Any], tmp_path: Path) -> None:
    """Opt-in: ``TOKUMEI_AIRFLOW_CHART=/path/to/airflow`` (an unpacked official chart)."""
    chart = os.environ.get("TOKUMEI_AIRFLOW_CHART")
    if not chart:
        pytest.skip("TOKUMEI_AIRFLOW_CHART not set (the chart is not installable here)")
    chart_dir = Path(chart)
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
    real_schema = json.loads((chart_dir / "values.schema.json").read_text())
    jsonschema.validate(_merge(defaults, values), real_schema)
    helm = shutil.which("helm")
    if not helm:
        pytest.skip("no helm on PATH: validated against the chart's schema only")
    for executor in ("CeleryExecutor", "KubernetesExecutor"):
        out = subprocess.run(
            [helm, "template", "tokumei", str(chart_dir), "-f", str(VALUES)]
            + ["--set", f"executor={executor}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert "tokumei-pseudonym-key" in out.stdout
