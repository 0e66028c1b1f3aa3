# Training Loop Lab. Two commands on a fresh machine: `make book` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall only when the dependency lists change (stamp file), so re-running is fast.
STAMP  := $(VENV)/.installed
PORT   ?= 8000
JB_FLAGS := -W -n --keep-going

.PHONY: help install book serve test lint format clean

help:
	@echo "make book   build the site into _build/html"
	@echo "make test   run every test (unit, notebooks, clean -W build, browser, ruff)"
	@echo "make serve  serve _build/html on http://127.0.0.1:$(PORT)"
	@echo "make lint   ruff check + ruff format --check"
	@echo "make clean  remove _build, .venv and caches"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10 or newer is needed (found: $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

# A clean build: the old HTML and doctrees go, so no warning hides behind an incremental build.
# The execution cache (_build/.jupyter_cache) stays, so unchanged notebooks are not re-run.
book: $(STAMP)
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo
	@echo "The site is in _build/html (open _build/html/index.html)."
	@echo "Serve it locally with: make serve   (http://127.0.0.1:$(PORT))"

serve:
	@test -f _build/html/index.html || { echo "No site yet: run make book first."; exit 1; }
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf _build $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
