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

# -- screenshots for the README: every console screen and shopper page at 1280x800
# and 390x844 into docs/screenshots/ (its own embedded stack; SCREENSHOTS_OUT=dir
# to write elsewhere) -------------------------------------------------------------
.PHONY: screenshots
SCREENSHOTS_OUT ?= docs/screenshots

screenshots: bootstrap
	.venv/bin/python scripts/screenshots.py --out $(SCREENSHOTS_OUT)
