# sdbench: the two README commands.
#   make bench   set up .venv and run `sdbench run` on the embedded default suite
#   make test    set up .venv, run ruff, then the test suite (one pytest-xdist worker per core)
#                (make test ARGS='-m "not slow"' leaves out the end-to-end runs, for a quick loop)
# On a machine without an NVIDIA GPU, torch==2.13.0 (the CPU wheel) is installed first so pip does not
# pull a multi-GB CUDA build; on GPU machines the normal dependency brings the CUDA build.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: bench test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@if ! command -v nvidia-smi >/dev/null 2>&1; then $(VENV)/bin/pip install -q torch==2.13.0; fi
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/sdbench run $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n auto --dist loadfile --durations=15 $(ARGS)

clean:
	rm -rf $(VENV) runs
