# Kehu: `make demo` serves a demo company, `make test` runs every check CI runs.
# Set-up steps are stamped, so a second run only redoes what changed.

PORT ?= 8000
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
CHROMIUM := /usr/bin/chromium
PYTEST_ARGS ?=
# Two xdist workers; set PYTEST_WORKERS=0 for a serial run.
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup demo serve test lint pytest audit messages migrate clean bench bench-customers loadtest

help:
	@echo "make demo   set up, load the demo company and serve it on http://127.0.0.1:$(PORT)"
	@echo "make test   set up and run ruff, migrations check, mypy and the test suite"
	@echo "make lint   ruff, migrations check and mypy only"
	@echo "make audit  pip-audit of the installed packages (fails on a known vulnerability)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Python packages, reinstalled when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Front-end packages (served as static files), reinstalled when the lockfile changes.
node_modules/.installed: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
	else npm install --no-audit --no-fund; fi
	touch $@

setup: $(VENV)/.installed node_modules/.installed messages

# Compiled translations are build output (*.mo is gitignored).
messages: $(VENV)/.installed
	@if find kehu -name '*.po' | grep -q .; then \
		DEBUG=1 $(MANAGE) compilemessages -v0 --ignore=.venv --ignore=node_modules; \
	fi

migrate: setup
	DEBUG=1 $(MANAGE) migrate --no-input -v0

demo: migrate
	DEBUG=1 KEHU_DEMO=1 $(MANAGE) demo_data
	@echo ""
	@echo "Kehu demo: http://127.0.0.1:$(PORT)/"
	@echo "  logins:   admin, manager, salesmgr1, sales1, sales2, sales3, finance, hr, warehouse"
	@echo "  password: kehu-demo-2026"
	@echo ""
	@export DEBUG=1 KEHU_DEMO=1; \
	$(MANAGE) worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(MANAGE) runserver 127.0.0.1:$(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(MANAGE) makemigrations --check --dry-run
	$(VENV)/bin/mypy

pytest: setup
	@# tests/browser/conftest.py skips the browser tests itself; say so plainly here.
	@[ -x $(CHROMIUM) ] || echo "Chromium not found: browser tests skipped"
	@if [ "$(PYTEST_WORKERS)" != "0" ]; then workers="-n $(PYTEST_WORKERS)"; else workers=""; fi; \
	echo "$(VENV)/bin/pytest $$workers $(PYTEST_ARGS)"; \
	$(VENV)/bin/pytest $$workers $(PYTEST_ARGS)

# Known vulnerabilities in the installed packages fail; a vulnerability service that cannot
# be reached is reported loudly and does not (SECURITY.md, "Dependency audit").
audit: $(VENV)/.installed
	$(PY) .ci/dependency_audit.py

# Lint and tests both run, so one report shows every problem; either failing fails.
test: setup
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory pytest || status=1; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED"; else echo "make test: passed"; fi; \
	exit $$status

# Benchmark (BENCHMARKS.md): 10,000 then 1,000,000 generated customers in separate SQLite
# files under var/bench, every case of `manage.py bench`, ratios printed against the 10,000
# run. Not in `make test`. BENCH_SIZES / BENCH_RUNS / BENCH_ONLY override; for PostgreSQL
# run the commands of BENCHMARKS.md with DATABASE_URL. bench-customers: the customer cases.
BENCH_SIZES ?= 10000 1000000
BENCH_RUNS ?= 30
BENCH_ONLY ?=
bench: setup
	@set -e; base=""; for n in $(BENCH_SIZES); do \
		dir=var/bench/$$n; rm -rf $$dir; mkdir -p $$dir; \
		export KEHU_VAR_DIR=$$dir; \
		DEBUG=1 $(MANAGE) migrate --no-input -v0; \
		DEBUG=1 KEHU_DEMO=1 $(MANAGE) demo_data; \
		DEBUG=1 $(MANAGE) generate --customers $$n; \
		SECRET_KEY=bench ALLOWED_HOSTS=localhost KEHU_PLAIN_STATIC=1 LOG_LEVEL=WARNING \
		$(MANAGE) bench --runs $(BENCH_RUNS) --label sqlite-$$n $${BENCH_ONLY:+--only $(BENCH_ONLY)} \
			--save var/bench/$$n.json $${base:+--baseline $$base}; \
		[ -n "$$base" ] || base=var/bench/$$n.json; \
	done

bench-customers:
	@$(MAKE) bench BENCH_ONLY=customers

# Load test (BENCHMARKS.md): gunicorn on loopback driven by locust at LOAD_USERS concurrent
# users; DATABASE_URL picks the (generated) database. Not in `make test`.
$(VENV)/.load-installed: pyproject.toml | $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,load]'
	touch $@

loadtest: setup $(VENV)/.load-installed
	tests/load/run.sh

clean:
	rm -rf $(VENV) node_modules var test-artifacts .mypy_cache .ruff_cache
