# The two commands of the quick start. Both set up .venv on first use.
.PHONY: show test
show:
	@scripts/setup.sh
	.venv/bin/python run_show.py show $(ARGS)
test:
	@scripts/setup.sh --test
	.venv/bin/python -m pytest $(ARGS)
