# The workbook and grader. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAB ?= 01
WORKSHOP ?= workshop

.PHONY: help setup venv engine engine-stop compat images wheels torch browser services vm-kit doctor lab chapter labs grade check test test-unit lint bench workshop-pack workshop-load workshop-unload clean

help: ## Show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_%-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --requirement requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
	$(PY) -m pip install --quiet --no-deps --editable . 2> >(grep -v "is ignored: it is neither" >&2)
	@touch $@

venv: $(STAMP) ## Create .venv with the pinned Python dependencies

engine: venv ## Use the running engine, or start a current one (root on Debian/Ubuntu; ENGINE=legacy: Debian 12's 20.10); buildx and Compose plugins
	@bash docker/engine.sh

engine-stop: ## Stop an engine that `make engine` started (never Docker Desktop or a system service)
	@bash docker/engine.sh stop

compat: setup ## Compatibility pass: grade every reference solution on Debian 12's docker.io 20.10, then back to the current engine
	@PY=$(PY) bash docker/compat.sh

images: engine ## Pull every base image the labs need, or build local stand-ins when no registry answers
	@$(PY) -m grader images

wheels: venv ## Put torch's CPU wheel into lab 07's wheels/ (linked from pip's find-links, else downloaded once)
	@PYTHON=$(PY) bash docker/torch-wheel.sh

torch: wheels ## The CPU build of torch in .venv, from that wheel (chapter 8 benchmarks it as a plain process)
	@$(PY) -m pip install --quiet --find-links solutions/07-pytorch-service/wheels torch==2.13.0+cpu 2> >(grep -v "is ignored: it is neither" >&2)

browser: ## Headless Chromium for the class-report test (installs Debian's chromium as root)
	@bash docker/chromium.sh

services: ## Redis and PostgreSQL from Debian packages, for grading workers and their tests (as root; services left stopped)
	@bash docker/services.sh

vm-kit: ## Optional: QEMU, busybox and a kernel in .cache/vm for chapter 1's VM boot (installs as root on Debian)
	@bash docker/vm-kit.sh || echo "[vm-kit] optional: chapter 1 skips its VM boot without it"

setup: images torch browser vm-kit services ## Everything a fresh machine needs: venv, engine, Compose, base images, torch, browser, Redis/PostgreSQL, VM kit

doctor: venv ## Say what is ready (engine, Compose, BuildKit, base images, GPU, disk) and how to fix the rest
	@$(PY) -m grader doctor

lab: setup ## Open the workbook in JupyterLab (start with notebooks/00-setup-check.ipynb)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --notebook-dir=notebooks 00-setup-check.ipynb

chapter: setup ## Run one chapter headless with papermill, keeping the executed notebook and its plots: make chapter CH=03 [QUICK=1]
	@$(PY) -m workbook.run_chapter "$(CH)" $(if $(filter 1,$(QUICK)),--quick)

grade: setup ## Main job: grade every lab's reference solution and print the score table
	@$(PY) -m grader solutions

labs: venv ## Regenerate every lab's starter (labs/) from its reference solution (solutions/)
	@$(PY) -m grader starters

check: setup ## Grade your own lab: make check LAB=01
	@$(PY) -m grader check labs/$(LAB)-*/

check-%: setup ## Grade one lab folder: make check-01
	@$(PY) -m grader check labs/$*-*/

test: setup ## Run the whole test suite: unit tests, real-engine tests, every notebook (quick mode) under nbval
	@# Two runs, both always: the tests that only grade (marked side_by_side) two at a time, then the rest one
	@# by one (they clean up every session, swap base images, or time things). Fails if either failed.
	@status=0; \
	WORKBOOK_QUICK=1 $(PY) -m pytest -m side_by_side -n 2 --durations=15 || status=$$?; \
	WORKBOOK_QUICK=1 $(PY) -m pytest -m "not side_by_side" --durations=30 || status=$$?; \
	exit $$status

test-unit: venv ## Run only the tests that need no engine
	$(PY) -m pytest -m "not engine"

lint: venv ## Lint the Python code (ruff) and every Dockerfile (hadolint)
	$(VENV)/bin/ruff check grader workbook tests benchmarks notebooks
	$(VENV)/bin/hadolint --failure-threshold warning $(shell find solutions -name 'Dockerfile*' | sort)

bench: setup ## Benchmarks: BuildKit vs the legacy builder, grade vs regrade, start-up vs plain process, a class with 2 jobs vs 1, hostile submissions
	$(PY) benchmarks/bench_builders.py
	$(PY) benchmarks/bench_grader.py
	$(PY) benchmarks/bench_batch.py
	$(PY) benchmarks/bench_hostile.py

workshop-pack: images wheels ## Write every image and Python package the labs need into $(WORKSHOP)/ (for a room with no network)
	@$(PY) -m grader workshop pack $(WORKSHOP)

workshop-load: engine ## On a learner's machine: load $(WORKSHOP)/; every lab then builds and grades with no network
	@$(PY) -m grader workshop load $(WORKSHOP)

workshop-unload: venv ## Stop the workshop's wheelhouse and put the original base images back
	@$(PY) -m grader workshop unload $(WORKSHOP)

clean: ## Remove what the grader left on the engine, its build cache, and reports
	-@test -x $(PY) && $(PY) -m grader clean --cache
	rm -rf reports .pytest_cache
