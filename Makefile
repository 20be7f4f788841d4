# The two README commands: `make demo` (the main job on a built-in default) and `make test`.
# Each creates .venv and installs the package with its extras on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test compare bench setup clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[torch,dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m renyi_cert_torch.demo

compare: $(STAMP)
	$(PY) -m renyi_cert.compare_pixeldp

# Type check first (the files and settings are in pyproject's [tool.mypy]; a type error fails the
# target before the tests run), then the tests.
test: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_radius.py

clean:
	rm -rf $(VENV) build *.egg-info
