# One-command setup: `make test` and `make book` create .venv and install everything they need,
# including (on Debian, when missing) Chromium + chromedriver for the browser test of the book.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# MathJax for the offline book: copied from the pinned PyPI package into the build tree.
MATHJAX := _build/_mathjax/mathjax/tex-chtml.js
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver

.PHONY: setup test unit notebooks lint gpucheck-dry book browser browser-deps clean help assignments book-instructor

# `make` alone installs everything the tests and the book need, then lists the targets.
setup: $(STAMP) browser-deps $(MATHJAX) help

help:
	@echo "make       - install everything (.venv, MathJax for the book, Debian chromium + chromium-driver)"
	@echo "make test   - install (if needed), ruff, unit tests, notebooks in smoke mode (nbval),"
	@echo "              the HTML book, and the headless-Chromium test of every page"
	@echo "make gpucheck-dry - rehearse bench/gpu_check.sh on CPU (part of make test)"
	@echo "make book   - install (if needed), build the HTML book into _build/html"
	@echo "make browser - test the built book in headless Chromium (after make book)"
	@echo "make book-instructor - the book plus rubrics and assignment solutions, into _build/instructor/html"
	@echo "make assignments - otter assign every assignments/*.ipynb into _build/assignments/<name>/{student,autograder}"

# Re-runs are fast: the install only happens when requirements.txt or pyproject.toml changed.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check minidiff tests bench .ci book/_ext

unit: $(STAMP)
	$(BIN)/python -m pytest tests -n 2 -q --ignore=tests/test_book_browser.py

notebooks: $(STAMP)
	MINIDIFF_SMOKE=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:randomly -q notebooks

# Debian's chromium and chromium-driver (same version, from the same apt source); never a
# browser download from elsewhere. Needs root (CI runs as root) or sudo.
browser-deps:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian chromium + chromium-driver"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null; \
	fi

$(MATHJAX): $(STAMP)
	rm -rf _build/_mathjax
	mkdir -p _build/_mathjax
	cp -r "$$($(BIN)/python -c 'import mathjax, pathlib; print(pathlib.Path(mathjax.__file__).parent / "static/mathjax/es5")')" \
	  _build/_mathjax/mathjax
	test -f $(MATHJAX)

book: $(STAMP) $(MATHJAX)
	$(BIN)/python .ci/check_notebook_outputs.py
	rm -rf _build/html  # no stale pages: the browser test opens every page in the build
	$(BIN)/jupyter-book build . -W -n --keep-going

# The instructor edition: the book plus the rubrics and the assignments' masters (solutions, hidden tests).
book-instructor: $(STAMP) $(MATHJAX)
	$(BIN)/python .ci/check_notebook_outputs.py
	$(BIN)/python .ci/build_instructor.py

# The real-browser test of every page of _build/html (run `make book` first).
browser: $(STAMP) browser-deps
	MINIDIFF_REQUIRE_BOOK=1 CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) $(BIN)/python -m pytest -q -rP -p no:randomly tests/test_book_browser.py

# The CPU rehearsal of bench/gpu_check.sh (every stage at tiny sizes, about a minute), so the GPU run
# cannot fail on a typo; its files land in _build/gpu-check-dry.
gpucheck-dry: $(STAMP)
	OUT=_build/gpu-check-dry PYTHON=$(BIN)/python bash bench/gpu_check.sh --cpu-dry-run

# The course kit: student notebooks and autograder zips from the masters in assignments/ (offline;
# `otter assign` runs every test on the solutions, in smoke mode). tests/test_assignments.py (in `unit`)
# proves full marks for each solution and zero for each stub under `otter run`.
assignments: $(STAMP)
	$(BIN)/python .ci/build_assignments.py

test: lint unit notebooks gpucheck-dry assignments
	$(MAKE) book
	$(MAKE) book-instructor
	$(MAKE) browser

clean:
	rm -rf _build .pytest_cache
