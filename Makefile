# RustChain: `make demo` runs a mission end to end, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint unit bench demo protos lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m rustchain.tools.check_protos

unit: install
	$(BIN)/pytest

test: lint unit

bench: install
	$(BIN)/python -m bench

demo: install
	$(BIN)/python -m rustchain.tools.demo

protos: install
	$(BIN)/python -m rustchain.tools.protos

lock: install
	(echo "# Every package of the development environment, pinned. Regenerate with 'make lock'."; \
	 $(BIN)/pip freeze --all --exclude-editable | grep -vi '^rustchain') > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# The Secret material of the dev Kubernetes overlay (k8s/overlays/dev/secrets, git-ignored).
.PHONY: k8s-secrets
k8s-secrets: install
	$(BIN)/python -m rustchain.tools.k8s_secrets --out k8s/overlays/dev/secrets
