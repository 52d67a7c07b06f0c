# Two commands: `make demo` (JupyterLab on the tour notebook) and `make test` (everything).
# Both build their own virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# JupyterLab refuses root without --allow-root; with no screen it only prints the URL.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root) $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser)
# notebook_shim (installed with notebook 7, for the browser tests) reads every ServerApp
# trait while it links, the deprecated ServerApp.token among them, and voila's import turns
# that DeprecationWarning on: the demo (JupyterLab) does without the shim, so the server
# starts without a deprecation warning. Nothing here sets a token: Jupyter makes one.
LAB_FLAGS += --ServerApp.jpserver_extensions=notebook_shim=False

.PHONY: demo test lint format venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jupyter lab notebooks/tour.ipynb $(LAB_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest
