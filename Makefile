# README's two commands: `make verify` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Hypothesis profile: ci (derandomized, bounded) or thorough.
PROFILE ?= ci
REPORTS ?= reports
# Parallel workers for pytest-xdist (make verify JOBS=2); empty: one process.
JOBS ?=
XDIST := $(if $(JOBS),-n $(JOBS))
# torch and BLAS on one thread per process unless OMP_NUM_THREADS is set: the
# arrays are tiny, a second thread only costs (2-3x slower when the other core is
# busy), JOBS workers would oversubscribe the cores, and torch's reductions (batch
# norm) round differently with 2 threads, which would make a JOBS=2 report differ
# from a serial one in the last bits.
TEST_ENV := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}

.PHONY: install verify test bench mutate clean

install: $(STAMP)

# torch is pinned to 2.13.0, the CPU build: an unpinned torch pulls GBs of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.13.0" -e ".[test]"
	touch $(STAMP)

# The verification of every reference layer against finite differences and torch,
# and the detection suite (bugs caught, false alarms),
# with the CSV report under $(REPORTS)/ and the summary table printed.
verify: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest property_tests/reference_impls property_tests/detection -q \
		--hypothesis-profile=$(PROFILE) --gradcheck-report=$(REPORTS) --gradcheck-strict $(XDIST)

# The whole suite: the checker's own tests and the verification.
test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest property_tests -q --hypothesis-profile=$(PROFILE) $(XDIST)

# Speed and memory of conv and pooling against torch (a benchmark, not a test):
# writes $(REPORTS)/bench_layers.csv and prints the ratios. Then the checker's
# cost and accuracy against torch.autograd.gradcheck: $(REPORTS)/bench_checker.csv.
# Then the checker on plain user-style layers (no hints) against torch's gradcheck of
# the same code: its user_* rows merged into bench_checker.csv (after bench_checker,
# which rewrites that file), and $(REPORTS)/bench_users.md.
bench: $(STAMP)
	$(PY) -m benchmarks.bench_layers --out $(REPORTS)/bench_layers.csv
	$(PY) -m benchmarks.bench_checker --out $(REPORTS)/bench_checker.csv
	$(PY) -m benchmarks.bench_users --out $(REPORTS)/bench_checker.csv

# Mutation testing of the checker's core (a benchmark, not a test: not in `make test` or
# CI): mutmut mutates gradcheck/{numerical,core,metrics,selfcheck,result,diagnosis}.py one
# change at a time and runs the tests that reach the changed function ([tool.mutmut] in
# pyproject.toml), MUTATE_JOBS at a time; the mutants listed as equivalent in
# benchmarks/mutation_equivalent.txt are set apart unrun (benchmarks/mutation_run.py).
# Then benchmarks/mutation.py writes the other surviving mutants to
# $(REPORTS)/mutation.csv and prints killed, survived, equivalent, survival rate.
# Starts afresh each time (mutants/ removed: a cached verdict would outlive a new test).
# MUTANTS='gradcheck.selfcheck.*' (mutmut's names, globs) runs a subset, listed
# equivalents included; the others are counted as not checked.
MUTATE_JOBS ?= 2
MUTANTS ?=
MUTATE_STAMP := $(VENV)/.installed-mutate

$(MUTATE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet "torch==2.13.0" -e ".[test,mutate]"
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	rm -rf mutants
	$(TEST_ENV) GRADCHECK_MAX_EXAMPLES=10 $(PY) -m benchmarks.mutation_run \
		--max-children $(MUTATE_JOBS) $(MUTANTS)
	$(PY) -m benchmarks.mutation --out $(REPORTS)/mutation.csv

clean:
	rm -rf $(VENV) mutants .hypothesis .pytest_cache $(REPORTS)/*.csv $(REPORTS)/summary.md $(REPORTS)/bench_users.md $(REPORTS)/*.png
