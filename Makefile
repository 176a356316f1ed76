# One entry point for every habit. uv is bootstrapped into .tools/ when it is not installed, so a
# fresh machine needs nothing but Python 3.11+ and Go 1.26+.
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install system-deps run test test-unit test-integration fuzz load bench bench-full lint format cluster-up cluster-down clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

install: .venv/.synced

system-deps:  ## Debian packages the tests need (PostgreSQL), installed when missing
	scripts/install-system-deps

run: install  ## the local control plane + Kuberth on http://127.0.0.1:8000
	$(UV) run kuberth dev

test: install system-deps  ## every test; builds (or reuses) the control plane first
	$(UV) run pytest

test-unit: install
	$(UV) run pytest tests/unit

test-integration: install system-deps
	$(UV) run pytest tests/integration

fuzz: install system-deps  ## Schemathesis with many more examples than the test suite's run
	KUBERTH_FUZZ_EXAMPLES=$${KUBERTH_FUZZ_EXAMPLES:-200} $(UV) run pytest tests/integration/fuzz

load: install system-deps  ## bounded load test on loopback (bench/load.py); artifacts/load.json
	$(UV) run python -m bench.load

bench: install system-deps  ## every benchmark, quick sizes (minutes); artifacts/bench/*.json
	$(UV) run python -m bench

bench-full: install system-deps  ## every benchmark at the sizes the targets are stated for
	$(UV) run python -m bench --full

lint: install
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run mypy
	$(UV) run lint-imports

format: install
	$(UV) run ruff format src tests bench
	$(UV) run ruff check --fix src tests bench

cluster-up: install
	$(UV) run kuberth cluster up

cluster-down: install
	$(UV) run kuberth cluster down

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache
