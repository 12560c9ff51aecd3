# Every target installs what it needs: uv (from PyPI) and the locked virtualenv.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
export UV_PYTHON_DOWNLOADS := never
# Byte-compile at install, as pip does: start-up is measured against it.
export UV_COMPILE_BYTECODE := 1

.PHONY: venv test test-lowest lint fmt demo bench system-packages awscli

venv:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet 'uv==0.13.8'
	@$(UV) sync --frozen --python $(PYTHON) --quiet

system-packages:
	@bash .ci/system-packages

# awscli lives in a uv tool environment of its own (it pins its own botocore).
awscli: venv
	@UV="$(UV)" PYTHON="$(PYTHON)" bash .ci/awscli

test: venv system-packages awscli
	PATH="$$($(UV) tool dir --bin):$$PATH" $(UV) run --frozen pytest

# The fast tests against the lowest dependency versions pyproject.toml allows (.ci/lowest).
test-lowest: venv
	@UV="$(UV)" PYTHON="$(PYTHON)" bash .ci/lowest

lint: venv
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

fmt: venv
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

demo: venv system-packages
	$(UV) run --frozen python -m tests.demo

bench: venv system-packages
	$(UV) run --frozen --group bench python -m bench
