"""``experiment=ppo_paper_mujoco``: the paper's protocol as one Hydra multirun."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from rlcamp.train import CONF_DIR, build
from rlcamp.utils.build import compose_config

PAPER_ENVS = [
    "halfcheetah",
    "hopper",
    "inverted_double_pendulum",
    "inverted_pendulum",
    "reacher",
    "swimmer",
    "walker2d",
]


def compose_experiment(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(
            "train", overrides=["experiment=ppo_paper_mujoco", *overrides], return_hydra_config=True
        )


def test_experiment_is_the_papers_multirun():
    cfg = compose_experiment()
    assert cfg.hydra.mode == RunMode.MULTIRUN
    params = cfg.hydra.sweeper.params
    assert params.algo.split(",") == ["ppo", "trpo", "a2c", "reinforce", "acktr"]
    assert params.env.split(",") == PAPER_ENVS
    assert params.seed.split(",") == ["1", "2", "3"]
    assert cfg.total_env_steps == 1_000_000 and cfg.task_name == "ppo_paper_mujoco"


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the mujoco extra")
@pytest.mark.parametrize("algo", ["ppo", "trpo", "a2c", "reinforce", "acktr"])
def test_every_job_of_the_experiment_builds(algo, tmp_path):
    """Each algo of the sweep on Hopper, with the paper's budget; PPO carries Table 3's settings."""
    cfg = compose_config(["experiment=ppo_paper_mujoco", f"algo={algo}", "env=hopper"], tmp_path)  # a job's
    module = build(cfg)
    assert module.hparams.total_env_steps == 1_000_000
    if algo == "ppo":
        hp = module.hparams
        assert (hp.n_steps, hp.update_epochs, hp.n_steps // hp.n_minibatches, hp.gamma, hp.gae_lambda) == (
            2048,
            10,
            64,
            0.99,
            0.95,
        )
        assert module.optimizer_factory.keywords["lr"] == 3e-4


def test_the_atari_experiment_is_table_6s_multirun(tmp_path):
    """``experiment=ppo_paper_atari``: PPO, A2C and ACKTR on Table 6's games that CleanRL also
    reports, 10M env steps, 3 seeds; every job composes to the Atari family."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=ppo_paper_atari"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert cfg.hydra.mode == RunMode.MULTIRUN and cfg.total_env_steps == 10_000_000
    assert params.algo.split(",") == ["ppo", "a2c", "acktr"]
    assert params.env.split(",") == ["beam_rider", "breakout", "pong", "qbert", "seaquest", "space_invaders"]
    assert params.seed.split(",") == ["1", "2", "3"]
    for algo in params.algo.split(","):
        job = compose_config([f"algo={algo}", "env=breakout", "experiment=ppo_paper_atari"], tmp_path)
        assert job.env._target_ == "rlcamp.envs.atari.AtariEnvFactory"
        assert job.total_env_steps == 10_000_000
