.PHONY: bootstrap run test lint format

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	.venv/bin/carnival up

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -q --durations=15

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: bootstrap
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

# -- load tests: Locust in its own venv (its gevent patching breaks ray in-process) --------
# make locust                                    .venv-locust, redone when the pin changes
# make load SCENARIO=mixed USERS=50 SPAWN_RATE=10 TIME=60s [HOST=http://127.0.0.1:8000]
# make soak [USERS=1000 SPAWN_RATE=50 TIME=10m] [HOST=...]   (default: its own embedded stack)
.PHONY: locust load soak
SCENARIO ?= mixed
USERS ?=
SPAWN_RATE ?=
TIME ?=
HOST ?=
LOAD_ARGS = $(if $(USERS),--users $(USERS)) $(if $(SPAWN_RATE),--spawn-rate $(SPAWN_RATE)) \
	$(if $(TIME),--time $(TIME)) $(if $(HOST),--host $(HOST))

locust: .venv-locust/.requirements.sha256

.venv-locust/.requirements.sha256: loadtests/requirements.txt
	@test -x .venv-locust/bin/python || python3 -m venv .venv-locust
	@echo '*' > .venv-locust/.gitignore  # git ignores the venv without a line in .gitignore
	.venv-locust/bin/python -m pip install -q -r loadtests/requirements.txt
	@sha256sum loadtests/requirements.txt | cut -d' ' -f1 > $@

load: bootstrap locust
	.venv/bin/carnival load $(SCENARIO) $(LOAD_ARGS)

soak: bootstrap locust
	.venv/bin/carnival soak $(LOAD_ARGS)

# -- screenshots for the README: every console screen and shopper page at 1280x800
# and 390x844 into docs/screenshots/ (its own embedded stack; SCREENSHOTS_OUT=dir
# to write elsewhere) -------------------------------------------------------------
.PHONY: screenshots
SCREENSHOTS_OUT ?= docs/screenshots

screenshots: bootstrap
	.venv/bin/python scripts/screenshots.py --out $(SCREENSHOTS_OUT)
