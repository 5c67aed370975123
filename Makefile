# hvae-book: the two commands of the README.
#   make book   set up .venv (if needed), execute every notebook with papermill, build _build/html
#   make test   set up .venv (if needed), run the unit tests and the notebooks under nbval
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DEVICE ?= auto
THREADS ?= 1
JOBS ?=
RERUN ?=
TEST_JOBS ?= auto

.PHONY: setup book test smoke clean

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
	$(PY) -m hvae_lib build --profile $(PROFILE) --device $(DEVICE) --threads $(THREADS)$(if $(JOBS), --jobs $(JOBS))$(if $(RERUN), --rerun)

test: setup
	@# 1. unit tests and notebooks spread over TEST_JOBS workers (pytest-xdist; each notebook
	@#    whole on one worker, the longest first); 2. the notebooks that read what the others
	@#    wrote (chapter 4's verdicts, the ledger), then the browser tests, which build the book
	@#    from the models run 1 stored. Both share one cache and claims folder, removed after.
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/hvae-test-XXXXXX"); \
	export HVAE_CACHE_DIR="$$dir/cache" HVAE_CLAIMS_DIR="$$dir/claims"; \
	$(PY) -m pytest -n $(TEST_JOBS) -m "not browser and not after_chapters" && \
	$(PY) -m pytest -m "after_chapters or browser"; \
	code=$$?; rm -rf "$$dir"; exit $$code

# The paper profile's smoke form: every notebook with the paper's models and code paths, steps
# and data cut, synthetic stand-ins for absent data files (about 5 minutes on 2 cores; CI runs it)
smoke: setup
	$(PY) -m hvae_lib build --profile paper --smoke --device cpu --jobs 2 --threads 1 \
		--no-cache --no-progress --output _build/smoke

clean:
	rm -rf _build .hvae_cache
