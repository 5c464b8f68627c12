# rlcamp — `make train` and `make test` set everything up on first use (.venv, torch, the package).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# torch is installed first and pinned: on a machine without CUDA the 2.13.0 CPU build,
# so pip never pulls a multi-GB CUDA build. Elsewhere set TORCH_SPEC/TORCH_PIP_ARGS, e.g.
#   make install TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= dev,mujoco,envpool,minatar,atari,minigrid
ARGS ?=

.PHONY: help install train test test-fast bench zoo lint format clean clean-logs

help: ## show this help
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install rlcamp (skipped when pyproject.toml is unchanged)

train: install ## train PPO on CartPole-v1 to 500 (tuned; 475 reached at ~40-60k env steps); extra overrides: make train ARGS="seed=2"
	$(BIN)/rlcamp-train $(ARGS)

# the suite runs on every core (pytest-xdist, one torch thread per worker; an idle worker takes queued
# tests from a busy one, --dist worksteal); ARGS="-n 0" runs it in one process
test: install ## run the whole test suite (learning tests included)
	MUJOCO_GL=egl SDL_VIDEODRIVER=dummy WANDB_MODE=offline $(BIN)/python -m pytest -n auto --dist worksteal $(ARGS)

test-fast: install ## the tests not marked slow
	$(BIN)/python -m pytest -n auto --dist worksteal -m "not slow" $(ARGS)

# SB3 comparisons (ARGS=--sb3, scripts/peer_equivalence.py) need the bench extra:
#   make install EXTRAS=dev,mujoco,bench
bench: install ## throughput and time-to-solve benchmark (run alone: it measures wall time)
	$(BIN)/python scripts/bench.py $(ARGS)

zoo: install ## the grid of docs/zoo.md: its missing runs, then the table into logs/zoo/report/ (ARGS="--jobs 2"; ARGS="--report --docs" rewrites docs/zoo.md)
	$(BIN)/python scripts/zoo.py $(ARGS)

lint: install ## ruff check
	$(BIN)/ruff check src tests scripts

format: install ## ruff format and fix imports
	$(BIN)/ruff check --fix src tests scripts && $(BIN)/ruff format src tests scripts

clean-logs: ## delete run outputs
	rm -rf logs outputs multirun wandb lightning_logs

clean: clean-logs ## delete the venv and caches too
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
