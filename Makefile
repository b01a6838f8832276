# The two commands: `make run` starts the platform, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test lint format migrate lock system-tools

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Deployment checks (tests/ops): Helm as a library and the Kubernetes schemas (~390 MB).
$(VENV)/.installed-ops: $(VENV)/.installed-dev requirements-ops.txt
	$(PY) -m pip install --quiet -r requirements-ops.txt
	touch $@

# Re-run when dotenv.py gains a secret: it adds the missing ones and keeps the rest.
.env: config/dotenv.py | $(VENV)/.installed
	$(PY) -m config.dotenv .env
	touch $@

migrate: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput

# Each process that counts (Procfile: api, payments, worker) has a prometheus_client
# multiprocess directory of its own, emptied here at every start: no stale counts.
METRICS_DIR = $${PAYWAVE_VAR_DIR:-var}/prometheus
run: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --if-sandbox
	rm -rf "$(METRICS_DIR)" && mkdir -p "$(METRICS_DIR)/api" "$(METRICS_DIR)/payments" \
		"$(METRICS_DIR)/worker"
	$(PY) -m config.banner
	exec $(BIN)/honcho --no-colour start

# Debian's packages the suite drives (as root, when missing): Chromium for the browser
# tests (Playwright never downloads a browser of its own), promtool and the Prometheus
# server for the alerting rules, amtool for Alertmanager's configuration.
SYSTEM_TOOLS = chromium:chromium promtool:prometheus prometheus:prometheus \
	amtool:prometheus-alertmanager
system-tools:
	@missing=$$(for tool in $(SYSTEM_TOOLS); do command -v $${tool%%:*} >/dev/null \
		|| echo $${tool#*:}; done | sort -u); \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

test: $(VENV)/.installed-ops system-tools
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

# Pins with hashes from the *.in files (after editing one): every file, so they agree.
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock: $(VENV)/.installed-dev
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) --output-file requirements-ops.txt requirements-ops.in
	$(PIP_COMPILE) --output-file requirements-bench.txt requirements-bench.in
	$(PIP_COMPILE) --output-file requirements-mutation.txt requirements-mutation.in

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# On demand, never part of `make test` (bench/README.md): make bench [BENCH=chaos] [ARGS="--scenario smoke"]
.PHONY: bench
$(VENV)/.installed-bench: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

bench: $(VENV)/.installed-bench .env
	$(PY) -m bench $(or $(BENCH),load) $(ARGS)

# On demand, never part of `make test` (bench/README.md, "mutation"): needs the three service URLs.
.PHONY: mutation
$(VENV)/.installed-mutation: $(VENV)/.installed-dev requirements-mutation.txt
	$(PY) -m pip install --quiet -r requirements-mutation.txt
	touch $@

mutation: $(VENV)/.installed-mutation
	$(PY) -m bench mutation $(ARGS)
