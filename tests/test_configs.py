"""Every algo × env × network in conf/ composes and builds its module."""

from __future__ import annotations

import importlib.util

import pytest

from rlcamp.train import build
from tests.helpers.config import config_options

MUJOCO_ENVS = {
    "halfcheetah",
    "hopper",
    "walker2d",
    "swimmer",
    "reacher",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "ant",
}
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


def test_config_groups_exist():
    assert {"cartpole", "acrobot", "pendulum"} | MUJOCO_ENVS <= set(config_options("env"))
    assert {"mlp", "mlp_shared"} <= set(config_options("network"))
    assert {"csv", "tensorboard", "wandb"} <= set(config_options("logger"))
    assert {"cpu", "gpu"} <= set(config_options("trainer"))


@pytest.mark.parametrize("network", config_options("network"))
@pytest.mark.parametrize("env", config_options("env"))
@pytest.mark.parametrize("algo", config_options("algo"))
def test_combination_composes_and_builds(make_cfg, algo, env, network):
    if env in MUJOCO_ENVS and not HAS_MUJOCO:
        pytest.skip("the mujoco extra is not installed: pip install -e '.[mujoco]'")
    cfg = make_cfg(f"algo={algo}", f"env={env}", f"network={network}")
    module = build(cfg)
    assert module.env_factory.id.endswith(("-v0", "-v1", "-v5"))
    assert module.num_rollouts >= 1


def test_cartpole_default_is_the_tuned_setting(make_cfg):
    cfg = make_cfg()
    assert cfg.algo.n_steps == 32 and cfg.env.n_envs == 8 and cfg.algo.update_epochs == 10
    assert cfg.network.activation == "relu" and cfg.algo.optimizer.lr == 2e-3


def test_mujoco_family_defaults(make_cfg):
    cfg = make_cfg("env=hopper")
    assert cfg.env.n_envs == 1 and cfg.env.normalize_obs and cfg.env.normalize_reward
    assert (cfg.algo.n_steps, cfg.algo.update_epochs, cfg.algo.n_minibatches) == (2048, 10, 32)
    assert cfg.algo.optimizer.lr == 3e-4


def test_classic_control_defaults_without_tuning(make_cfg):
    cfg = make_cfg("env=acrobot")
    assert (cfg.env.n_envs, cfg.algo.n_steps, cfg.algo.update_epochs, cfg.algo.n_minibatches) == (
        4,
        128,
        4,
        4,
    )
    assert cfg.algo.optimizer.lr == 2.5e-4
