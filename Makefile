# `make demo` (JupyterLab on the tour notebook), `make app` (the explorer as a page without
# code, served by Voila), `make docs` (the documentation site, in site/) and `make test`
# (THE test command: lint, the strict docs build, then the whole test suite).  They share
# one virtual environment in .venv, made on first use; each installs only what it needs
# (the demo: the package and JupyterLab; the tests: every extra, Ray included).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# one stamp per set of extras: pip runs again only when pyproject.toml changes
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_APP := $(VENV)/.installed-app
STAMP_DOCS := $(VENV)/.installed-docs
STAMP_TEST := $(VENV)/.installed-test
# The project's own files: an untracked notebook (a teacher's scratch copy in notebooks/)
# is not linted.  Outside a git checkout: everything.
TRACKED := $(wildcard $(shell git ls-files '*.py' '*.ipynb' 2>/dev/null))
LINT_FILES := $(if $(TRACKED),$(TRACKED),.)
# JupyterLab refuses root without --allow-root; with no screen it only prints the URL.
NO_SCREEN := $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser)
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root) $(NO_SCREEN)
# notebook_shim (installed with notebook 7, for the browser tests) reads every ServerApp
# trait while it links, the deprecated ServerApp.token among them, and voila's import turns
# that DeprecationWarning on: the demo (JupyterLab) does without the shim, so the server
# starts without a deprecation warning. Nothing here sets a token: Jupyter makes one.
LAB_FLAGS += --ServerApp.jpserver_extensions=notebook_shim=False
# The URL Lab prints (and opens) is its default URL: make it the tour, not the launcher.
# (A file argument only reaches the browser Lab opens itself; the printed URL stays /lab.)
TOUR := --ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/tour.ipynb

.PHONY: demo app docs test lint format venv

venv: $(STAMP_TEST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_DEMO): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(STAMP_APP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[app]'
	touch $@

$(STAMP_DOCS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

# dev = test + demo + app + docs; ray for tests/test_ray.py (skipped, with its reason,
# where Ray is missing)
$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $@

demo: $(STAMP_DEMO)
	$(BIN)/jupyter lab $(TOUR) $(LAB_FLAGS)

# Voila runs notebooks/app.ipynb on the server and shows its outputs only (no code).
app: $(STAMP_APP)
	$(BIN)/voila notebooks/app.ipynb $(NO_SCREEN)

# The site (mkdocs.yml) into site/; --strict: a broken link or reference is an error.
# Never with --quiet: mkdocs 1.6 then stops counting warnings, and --strict passes them.
# scripts/build_docs.py is the mkdocs command without one slow import (see there); Material's
# banner about its successor says nothing about this site: keep it quiet.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/python scripts/build_docs.py
docs: $(STAMP_DOCS)
	$(MKDOCS) build --strict

lint: $(STAMP_TEST)
	@echo "$(BIN)/ruff check <$(words $(LINT_FILES)) tracked files>"
	@$(BIN)/ruff check $(LINT_FILES)
	@echo "$(BIN)/ruff format --check <$(words $(LINT_FILES)) tracked files>"
	@$(BIN)/ruff format --check $(LINT_FILES)

format: $(STAMP_TEST)
	@echo "$(BIN)/ruff check --fix <$(words $(LINT_FILES)) tracked files>"
	@$(BIN)/ruff check --fix $(LINT_FILES)
	@echo "$(BIN)/ruff format <$(words $(LINT_FILES)) tracked files>"
	@$(BIN)/ruff format $(LINT_FILES)

test: lint
	$(MKDOCS) build --strict
	$(BIN)/python -m pytest
