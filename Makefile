# One-command setup: `make test` and `make book` create .venv and install everything they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test unit notebooks lint book browser-deps clean help

help:
	@echo "make test   - install (if needed), ruff, unit tests, notebooks in smoke mode (nbval)"
	@echo "make book   - install (if needed), build the HTML book into _build/html"

# Re-runs are fast: the install only happens when requirements.txt or pyproject.toml changed.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check minidiff tests bench

unit: $(STAMP)
	$(BIN)/python -m pytest tests -n 2 -q

notebooks: $(STAMP)
	MINIDIFF_SMOKE=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:randomly -q notebooks

test: lint unit notebooks

book: $(STAMP)
	$(BIN)/python .ci/check_notebook_outputs.py
	$(BIN)/jupyter-book build . -W -n --keep-going

clean:
	rm -rf _build .pytest_cache
