# The two commands a newcomer types. Both bootstrap .venv from requirements-dev.txt when it is
# missing or older than that file (a stamp file records the last install), then run.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python

.PHONY: run test lint venv token clean rebuild-accounting

venv: $(STAMP)

$(STAMP): requirements-dev.txt client/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m caesar_faas.local

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

token: $(STAMP)
	$(PY) -m caesar_faas.tokens $(ARGS)

# Recount the accounting totals from the records (after an upgrade, or to repair them); the
# store is CAESAR_DB_URL, else the SQLite file under CAESAR_HOME (default ./var).
rebuild-accounting: $(STAMP)
	$(PY) -m caesar_faas.store.rebuild

clean:
	rm -rf $(VENV) var build
