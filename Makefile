# framecast developer entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Foundry binaries (anvil, forge, cast) come from npm: put them first on PATH.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test check lint typecheck contracts contracts-fmt contracts-test contracts-deep slither pytest artifacts bench-gas clean \
	docker-setup docker-image docker-test-image bench-docker explorer-test-deps

setup: $(VENV)/.installed node_modules/.installed

# torch is pinned to 2.13.0 and installed first: pip takes the CPU wheel shipped on this
# machine; any other spec would pull gigabytes of CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[all,dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/framecast demo

test: setup docker-test-image explorer-test-deps check pytest

check: lint typecheck contracts-fmt contracts-test artifacts slither

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' package-dir mapping (framecast.shared -> shared/), so it
# checks a mirror of symlinks laid out as the import namespace. Its cache lives outside the
# mirror (.mypy_cache), so a second run takes seconds instead of minutes.
typecheck:
	rm -rf .mypy-src && mkdir -p .mypy-src/framecast
	ln -s ../../client .mypy-src/framecast/client
	ln -s ../../node .mypy-src/framecast/node
	ln -s ../../shared .mypy-src/framecast/shared
	ln -s ../../docker/runner .mypy-src/framecast/runner
	cd .mypy-src && $(CURDIR)/$(BIN)/mypy --config-file ../pyproject.toml --cache-dir $(CURDIR)/.mypy_cache \
		-p framecast.shared -p framecast.client -p framecast.node -p framecast.runner

contracts:
	cd contracts && forge build

# CI=true (set by .ci/run) runs the fuzz and invariant tests under foundry.toml's ci profile
# (more runs); the gas snapshot is always checked under the default profile it was taken with.
contracts-test:
	cd contracts && $(if $(filter true,$(CI)),FOUNDRY_PROFILE=ci )forge test
	cd contracts && FOUNDRY_PROFILE=default forge snapshot --check

# The invariants at their goal depth (10,000 runs × 128 calls each); not part of `make test`.
contracts-deep:
	cd contracts && FOUNDRY_PROFILE=deep forge test --match-path 'test/invariant/*'

contracts-fmt:
	cd contracts && forge fmt --check

# The ABIs/bytecode the Python side loads are committed; fail if a rebuild differs.
artifacts: contracts
	$(BIN)/python -m framecast.shared.chain.artifacts --check

# slither-analyzer pins web3<8: it gets a venv of its own so the product keeps web3 8.
SLITHER_VENV := .venv-slither
$(SLITHER_VENV)/.installed:
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install -q --disable-pip-version-check 'slither-analyzer>=0.11,<0.12'
	touch $@

slither: contracts $(SLITHER_VENV)/.installed
	cd contracts && $(CURDIR)/$(SLITHER_VENV)/bin/slither . --config-file slither.config.json

pytest:
	$(BIN)/pytest

# The inner loop (CONTRIBUTING.md): lint, types, then every test not marked docker or slow,
# on FAST_WORKERS pytest-xdist workers (each with its own anvil); under 3 minutes on a
# 2-core machine. PYTEST_FAST_ARGS adds options (e.g. `-x`, `-k name`).
FAST_WORKERS ?= 2
.PHONY: test-fast
test-fast: setup lint typecheck
	$(BIN)/pytest -m "not docker and not slow" -p no:cacheprovider -q -n $(FAST_WORKERS) \
		$(PYTEST_FAST_ARGS)

bench-gas: setup
	$(BIN)/python bench/gas.py

# Docker (docs/protocol.md §5). Debian's engine and debootstrap; the runner image is built offline.
docker-setup:
	@if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap; \
	else echo "docker.io/debootstrap missing and not root: run \`sudo make docker-setup\`" >&2; exit 1; fi

# The CPU runner image (tagged with a hash of its inputs: unchanged inputs, no rebuild).
docker-image: setup docker-setup
	docker/test-image/with-dockerd.sh docker/test-image/build.sh

# `make test` builds the image where it can (root, or a daemon that answers); elsewhere the
# docker tests skip and say why.
docker-test-image: setup
	@if [ "$$(id -u)" = 0 ] || docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory docker-image; \
	else echo "not root and no Docker daemon: the docker tests will be skipped" >&2; fi

# The explorer's browser and PostgreSQL tests need Debian's chromium and postgresql (the
# tests start their own server and browser). Root installs them; elsewhere those tests skip
# and say why.
explorer-test-deps:
	@if command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql; \
	else echo "chromium/postgresql missing and not root: the explorer's browser and PostgreSQL tests will be skipped" >&2; fi

# Cold vs warm tiny-model job wall time in the hardened container.
bench-docker: docker-image
	docker/test-image/with-dockerd.sh $(BIN)/python bench/tiny_job_docker.py

clean:
	rm -rf contracts/out contracts/cache .pytest_cache .mypy_cache .ruff_cache
