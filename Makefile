# One command runs the main job (`make run`), one runs the tests (`make test`).
# Both create .venv from the lock file first, so a fresh machine needs only python3.11 and make.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export NML_DISABLE_USAGE_LOGGING := 1
export MLFLOW_DISABLE_TELEMETRY := true
export MPLBACKEND := Agg

.PHONY: install run test test-fast lint serve migrate viz lock demo bench clean docker dags stream demo-stream

$(BIN)/.installed: requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(BIN)/.installed

run: install  ## the main job: simulate (or use your data), features, tune, train, export, evaluate, monitor
	$(BIN)/kedro run

test: install  ## the whole test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-fast: install  ## the quick loop: every test not marked slow (no whole pipelines, no real servers)
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

serve: install  ## serve the champion model with gunicorn on 127.0.0.1:$(PORT)
	PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py 'fraud_kedro.api:create_app()'

migrate: install  ## create or upgrade the operational store's schema (FRAUD_STATE_URL / FRAUD_STATE_DB)
	$(BIN)/python -m fraud_kedro.store migrate

stream: install  ## the stream worker: scores FRAUD_STREAM_URL's fraud.transactions, publishes fraud.scores
	$(BIN)/python -m fraud_kedro.stream worker

demo-stream: install  ## worker + producer for 15 s on the champion (after make run): scores flowing
	$(BIN)/python -m fraud_kedro.stream demo

demo: install  ## train, monitor a drifting production period, retrain, promote; then a summary
	$(BIN)/kedro run $(if $(ENV),--env $(ENV))
	$(BIN)/kedro run --pipeline retraining $(if $(ENV),--env $(ENV))
	$(BIN)/python -m fraud_kedro.demo

viz: install
	$(BIN)/kedro viz run

lock:  ## re-resolve the lock files (needs network to PyPI); the serve lock takes the runtime lock's versions
	$(BIN)/uv pip compile requirements.in -p 3.11 -o requirements.lock --no-header
	$(BIN)/uv pip compile requirements-dev.in -p 3.11 -o requirements-dev.lock --no-header
	$(BIN)/uv pip compile requirements-serve.in -c requirements.lock -p 3.11 -o requirements-serve.lock --no-header

docker:  ## both images (needs a Docker engine)
	docker build -t fraud-kedro .
	docker build --target pipelines -t fraud-kedro-pipelines .

dags: install  ## Airflow DAGs of every pipeline
	$(BIN)/kedro airflow create --all -j deploy/airflow/dag_template.j2 --group-by memory -t airflow_dags/

clean:
	rm -rf $(VENV) mlruns mlflow.db
