# syntax=docker/dockerfile:1
# fraud_kedro images (docs/deployment.md). Stages:
#   uv             python + the Makefile's uv + an empty /opt/venv: base of the two builders
#   builder        the pipelines' environment (/opt/venv, from requirements.lock, as `make install`)
#   builder-serve  the scoring service's environment (from requirements-serve.lock: only what the API,
#                  `python -m fraud_kedro.store migrate` and the stream worker import, and the
#                  model libraries of the default candidates)
#   runtime        python:3.11-slim + the project's files, non-root; base of the two below
#   pipelines      `kedro run ...`:  docker build --target pipelines -t fraud-kedro-pipelines .
#   serve          the scoring API, the default target: docker build -t fraud-kedro .
ARG PYTHON_IMAGE=python:3.11-slim

# ---- uv -----------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS uv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
# the uv version the Makefile uses
RUN python -m pip install uv==0.13.8 && python -m venv /opt/venv
WORKDIR /app

# ---- builder: the full runtime lock (no test tools) ---------------------------------------------
FROM uv AS builder
# dependencies first (a layer that changes only with the lock)
COPY requirements.lock ./
RUN uv pip sync --python /opt/venv/bin/python requirements.lock
# the project, installed editable like `make install`: Kedro also needs /app/src at run time
COPY pyproject.toml README.md ./
COPY src/ src/
RUN uv pip install --python /opt/venv/bin/python --no-deps -e . \
    && /opt/venv/bin/python -c "import fraud_kedro"

# ---- builder-serve: the serving lock ------------------------------------------------------------
FROM uv AS builder-serve
COPY requirements-serve.lock ./
RUN uv pip sync --python /opt/venv/bin/python requirements-serve.lock
COPY pyproject.toml README.md ./
COPY src/ src/
RUN uv pip install --python /opt/venv/bin/python --no-deps -e . \
    && /opt/venv/bin/python -c "import fraud_kedro.api, fraud_kedro.store.migrate, fraud_kedro.stream.runner"

# ---- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KEDRO_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1 \
    NML_DISABLE_USAGE_LOGGING=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp
RUN groupadd --system --gid 10001 fraud \
    && useradd --system --uid 10001 --gid fraud --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin fraud
WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY conf/ conf/
# Code and configuration stay root-owned (read-only for the service). Writable: data/ (Kedro's
# layers, the API's SQLite state store), /app itself (mlflow.db, mlruns/ and .viz/ of local runs)
# and /tmp, which is also HOME (gunicorn's control socket, caches), so that the service runs with a
# read-only root file system and a /tmp volume.
RUN mkdir -p conf/local \
    && for layer in 01_raw 02_intermediate 03_primary 04_feature 05_model_input 06_models \
         07_model_output 08_reporting; do mkdir -p "data/$layer"; done \
    && chown -R 10001:10001 data \
    && chown 10001:10001 /app
USER 10001:10001

# ---- pipelines: `docker run IMAGE run --pipeline monitoring` ----------------------------------
# also `docker run IMAGE run --env dask` (DASK_SCHEDULER_ADDRESS, else a local cluster) and the
# image of the Dask scheduler and workers (deploy/dask/: command `dask scheduler` / `dask worker`)
FROM runtime AS pipelines
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app/src /app/src
ENV DASK_TEMPORARY_DIRECTORY=/tmp/dask
HEALTHCHECK NONE
ENTRYPOINT ["kedro"]
CMD ["run"]

# ---- serve (default): the API exactly as `make serve`, listening on all interfaces ---------------
FROM runtime AS serve
COPY --from=builder-serve /opt/venv /opt/venv
COPY --from=builder-serve /app/src /app/src
ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)" || exit 1
CMD ["gunicorn", "-c", "gunicorn.conf.py", "fraud_kedro.api:create_app()"]
