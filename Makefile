# Two entry points for a fresh machine: `make demo` (install + the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps clean

# The main job on the embedded demo world: pretrain AVTS at CPU scale, evaluate it against random
# initialisation, write demo_out/report.md.
demo: install
	$(BIN)/avssl demo --out demo_out

test: install system-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

install: $(STAMP)

# torch is pinned first so that the dependency ranges in pyproject.toml never pull a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# Optional system packages the tests use: ffmpeg (torchcodec backend) and Debian's sample media.
system-deps:
	bash scripts/install_test_deps.sh

clean:
	rm -rf $(VENV) .cache demo_out
