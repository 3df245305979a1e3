# Two entry points: `make demo` and `make test`. Both build .venv from scratch when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_STRUCTURE := examples/LaH10_Fm-3m_170GPa.cif
DEMO_OUT := demo-output

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) -e ".[dev]"
	touch $@

demo: $(VENV)/.runtime
	mkdir -p $(DEMO_OUT)
	$(BIN)/elfkit info $(DEMO_STRUCTURE)
	$(BIN)/elfkit sad $(DEMO_STRUCTURE) -o $(DEMO_OUT)/LaH10_sad.cube
	$(BIN)/elfkit sad $(DEMO_STRUCTURE) -o $(DEMO_OUT)/LaH10_sad.xsf
	@echo "Demo outputs: $(abspath $(DEMO_OUT))/LaH10_sad.cube and LaH10_sad.xsf (open them in VESTA)"

test: $(VENV)/.dev
	$(BIN)/python -m pytest -n 2 --durations=15

clean:
	rm -rf $(VENV) $(DEMO_OUT)
