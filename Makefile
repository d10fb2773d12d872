# The two commands of the quick start. Both set up .venv on first use.
# `make test` runs the linters (ruff lint and format check, mypy over the pure core, the
# import-cycle check) and then the whole test suite; `make test ARGS=...` passes ARGS to pytest.
.PHONY: show test lint
show:
	@scripts/setup.sh
	.venv/bin/python run_show.py show $(ARGS)
test: lint
	.venv/bin/python -m pytest $(ARGS)
lint:
	@scripts/setup.sh --test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/python scripts/import_cycles.py
