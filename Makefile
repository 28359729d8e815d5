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

.PHONY: venv train test test-fast contract clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,tools]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

train: venv
	$(PY) -m estimator_cifar.run --experiment=$(EXPERIMENT) $(ARGS)

# loadfile: each file's module fixtures (short trainings) are built once, by
# one worker. Per-test timeouts come from pytest.ini.
PYTEST := $(PY) -m pytest -q -n 2 --dist loadfile

test: venv
	$(PYTEST) tests

test-fast: venv
	$(PYTEST) -m "not slow" tests

contract: venv
	bash ../shared/contract/check_cli.sh $(PY)

clean:
	rm -rf $(VENV) build *.egg-info
