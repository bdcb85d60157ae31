# imdb-crawler: `make demo` runs the main job, `make test` the test suite.
# Both create .venv (Python 3.13) and install requirements on first use.
# Use another interpreter with: make PYTHON=/path/to/python3.13 …

PYTHON ?= $(shell sh scripts/find-python.sh)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: all venv demo test lint bench site clean

all: test

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "No Python 3.13: run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## The main job: crawl the local fixture site into MongoDB (embedded unless MONGODB_URI is set), print a summary.
demo: $(STAMP)
	$(PY) -m crawler.demo

## The whole test suite (starts its own HTTP, MongoDB and Redis servers on free ports), four at a time,
## with line coverage (fails below 90 %, see [tool.coverage] in pyproject.toml).
test: $(STAMP)
	$(PY) -m pytest -q -n 4 --dist worksteal --cov=crawler

lint: $(STAMP)
	$(PY) -m ruff check crawler tests bench
	$(PY) -m ruff format --check crawler tests bench
	$(PY) -m mypy crawler

bench: $(STAMP)
	$(PY) bench/run.py

## The demo site in the foreground (Ctrl-C to stop).
site: $(STAMP)
	$(PY) -m crawler.site --port 8000

clean:
	rm -rf var .pytest_cache
