# hvae-book: the two commands of the README.
#   make book   set up .venv (if needed), execute every notebook with papermill, build _build/html
#   make test   set up .venv (if needed), run the unit tests and the notebooks under nbval
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DEVICE ?= auto
THREADS ?= 1

.PHONY: setup book test clean

$(VENV)/.installed: requirements.txt pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	@# `jupyter lab book/` from this venv also starts for root (containers, CI machines)
	mkdir -p $(VENV)/etc/jupyter
	printf '{"ServerApp": {"allow_root": true}}\n' > $(VENV)/etc/jupyter/jupyter_server_config.json
	touch $@

setup: $(VENV)/.installed

book: setup
	$(PY) -m hvae_lib build --profile $(PROFILE) --device $(DEVICE) --threads $(THREADS)

test: setup
	$(PY) -m pytest

clean:
	rm -rf _build .hvae_cache
