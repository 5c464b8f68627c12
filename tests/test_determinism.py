"""Same seed, same CPU machine: identical metrics (wall-clock columns aside); another seed differs."""

from __future__ import annotations

import csv

import pytest

from rlcamp.train import train

WALL_CLOCK = {"time/sps"}
RUN = [
    "total_env_steps=1024",
    "env.n_envs=4",
    "algo.n_steps=64",
    "algo.n_minibatches=4",
    "algo.update_epochs=2",
    "env.normalize_obs=true",
    "env.normalize_reward=true",
]


def metrics(path):
    with path.open(newline="") as file:
        return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in csv.DictReader(file)]


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_same_seed_gives_identical_metrics_csv(make_cfg, tmp_path, env):
    for name in ("first", "second", "other_seed"):
        seed = 2 if name == "other_seed" else 1
        train(make_cfg(f"env={env}", *RUN, f"seed={seed}", output_dir=tmp_path / name))
    first, second = metrics(tmp_path / "first/metrics.csv"), metrics(tmp_path / "second/metrics.csv")
    assert len(first) == 4
    assert first == second
    assert metrics(tmp_path / "other_seed/metrics.csv") != first
