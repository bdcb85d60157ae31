# imdb-crawler: `make demo` runs the main job, `make test` the test suite.
# Both create .venv (Python 3.13) and install the locked dependencies on first use.
# Use another interpreter with: make PYTHON=/path/to/python3.13 …

PYTHON ?= $(shell sh scripts/find-python.sh)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock | cksum | cut -d' ' -f1)
PEERS := bench/.venv-peers
PEERS_STAMP := $(PEERS)/.installed-$(shell cat bench/peers.lock | cksum | cut -d' ' -f1)

.PHONY: all venv demo test lint bench lock deploy site clean

all: test

# Dependencies: ranges in pyproject.toml, exact versions with hashes in requirements-dev.lock
# (tests, tools) and requirements.txt (production: the same versions, without the tools).
# The project itself is installed editable: `python -m crawler.…` works from any folder.
$(STAMP): requirements-dev.lock
	@test -n "$(PYTHON)" || { echo "No Python 3.13: run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --no-deps --editable .
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## Regenerate both locks from pyproject.toml (after changing a range there).
lock: $(STAMP)
	rm -f requirements-dev.lock requirements.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra spidermon --python-version 3.13 --universal --generate-hashes --quiet -o requirements-dev.lock
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.13 --universal --generate-hashes --quiet -c requirements-dev.lock -o requirements.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra scrapyd --extra spidermon --python-version 3.13 --universal --generate-hashes --quiet -c requirements-dev.lock -o requirements-scrapyd.lock
	$(VENV)/bin/uv pip compile bench/peers.in --python-version 3.13 --universal --generate-hashes --quiet -o bench/peers.lock

## The main job: crawl the local fixture site into MongoDB (embedded unless MONGODB_URI is set), print a summary.
demo: $(STAMP)
	$(PY) -m crawler.demo

## The whole test suite (starts its own HTTP, MongoDB, Redis and Scrapyd servers on free ports), four at a time,
## with line coverage (fails below 90 %, see [tool.coverage] in pyproject.toml). It leaves the checkout as it
## was: coverage data and Hypothesis' files in a temporary folder (killed worker processes leave coverage data
## behind), no pytest cache.
test: $(STAMP)
	@data=$$(mktemp -d); COVERAGE_FILE=$$data/.coverage HYPOTHESIS_STORAGE_DIRECTORY=$$data/hypothesis \
		$(PY) -m pytest -q -p no:cacheprovider -n 4 \
		--dist worksteal --cov=crawler; status=$$?; rm -rf $$data; exit $$status

lint: $(STAMP)
	$(PY) -m ruff check crawler tests bench
	$(PY) -m ruff format --check crawler tests bench
	$(PY) -m mypy crawler

# The parsers we compare with (cinemagoerng pins lxml 5.4) live in an environment of their own.
$(PEERS_STAMP): bench/peers.lock
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --require-hashes -r bench/peers.lock
	rm -f $(PEERS)/.installed-*
	touch $@

bench: $(STAMP) $(PEERS_STAMP)
	$(PY) bench/run.py --peers $(PEERS)/bin/python

## Build the egg and upload it to a Scrapyd target of scrapy.cfg (default: localhost:6800); fails unless Scrapyd says ok.
TARGET ?= default
deploy: $(STAMP)
	mkdir -p var && $(VENV)/bin/scrapyd-deploy $(TARGET) -p imdb_crawler | tee var/deploy.json
	@grep -q '"status": "ok"' var/deploy.json || { echo "Scrapyd refused the egg (see above)" >&2; exit 1; }

## The demo site in the foreground (Ctrl-C to stop).
site: $(STAMP)
	$(PY) -m crawler.demo_site --port 8000

clean:
	rm -rf var .pytest_cache build dist *.egg-info
