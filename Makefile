# Each target sets up .venv itself: on a fresh machine only Python 3.11+ is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-postgres bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/salesops demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the same suite against PostgreSQL (CI runs it; needs a reachable server)
test-postgres: $(STAMP)
	SALESOPS_TEST_DATABASE_URL=$${SALESOPS_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

serve: $(STAMP)
	$(BIN)/salesops serve

# var/ is the default data dir (database, signing keys, signed contracts): never removed here
clean:
	rm -rf $(VENV) var/demo .salesops
