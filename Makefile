# Two entry points: `make demo` and `make test`. Both build .venv from scratch when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_STRUCTURE := examples/LaH10_Fm-3m_170GPa.cif
DEMO_OUT := demo-output
DEMO_HYDROGEN := examples/H_Cmca-12_303GPa.vasp

# Debian packages for the DFT engines: Quantum ESPRESSO, and libxc + OpenBLAS to build GPAW.
DEBIAN_PACKAGES := quantum-espresso libxc-dev libopenblas-dev
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test bench clean debian-packages browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) -e ".[dev]"
	touch $@

debian-packages:
	@missing="$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# GPAW is built serial with Debian's libxc and OpenBLAS (scripts/gpaw_siteconfig.py).
$(VENV)/.dft: $(VENV)/.runtime | debian-packages
	GPAW_CONFIG=$(CURDIR)/scripts/gpaw_siteconfig.py CC=g++ $(PIP) -e ".[dft]"
	touch $@

demo: $(VENV)/.runtime
	mkdir -p $(DEMO_OUT)
	$(BIN)/elfkit info $(DEMO_STRUCTURE)
	$(BIN)/elfkit sad $(DEMO_STRUCTURE) -o $(DEMO_OUT)/LaH10_sad.cube
	$(BIN)/elfkit sad $(DEMO_STRUCTURE) -o $(DEMO_OUT)/LaH10_sad.xsf
	$(BIN)/elfkit predict $(DEMO_HYDROGEN) -o $(DEMO_OUT)/H_Cmca-12.ELFCAR
	$(BIN)/elfkit topology $(DEMO_OUT)/H_Cmca-12.ELFCAR
	@echo "Demo outputs in $(abspath $(DEMO_OUT)): LaH10_sad.cube, LaH10_sad.xsf and the predicted H_Cmca-12.ELFCAR (open them in VESTA)"

# Headless Chromium for the report page's browser test (tests/test_report.py skips it, saying
# why, where chromium cannot be installed).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test"; \
		($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium) \
		|| echo "chromium could not be installed: the browser test will be skipped"; }

test: $(VENV)/.dev $(VENV)/.dft browser
	$(BIN)/python -m pytest -n 2 --durations=15

# Regenerate benchmarks/RESULTS.md and benchmarks/results/bench/ from the shipped models and the
# committed datasets (issue 19; about an hour on 2 cores). BENCH_ARGS=--resume keeps finished sections.
bench: $(VENV)/.dev $(VENV)/.dft
	cd benchmarks && ../$(BIN)/python bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_OUT)
