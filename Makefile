# Two commands for a fresh machine: `make run` (the suite against the sandbox) and
# `make test` (the project's own tests, the detection matrix included).
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] && echo "" || (command -v sudo >/dev/null && echo sudo) || echo MISSING)
SYSTEM_PACKAGES := postgresql postgresql-contrib redis-server prometheus

.PHONY: setup system venv run test matrix clean

setup: system venv

system:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql postgresql-contrib"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$(SUDO)" = MISSING ]; then echo "Missing system packages:$$missing. Install them as root (apt-get install$$missing) and run make again."; exit 1; fi; \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e .
	touch $@

venv: $(VENV)/.installed

run: setup
	$(VENV)/bin/pytest tests_synthetic

test: setup
	$(VENV)/bin/pytest tests -p no:cacheprovider

matrix: setup
	$(VENV)/bin/veza-synth matrix

clean:
	rm -rf $(VENV) reports/2* reports/latest
