# Quickstart: `make run` (train the default GAN), `make test` (the test suite). Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One PyTorch thread per process unless the caller says otherwise (docs/configuration.md, "Threads").
export OMP_NUM_THREADS ?= 1
# Test processes side by side (pytest-xdist), one per usable core (nproc would read OMP_NUM_THREADS as the count);
# each steals work from the others when done.
TEST_WORKERS ?= $(shell env -u OMP_NUM_THREADS nproc 2>/dev/null || echo 2)
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

.PHONY: install data run test test-quick test-slow test-slurm test-all lint format clean

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
	@echo "The commands of README.md run in the project's environment: source $(VENV)/bin/activate (once per shell)"

# The default suite: everything but the long end-to-end runs and the SLURM cluster.
test: data
	$(PYTEST) -m "not slow and not slurm" $(PYTEST_ARGS)

# For editing: the unit tests, which train no run and start no process.
test-quick: install
	$(PY) -m pytest -n $(TEST_WORKERS) -q -m "not slow and not slurm and not run" $(PYTEST_ARGS)

test-slow: data
	$(PYTEST) -m "slow" $(PYTEST_ARGS)

# Jobs on a local single-node SLURM cluster (scripts/slurm/local-cluster.sh; installs SLURM with apt as root).
test-slurm: install
	$(PY) -m pytest -m "slurm" --durations=15 $(PYTEST_ARGS)

test-all: data
	$(PYTEST) -m "not slurm" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check gan_lightning tests scripts experiments
	$(VENV)/bin/ruff format --check gan_lightning tests scripts experiments

format: install
	$(VENV)/bin/ruff format gan_lightning tests scripts experiments
	$(VENV)/bin/ruff check --fix gan_lightning tests scripts experiments

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
