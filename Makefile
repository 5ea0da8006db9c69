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
