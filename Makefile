# Developer and CI entry points. CI runs `bash .ci/run`, which runs `make test`.

PYTHON ?= python3
VENV := .venv
PYTEST_ARGS ?= -n 2
PG_INITDB := /usr/lib/postgresql/*/bin/initdb

.PHONY: venv postgres-bin redis-bin chromium-bin deploy-bin wheels test run lint

# Re-installs only when pyproject.toml or constraints.txt change (or the venv
# is deleted). constraints.txt pins the exact versions the suite last passed
# with (the TUI's SVG snapshots depend on textual's and rich's rendering), so a
# fresh clone tests what was tested; refresh it with
#   .venv/bin/pip freeze --exclude-editable > constraints.txt
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -c constraints.txt -e '.[dev,redis]'
	touch $@

# The test suite starts its own PostgreSQL from the server binaries (see
# tests/pgserver.py). Install them if missing and we can; in CI, missing
# binaries are an error rather than a reason to skip the PostgreSQL tests.
postgres-bin:
	@if [ -z "$$USERMGMT_PG_BIN$$USERMGMT_TEST_POSTGRES_URL" ] \
	    && ! ls $(PG_INITDB) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing PostgreSQL server binaries with apt-get"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	  fi; \
	  if ! ls $(PG_INITDB) >/dev/null 2>&1; then \
	    if [ "$$CI" = true ]; then \
	      echo "ERROR: no PostgreSQL server binaries ($(PG_INITDB))" >&2; \
	      exit 1; \
	    fi; \
	    echo "WARNING: no PostgreSQL server binaries; PostgreSQL tests cannot run" >&2; \
	  fi; \
	fi

# The shared-store tests start their own redis-server (tests/redisserver.py):
# installed as PostgreSQL is, and required in CI the same way.
redis-bin:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing redis-server with apt-get"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	  fi; \
	  if ! command -v redis-server >/dev/null 2>&1; then \
	    if [ "$$CI" = true ]; then \
	      echo "ERROR: no redis-server" >&2; \
	      exit 1; \
	    fi; \
	    echo "WARNING: no redis-server; the Redis tests cannot run" >&2; \
	  fi; \
	fi

# The account-page tests drive Debian's headless Chromium through Playwright
# (tests/api/pages; Playwright's own browser download is not used): installed as
# redis-server is, and required in CI the same way.
CHROMIUM ?= /usr/bin/chromium

chromium-bin:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing chromium with apt-get"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	  fi; \
	  if [ ! -x "$(CHROMIUM)" ]; then \
	    if [ "$$CI" = true ]; then \
	      echo "ERROR: no Chromium at $(CHROMIUM)" >&2; \
	      exit 1; \
	    fi; \
	    echo "WARNING: no Chromium at $(CHROMIUM); the browser tests cannot run" >&2; \
	  fi; \
	fi

# The deployment tests (tests/deploy) run what a deployment puts beside us, from
# Debian's packages (binary:package): installed as PostgreSQL is, required in CI.
DEPLOY_BINS := /usr/sbin/pgbouncer:pgbouncer /usr/sbin/nginx:nginx \
  /usr/bin/promtool:prometheus /usr/bin/systemd-analyze:systemd \
  /usr/bin/buildah:buildah /usr/sbin/debootstrap:debootstrap \
  /usr/bin/docker-compose:docker-compose /usr/sbin/ip:iproute2

deploy-bin:
	@missing=""; \
	for pair in $(DEPLOY_BINS); do \
	  [ -x "$${pair%%:*}" ] || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing$$missing with apt-get"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi; \
	for pair in $(DEPLOY_BINS); do \
	  if [ ! -x "$${pair%%:*}" ]; then \
	    if [ "$$CI" = true ]; then \
	      echo "ERROR: no $${pair%%:*} (package $${pair##*:})" >&2; exit 1; \
	    fi; \
	    echo "WARNING: no $${pair%%:*}; its deployment tests cannot run" >&2; \
	  fi; \
	done

test: venv postgres-bin redis-bin chromium-bin deploy-bin
	USERMGMT_TEST_CHROMIUM=$(CHROMIUM) $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# dist/: the wheelhouse the Containerfile installs (see docs/deploy.md).
wheels: venv
	deploy/wheelhouse.sh $(VENV)/bin/python dist

# The server on the default embedded SQLite database.
run: venv
	$(VENV)/bin/usermgmt serve

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
