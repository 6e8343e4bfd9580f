# One-command entry points; see README "Quick start".
PYTHON ?= python3
VENV ?= .venv
# torch/torchvision are pinned to the builds this project is tested with; override to use others.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin

.PHONY: install demo test figures

$(BIN)/benchmark: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/benchmark

install: $(BIN)/benchmark

demo: install
	$(BIN)/benchmark run --suite parts

test: install
	$(BIN)/python -m pytest tests

figures: install
	$(BIN)/benchmark toy --split test --n 16 --out build/toy-test-16 --grid docs/toy_grid.png
