# AFAS SB back office: every command a developer or CI needs.
#
# The Makefile bootstraps its own tooling: uv is installed into .tools/ (a
# private venv) and the project's dependencies into .venv/ from uv.lock. Nothing
# is installed globally except Debian packages the tests need (chromium,
# gettext), and only when they are missing.
#
# `make run` works on a bare machine: SQLite in var/ and in-process tasks. Set
# DATABASE_URL / REDIS_URL in the environment to use PostgreSQL / Redis.

PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.synced
RUN_ADDR ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
SHELL := /bin/sh

.PHONY: help run test lint format bench worker beat migrate seed messages clean distclean \
	check-deploy migrations-check venv system-deps-run system-deps-test

help: ## List the targets
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: PYTEST_ARGS='...' (extra pytest arguments), RUN_ADDR=$(RUN_ADDR)"

# --- Tooling -------------------------------------------------------------------

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

# --locked: a uv.lock that no longer matches pyproject.toml fails loudly.
$(STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --python python3.11
	touch $@

venv: $(STAMP) ## Create/update .venv from uv.lock

# Debian packages the project needs at run time and in tests, installed with
# apt-get only when missing: headless Chromium for the browser test, and
# HarfBuzz's subsetter, without which WeasyPrint subsets fonts in pure Python
# (about 5x slower PDFs).
APT_PACKAGES_RUN := libharfbuzz-subset0 fonts-dejavu-core
APT_PACKAGES_TEST := $(APT_PACKAGES_RUN) chromium

define apt_ensure
	@missing=""; for pkg in $(1); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Missing Debian packages:$$missing; install them with" >&2; \
	    echo "  sudo apt-get install --no-install-recommends$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

system-deps-run:
	$(call apt_ensure,$(APT_PACKAGES_RUN))

system-deps-test:
	$(call apt_ensure,$(APT_PACKAGES_TEST))

# --- Development ---------------------------------------------------------------

# msgfmt comes from Debian's gettext, installed with apt-get when missing.
messages: $(STAMP) ## Compile locale/*.po to .mo (skipped when there are none)
	@if ! find locale -name '*.po' 2>/dev/null | grep -q .; then \
	  echo "No .po files in locale/: nothing to compile"; exit 0; \
	fi; \
	if ! command -v msgfmt >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "msgfmt is missing and this is not root: sudo apt-get install gettext" >&2; exit 1; \
	  fi; \
	  echo "Installing Debian's gettext (msgfmt) with apt-get"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gettext || exit 1; \
	fi; \
	echo "$(MANAGE) compilemessages --ignore=$(VENV) --ignore=$(TOOLS)"; \
	$(MANAGE) compilemessages --ignore=$(VENV) --ignore=$(TOOLS)

migrate: $(STAMP) ## Apply database migrations (they also create the DB cache table)
	mkdir -p var
	$(MANAGE) migrate --noinput

seed: migrate ## Load the demo data (safe to run again); prints the demo logins
	$(MANAGE) seed_demo
	@# The collections story (R12, R13); it declines when the calendar already ran those days.
	-$(MANAGE) demo_collections

run: system-deps-run seed messages ## Migrate, seed demo data and start the dev server on 127.0.0.1:8000
	$(MANAGE) runserver $(RUN_ADDR)

worker: $(STAMP) ## Start a Celery worker (needs REDIS_URL)
	@test -n "$$REDIS_URL" || { echo "REDIS_URL is not set: the worker needs a Redis broker, e.g. REDIS_URL=redis://127.0.0.1:6379/0 make worker" >&2; exit 1; }
	$(VENV)/bin/celery -A afas_sb worker -l info --concurrency 2

beat: $(STAMP) ## Start Celery beat, DatabaseScheduler (needs REDIS_URL)
	@test -n "$$REDIS_URL" || { echo "REDIS_URL is not set: beat needs a Redis broker, e.g. REDIS_URL=redis://127.0.0.1:6379/0 make beat" >&2; exit 1; }
	$(VENV)/bin/celery -A afas_sb beat -l info

# --- Quality -------------------------------------------------------------------

# DATABASE_URL / REDIS_URL are passed through when set (CI sets both). The test
# settings module comes from pyproject.toml, so a DJANGO_SETTINGS_MODULE left
# in the shell must not override it.
test: $(STAMP) system-deps-test messages ## Run the test suite (PYTEST_ARGS='-k foo' to pass arguments)
	env -u DJANGO_SETTINGS_MODULE $(VENV)/bin/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff format, then ruff check --fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# As modules (python -m bench.NAME): run as files, bench/ would come first on
# sys.path and bench/collections.py would shadow the standard library's collections.
bench: $(STAMP) ## Run every bench/*.py script
	@found=0; \
	for script in bench/*.py; do \
	  [ -e "$$script" ] || continue; \
	  case "$$(basename "$$script")" in _*) continue;; esac; \
	  found=1; \
	  module=bench.$$(basename "$$script" .py); \
	  echo "== python -m $$module"; \
	  $(PY) -m "$$module" || exit 1; \
	done; \
	[ "$$found" = 1 ] || echo "No benchmarks in bench/"

migrations-check: $(STAMP) ## Fail when a model change has no migration
	mkdir -p var
	$(MANAGE) makemigrations --check --dry-run

# A throwaway secret generated per run: check --deploy only inspects settings.
check-deploy: $(STAMP) ## manage.py check --deploy with the production settings
	DJANGO_SETTINGS_MODULE=afas_sb.settings.production \
	SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	ALLOWED_HOSTS=portal.example.nl \
	$(MANAGE) check --deploy --fail-level WARNING

# --- Housekeeping --------------------------------------------------------------

clean: ## Remove caches and build output (keeps .venv, .tools and var/)
	rm -rf .pytest_cache .ruff_cache .hypothesis staticfiles test-artifacts
	find . -path ./$(VENV) -prune -o -path ./$(TOOLS) -prune -o -path ./.git -prune -o \
	  \( -name __pycache__ -type d -prune -exec rm -rf {} + \) -o \( -name '*.mo' -type f -exec rm -f {} + \)

distclean: clean ## clean, and also remove .venv and .tools (var/ with the dev DB is kept)
	rm -rf $(VENV) $(TOOLS)
