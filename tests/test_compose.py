"""Static checks of docker-compose.yml, Dockerfile and .dockerignore (no Docker engine here).

What a broken deployment file would do at 3 a.m. is checked here instead: a missing service or
volume, a dependency on a service that does not exist, a worker that cannot be scaled, an image
whose Airflow differs from the one the tests ran against, and above all a pseudonymization key
written into a file. Compose interpolation is emulated so that "no key → refuse to start" is a
tested behaviour, and ``docker compose config`` / the compose JSON schema are used when available.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tokumei.ingest import jsonl_native

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DUMMY_KEY = "dummy-key-for-tests-0123456789abcdef0123"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
SERVICES = AIRFLOW_SERVICES | {"postgres", "redis"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingRequired(Exception):
    """A ``${VAR:?message}`` whose variable is unset: compose refuses the file."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style interpolation (``$$``, ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``, ``${V?e}``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name, op, arg = m["name"], m["op"], m["arg"]
        current = env.get(name)
        unset_or_empty = not current
        if op in (":-", "-"):
            missing = unset_or_empty if op == ":-" else current is None
            return arg if missing else current
        if op in (":?", "?"):
            missing = unset_or_empty if op == ":?" else current is None
            if missing:
                raise MissingRequired(f"{name}: {arg}")
        return current or ""

    return _VAR.sub(sub, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw, {"TOKUMEI_PSEUDONYM_KEY": DUMMY_KEY})


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_all_services_exist(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= SERVICES
    assert "x-airflow-common" in compose


def test_depends_on_targets_exist_with_valid_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    graph: dict[str, set[str]] = {}
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        graph[name] = set(deps)
        for target, spec in deps.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = (spec or {}).get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} → {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert target == "airflow-init", f"{name} waits for {target} to exit"
    # every long-running Airflow service waits for the one-shot init, which waits for the DB/broker
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert graph[name] >= {"airflow-init", "postgres", "redis"}, name
        cond = services[name]["depends_on"]["airflow-init"]["condition"]
        assert cond == "service_completed_successfully"
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # no cycles (compose would refuse to start)
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        assert state.get(node) != 1, f"dependency cycle through {node}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph[node]:
            visit(nxt)
        state[node] = 2

    for node in graph:
        visit(node)


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in SERVICES - {"airflow-init"}:
        hc = compose["services"][name].get("healthcheck")
        assert hc and hc.get("test"), f"{name} has no healthcheck"
        assert hc["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert compose["services"]["airflow-init"].get("restart") in {"no", None}


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes") or []:
            source = vol["source"] if isinstance(vol, dict) else vol.split(":", 1)[0]
            if isinstance(vol, dict) and vol.get("type") == "bind":
                continue
            if source.startswith((".", "/", "~")):
                continue  # bind mount
            assert source in declared, f"{name} uses undeclared volume {source}"
            used.add(source)
    assert "tokumei-data" in declared
    assert declared <= used, f"declared but unused: {declared - used}"


def test_airflow_services_share_settings_and_data_volume(compose: dict[str, Any]) -> None:
    common_image = compose["x-airflow-common"]["image"]
    anchored = {n for n, s in compose["services"].items() if s.get("image") == common_image}
    assert anchored == AIRFLOW_SERVICES
    for name in anchored:
        svc = compose["services"][name]
        env = env_of(svc)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert re.fullmatch(r"redis://[^@]*@redis:6379/\d+", env["AIRFLOW__CELERY__BROKER_URL"])
        assert re.match(
            r"postgresql(\+\w+)?://\w+:[^@]+@postgres/", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        ), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql"), name
        assert env["TOKUMEI_DB_URL"], name
        assert env["TOKUMEI_LANDING"] == "/data/landing" and env["TOKUMEI_OUT"] == "/data/out"
        assert env["GX_ANALYTICS_ENABLED"] == "false" and env["HF_HUB_OFFLINE"] == "1", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert "tokumei-data:/data" in svc["volumes"], name
        assert svc["user"].split(":")[0] == "50000" or name == "airflow-init"


def test_pseudonym_key_is_never_a_literal(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert not re.search(r"\b[0-9a-fA-F]{32,}\b", text), "something key-like is written in the file"
    holders = {}
    for name, svc in raw["services"].items():
        for var, value in env_of(svc).items():
            if "PSEUDONYM_KEY" in var:
                # the only dynamic part is the host variable, required (:?) so a missing key stops compose
                assert "${TOKUMEI_PSEUDONYM_KEY:?" in value, f"{name}.{var} is not interpolated"
                rest = _VAR.sub("", value)
                assert not re.search(r"[A-Za-z0-9]{16,}", rest), f"{name}.{var} has a literal"
                holders.setdefault(name, set()).add(var)
    # least exposure: only the worker, where tasks run, gets the key
    assert holders == {
        "airflow-worker": {"AIRFLOW_CONN_TOKUMEI_PSEUDONYM_KEY", "TOKUMEI_PSEUDONYM_KEY"}
    }
    worker = env_of(compose["services"]["airflow-worker"])
    assert worker["TOKUMEI_PSEUDONYM_KEY"] == DUMMY_KEY
    conn = json.loads(worker["AIRFLOW_CONN_TOKUMEI_PSEUDONYM_KEY"])  # Airflow's JSON conn format
    assert conn["password"] == DUMMY_KEY and conn["conn_type"]


def test_compose_refuses_to_start_without_the_key(raw: dict[str, Any]) -> None:
    with pytest.raises(MissingRequired, match="TOKUMEI_PSEUDONYM_KEY"):
        interpolate(raw, {})
    with pytest.raises(MissingRequired):
        interpolate(raw, {"TOKUMEI_PSEUDONYM_KEY": ""})  # ":?" also rejects an empty value


def test_interpolation_defaults_and_overrides(raw: dict[str, Any]) -> None:
    base = {"TOKUMEI_PSEUDONYM_KEY": DUMMY_KEY}
    default = env_of(interpolate(raw, base)["services"]["airflow-scheduler"])
    assert default["TOKUMEI_RETENTION_LANDING_DAYS"] == "30"
    assert default["TOKUMEI_RETENTION_QUARANTINE_DAYS"] == "90"
    pg = "postgresql+psycopg://ro:pw@ops-db/service"
    custom = interpolate(raw, {**base, "TOKUMEI_DB_URL": pg, "POSTGRES_PASSWORD": "s3cret"})
    env = env_of(custom["services"]["airflow-worker"])
    assert env["TOKUMEI_DB_URL"] == pg
    assert ":s3cret@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env_of(custom["services"]["postgres"])["POSTGRES_PASSWORD"] == "s3cret"


def test_ports_are_well_formed_and_worker_scales(compose: dict[str, Any]) -> None:
    port = re.compile(
        r"^(?:(?P<ip>[\d.]+):)?(?:(?P<host>\d+(?:-\d+)?):)?(?P<ctr>\d+(?:-\d+)?)(?:/(?:tcp|udp))?$"
    )
    host_ports: list[str] = []
    for name, svc in compose["services"].items():
        for entry in svc.get("ports") or []:
            m = port.match(str(entry))
            assert m, f"{name}: bad port mapping {entry!r}"
            for part in (m["host"], m["ctr"]):
                for number in (part or "1").split("-"):
                    assert 1 <= int(number) <= 65535, f"{name}: {entry}"
            if m["host"]:
                host_ports.append(m["host"])
        for entry in svc.get("expose") or []:
            assert 1 <= int(entry) <= 65535
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"
    worker = compose["services"]["airflow-worker"]
    # `--scale airflow-worker=N` fails with a fixed container name or a published host port
    assert "container_name" not in worker and not worker.get("ports")
    assert worker["command"] == "celery worker"
    assert compose["services"]["airflow-apiserver"]["ports"] == ["8080:8080"]


def _lock_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def test_dockerfile_base_image_matches_the_lock() -> None:
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    base = froms[-1]  # the final stage is the image that runs
    m = re.fullmatch(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<py>\d+\.\d+)", base)
    assert m, base
    assert m["airflow"] == _lock_version("apache-airflow")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={m['py']}" in requires


def test_dockerfile_installs_from_the_lock_and_bakes_no_secret() -> None:
    text = DOCKERFILE.read_text()
    assert "uv export --frozen --no-dev --no-emit-project" in text
    assert re.search(r"^COPY .*uv\.lock", text, re.MULTILINE)
    for line in re.findall(r"^(?:ENV|ARG)\s+.*$", text, re.MULTILINE):
        assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN", line.split("=")[0]), line
    assert "PSEUDONYM" not in text
    ignored = {ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()}
    assert {".env", ".venv", ".git"} <= ignored  # .env holds the key: never in the build context
    # every COPY source exists in the repo and is not excluded from the build context
    for line in re.findall(r"^COPY\s+(?!--from)(.*)$", text, re.MULTILINE):
        parts = [p for p in line.split() if not p.startswith("--")]
        for src in parts[:-1]:
            assert (ROOT / src).exists(), src
            assert src.rstrip("/") not in ignored, f"{src} is in .dockerignore"
    for needed in ("dags/", "policies/", "gx/"):
        assert re.search(rf"^COPY .*\b{needed}", text, re.MULTILINE), needed


def test_dockerfile_builds_the_native_jsonl_pass_into_the_package() -> None:
    text = DOCKERFILE.read_text()
    build = re.search(r"^RUN gcc .*-o (\S+) (.*)$", text, re.MULTILINE)
    assert build, "no stage compiles csrc/"
    for src in build[2].split():
        assert (ROOT / src.removeprefix("/src/")).exists(), src
    copied = re.search(rf"^COPY --from=native .*{re.escape(build[1])} (\S+)$", text, re.MULTILINE)
    assert copied and copied[1] == "./tokumei/ingest/" + jsonl_native.LIBRARY.name
    # before the package is installed, so the wheel carries it
    assert text.index(copied[0]) < text.index("RUN pip install --no-cache-dir --no-deps .")
    ignored = {ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()}
    assert "tokumei/ingest/_jsonl.so" in ignored  # never the host's binary


def _docker_compose_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        proc = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="docker compose client not available")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKUMEI_")}
    ok = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**env, "TOKUMEI_PSEUDONYM_KEY": DUMMY_KEY},
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode != 0 and "TOKUMEI_PSEUDONYM_KEY" in refused.stderr


def _compose_schema() -> Path | None:
    """A compose-spec JSON schema shipped by some installed package, if any."""
    for site in {Path(p) for p in sys.path if p.endswith("site-packages")}:
        for name in ("compose-spec.json", "compose_spec.json", "config_schema_v3.9.json"):
            found = next(iter(site.rglob(name)), None) if site.is_dir() else None
            if found:
                return found
    return None


def test_compose_file_matches_the_compose_json_schema(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = _compose_schema()
    if schema_path is None:
        pytest.skip("no compose JSON schema shipped by an installed package")
    jsonschema.validate(compose, json.loads(schema_path.read_text()))
