"""MinAtar through rlcamp: registration on a plain id, uint8 channels-first frames, the family's
configs (CNN, no normalization) and a short run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcamp.envs import VecEnvFactory
from rlcamp.utils.build import build
from tests.helpers.learning import LearningClaim

pytest.importorskip("minatar", reason="needs the minatar extra (make install has it)")
from rlcamp.envs.minatar import channels_first  # noqa: E402

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]


@pytest.mark.parametrize("game", GAMES)
def test_every_game_collects_a_rollout_with_the_family_defaults(make_cfg, game):
    """Each of the paper's five games composes with the family's CNN and settings, and one rollout
    of it stores its uint8 [C, 10, 10] frames."""
    cfg = make_cfg(f"env=minatar_{game}", "env.n_envs=1")
    assert cfg.network.encoder._target_ == "rlcamp.nn.encoders.MinAtarCNN"
    assert cfg.env.id.startswith("MinAtar/") and cfg.env.id.endswith("-v1")
    assert not cfg.env.normalize_obs
    module = build(cfg)
    observation_space, _ = module.env_factory.spaces()
    assert observation_space.dtype == np.uint8 and observation_space.shape[1:] == (10, 10)
    module.setup("fit")
    batch = module.collect_rollout()
    module.teardown("fit")
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (cfg.algo.n_steps, *observation_space.shape)


def test_frames_are_channels_first_uint8_copies_of_the_game_state():
    import minatar

    factory = VecEnvFactory(id="MinAtar/Breakout-v1", n_envs=1, wrappers=[channels_first])
    env = factory.env_fn()()
    obs, _ = env.reset(seed=3)
    reference = minatar.Environment("breakout")
    reference.seed(3)
    reference.reset()
    assert obs.dtype == np.uint8 and obs.shape == (4, 10, 10)
    np.testing.assert_array_equal(obs, np.moveaxis(reference.state(), -1, 0).astype(np.uint8))
    env.close()


def test_a_rollout_on_breakout_stores_uint8_frames_and_a_short_run_completes(make_cfg):
    from rlcamp.train import train

    module = build(make_cfg("env=minatar_breakout", "env.n_envs=2"))
    module.setup("fit")
    batch = module.collect_rollout()
    module.teardown("fit")
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (2 * 128, 4, 10, 10)
    summary, _ = train(make_cfg("env=minatar_breakout", "total_env_steps=2048", "env.n_envs=2"))
    assert summary["status"] == "completed" and summary["env_steps"] == 2048


PPO_BREAKOUT = LearningClaim(
    overrides=("env=minatar_breakout", "total_env_steps=100000"),
    threshold=2.0,
    seeds=(201, 202, 203),
    min_passing=1,
)


@pytest.mark.slow
def test_ppo_learns_minatar_breakout(tmp_path):
    """PPO with the MinAtar family's settings (CleanRL's Atari PPO, the MinAtar CNN) on
    ``MinAtar/Breakout-v1`` within 100k env steps: at least 1 of 3 seeds reaches a 20-episode mean
    return >= 2.0 (a random policy: 0.45).

    At the end of the budget, seeds 101-110 (``python -m tests.helpers.learning
    tests.envs.test_minatar:PPO_BREAKOUT --seeds 101-110 --whole-budget``): 2.4, 2.5, 2.6, 2.8,
    3.0, 3.0, 3.2, 3.2, 3.2, 3.9, all 10 >= 2.0; P(none of 3 passes) <= 0.27% (``failure_probability``; 2 of 4
    seeds: 0.88%, at about twice the runs).
    """
    PPO_BREAKOUT.check(tmp_path)
