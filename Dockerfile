# tokumei's Airflow image: the official Airflow 3 image + tokumei's locked dependencies.
#
# Dependencies come from uv.lock (exported with hashes, so the image gets exactly the versions
# the tests ran against) instead of Airflow's constraint files: the lock already pins
# apache-airflow to the same version as the base image. DAGs and policies are baked in; no secret
# is ever baked in (the pseudonymization key arrives at run time from the environment or a
# secrets backend, see docs/deploy.md). Keep the base tag in step with apache-airflow in uv.lock
# (tests/test_compose.py checks it).
ARG UV_VERSION=0.13.8

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# The native JSON Lines pass (docs/adr/0009-native-jsonl-reader.md): built here with gcc, on
# Debian bookworm like the Airflow image (it needs only libc), because the runtime image has no
# compiler. Without it the image would type landing files with DuckDB alone (same output, slower).
FROM python:3.11-bookworm AS native
COPY csrc /src/csrc
RUN gcc -O2 -fPIC -shared -o /src/_jsonl.so /src/csrc/jsonl/jsonl.c /src/csrc/yyjson/yyjson.c

FROM apache/airflow:3.3.2-python3.11

COPY --from=uv /uv /usr/local/bin/uv

USER root
# Seeded into the `tokumei-data` named volume on first use, with the airflow user as owner.
RUN mkdir -p /data/landing /data/out /opt/tokumei \
    && chown -R airflow:0 /data /opt/tokumei \
    && chmod -R 0750 /data
USER airflow

WORKDIR /opt/tokumei
COPY --chown=airflow:0 pyproject.toml uv.lock README.md ./
# Third-party dependencies first (cached layer while only our code changes).
RUN uv export --frozen --no-dev --no-emit-project --format requirements.txt -o /tmp/req.txt \
    && pip install --no-cache-dir -r /tmp/req.txt \
    && rm /tmp/req.txt

COPY --chown=airflow:0 tokumei ./tokumei
COPY --from=native --chown=airflow:0 /src/_jsonl.so ./tokumei/ingest/_jsonl.so
RUN pip install --no-cache-dir --no-deps . && rm -rf build

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 policies/ /opt/airflow/policies/
# The data-quality team's GX project (generated and hand-written suites, docs/adr/0006).
COPY --chown=airflow:0 gx/ /opt/airflow/gx/

WORKDIR /opt/airflow
ENV TOKUMEI_POLICY=/opt/airflow/policies \
    TOKUMEI_GX_DIR=/opt/airflow/gx \
    TOKUMEI_LANDING=/data/landing \
    TOKUMEI_OUT=/data/out \
    GX_ANALYTICS_ENABLED=false \
    HF_HUB_OFFLINE=1
