# Two commands do everything on a fresh machine:
#   make train   # creates .venv if missing, trains and evaluates resnet_sgd
#   make test    # creates .venv if missing, runs the test suite
#   make test-fast  # the same without the tests marked slow
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.py | cksum | cut -d' ' -f1)
EXPERIMENT ?= resnet_sgd
ARGS ?=

.PHONY: venv train lint test test-fast contract clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,tools]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

train: venv
	$(PY) -m estimator_cifar.run --experiment=$(EXPERIMENT) $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .

# loadfile: each file's module fixtures (short trainings) are built once, by
# one worker. Per-test timeouts come from pytest.ini.
PYTEST := $(PY) -m pytest -q -n 2 --dist loadfile

test: lint
	$(PYTEST) tests

test-fast: lint
	$(PYTEST) -m "not slow" tests

# The command-line contract: the end-to-end runs of the CLI.
contract: venv
	$(PY) -m pytest -q tests/test_run_e2e.py

clean:
	rm -rf $(VENV) build *.egg-info
