# clapas developer tasks. Quick start on a fresh machine: `make demo`, then `make test`.
#
#   make venv     create .venv (with $(PYTHON) -m venv) and install clapas editable with its dev extras;
#                 re-installs only when pyproject.toml changed since the last install
#   make demo     run `clapas demo`: a simulated city on http://127.0.0.1:8000
#   make test     the whole test suite, PostgreSQL and MQTT tests included: scripts/test-services.sh uses
#                 the servers at CLAPAS_TEST_PG / CLAPAS_TEST_MQTT, or starts throwaway ones there
#                 (installing postgresql / mosquitto with apt-get if missing); a missing service fails.
#                 Pytest arguments: make test ARGS="-k store -x"
#   make lint     ruff check
#   make bench    bench/ingest.py (arguments: make bench ARGS="...")
#   make fuzz     bench/fuzz.py: longer, coverage-guided fuzzing (make fuzz ARGS="--seconds 600")
#   make clean    remove .venv, caches, build output and var/

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.clapas-installed
ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint bench fuzz clean

help:
	@sed -n '/^$$/q; s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

# The venv is (re)created when missing, or when its interpreter no longer runs (Python removed or upgraded).
ifneq ($(shell $(BIN)/python -c 'print("ok")' 2>/dev/null),ok)
.PHONY: $(VENV)/pyvenv.cfg
endif

$(VENV)/pyvenv.cfg:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "clapas needs Python >= 3.11; '$(PYTHON)' is: $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "Use another one: make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv --clear $(VENV) || { \
	  echo "'$(PYTHON) -m venv' failed; on Debian/Ubuntu system Python: apt-get install python3-venv" >&2; \
	  exit 1; }

# Install (again) when pyproject.toml is newer than the stamp, or the venv was (re)created.
$(STAMP): pyproject.toml $(VENV)/pyvenv.cfg
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

demo: venv
	$(BIN)/clapas demo

test: venv
	CLAPAS_REQUIRE_SERVICES=1 bash scripts/test-services.sh $(BIN)/python -m pytest -q $(ARGS)

lint: venv
	$(BIN)/ruff check .

bench: venv
	@test -f bench/ingest.py || { echo "bench/ingest.py does not exist yet" >&2; exit 1; }
	$(BIN)/python bench/ingest.py $(ARGS)

fuzz: venv
	$(BIN)/python bench/fuzz.py $(ARGS)

clean:
	rm -rf $(VENV) build var .pytest_cache .ruff_cache .hypothesis
	find src -name '*.egg-info' -prune -exec rm -rf {} +
	find src tests bench scripts -name __pycache__ -prune -exec rm -rf {} +
