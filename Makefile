# Quickstart: `make run` (train the default GAN), `make test` (the test suite). Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One PyTorch thread per process unless the caller says otherwise (docs/configuration.md, "Threads").
export OMP_NUM_THREADS ?= 1

.PHONY: install data run test test-slow test-slurm test-all clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST for the default run and the tests: a local copy, Debian's package (as root), or a download.
data: install
	$(PY) -m gan_lightning.data dataset=fashion_mnist

run: data
	$(PY) -m gan_lightning.run $(ARGS)

test: data
	$(PY) -m pytest -m "not slow and not slurm" $(PYTEST_ARGS)

test-slow: data
	$(PY) -m pytest -m "slow" $(PYTEST_ARGS)

# Jobs on a local single-node SLURM cluster (scripts/slurm/local-cluster.sh; installs SLURM with apt as root).
test-slurm: install
	$(PY) -m pytest -m "slurm" $(PYTEST_ARGS)

test-all: data
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
