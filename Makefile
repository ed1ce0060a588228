# Two commands for a newcomer: `make demo` and `make test`. Both create .venv and install what they
# need on a fresh machine with Python 3.11+, make and apt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck contracts unit sysdeps clean

$(STAMP): pyproject.toml
	@bash scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(BIN)/pos-loyalty demo --config config.toml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy pos_loyalty

contracts: $(STAMP)
	$(BIN)/lint-imports

# POS_LOYALTY_TEST_PG=postgresql+psycopg://postgres@127.0.0.1:5432/postgres runs every storage
# and API test on PostgreSQL too (CI sets it); SQLite runs always.
test: lint typecheck contracts
	$(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
