# Every target installs what it needs: uv (from PyPI) and the locked virtualenv.
# Targets are quiet unless something fails: no command echo, no uv or apt chatter.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
export UV_PYTHON_DOWNLOADS := never
# Byte-compile at install, as pip does: start-up is measured against it.
export UV_COMPILE_BYTECODE := 1
# `venv` has synced the environment (quietly); `uv run` must not sync, and so
# byte-compile and report it, again.
RUN := $(UV) run --frozen --no-sync --quiet

.PHONY: venv test test-lowest lint fmt demo bench system-packages awscli crt

venv:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet 'uv==0.13.8'
	@$(UV) sync --frozen --python $(PYTHON) --quiet

system-packages:
	@bash .ci/system-packages

# awscli lives in a uv tool environment of its own (it pins its own botocore).
awscli: venv
	@UV="$(UV)" PYTHON="$(PYTHON)" bash .ci/awscli

# awscrt in .crt/, apart from the venv, for the tests of `aws login` profiles (.ci/crt).
crt: venv
	@UV="$(UV)" bash .ci/crt

# Two pytest-xdist workers (this machine has 2 cores; most tests wait on a child process), the
# work stolen from the busier one at the end. Each worker has its own sandbox: moto, registries
# and loopback block (tests/sandbox.py). `make test WORKERS=0` runs in one process.
WORKERS ?= 2
test: venv system-packages awscli crt
	@PATH="$$($(UV) tool dir --bin):$$PATH" $(RUN) pytest -n $(WORKERS) --dist worksteal

# The fast tests against the lowest dependency versions pyproject.toml allows (.ci/lowest).
test-lowest: venv
	@UV="$(UV)" PYTHON="$(PYTHON)" bash .ci/lowest

lint: venv
	@$(RUN) ruff check --quiet .
	@$(RUN) ruff format --check --quiet .
	@$(RUN) mypy --no-error-summary

fmt: venv
	@$(RUN) ruff format --quiet .
	@$(RUN) ruff check --fix --quiet .

demo: venv
	@bash .ci/system-packages demo
	@$(RUN) python -m tests.demo

bench: venv system-packages
	@$(UV) sync --frozen --group bench --quiet
	@$(RUN) python -m bench
	@$(RUN) python -m bench.helper
