# Training Loop Lab. Two commands on a fresh machine: `make book` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall only when the dependency lists change (stamp file), so re-running is fast.
STAMP  := $(VENV)/.installed
# labpkg itself is installed the way a reader's `pip install` builds it (no editable install),
# so the tests and the book use exactly what the wheel ships; reinstalled when a source changes.
PKG    := $(VENV)/.labpkg
PKG_SOURCES := $(shell find labpkg -name '*.py' -o -name '*.json') pyproject.toml README.md
PORT   ?= 8000
JB_FLAGS := -W -n --keep-going

.PHONY: help install book serve test lint format clean

help:
	@echo "make book   build the site into _build/html"
	@echo "make test   run every test (unit, Colab rehearsal of every notebook, clean -W build, browser)"
	@echo "make serve  serve _build/html on http://127.0.0.1:$(PORT)"
	@echo "make lint   ruff check + ruff format --check + workflow schema"
	@echo "make clean  remove _build, .venv and caches"

install: $(PKG)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10 or newer is needed (found: $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt setuptools
	$(BIN)/python -m pip install --quiet -c constraints.txt ".[book,test]"
	rm -rf build
	touch $(STAMP)

$(PKG): $(STAMP) $(PKG_SOURCES)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	rm -rf build
	touch $(PKG)

# A clean build: the old HTML and doctrees go, so no warning hides behind an incremental build.
# The execution cache (_build/.jupyter_cache) stays, so unchanged notebooks are not re-run.
book: $(PKG)
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo
	@echo "The site is in _build/html (open _build/html/index.html)."
	@echo "Serve it locally with: make serve   (http://127.0.0.1:$(PORT))"

serve:
	@test -f _build/html/index.html || { echo "No site yet: run make book first."; exit 1; }
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

# `pytest`, not `python -m pytest`: the latter puts the checkout on sys.path, and the tests
# would import ./labpkg instead of the installed package.
# Two workers (pytest-xdist): one runs the Colab rehearsal of every notebook, the book build
# from those executions and the browser tests, in that order (one xdist group, "site"); the
# other runs the unit tests meanwhile. One thread per process: two cores, no oversubscription.
PYTEST_FLAGS ?= -n 2 --dist loadgroup --durations=15
test: $(PKG) lint
	OMP_NUM_THREADS=1 $(BIN)/pytest $(PYTEST_FLAGS)

lint: $(STAMP)
	@start=$$(date +%s); set -e; \
	$(BIN)/ruff check .; \
	$(BIN)/ruff format --check .; \
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml; \
	echo "lint took $$(( $$(date +%s) - start )) s"

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf _build build $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
