# `make demo` (JupyterLab on the tour notebook), `make app` (the explorer as a page without
# code, served by Voila) and `make test` (everything).  Each builds its own virtual
# environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
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

.PHONY: demo app test lint format venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jupyter lab $(TOUR) $(LAB_FLAGS)

# Voila runs notebooks/app.ipynb on the server and shows its outputs only (no code);
# scripts/serve_app.py is voila whose kernels end when their page closes, and which culls
# kernels left without a page for 10 minutes (a class reloading keeps no kernel piles).
app: $(STAMP)
	$(BIN)/python scripts/serve_app.py notebooks/app.ipynb $(NO_SCREEN)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest
