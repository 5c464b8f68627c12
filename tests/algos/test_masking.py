"""Invalid-action masking in training: every on-policy algorithm samples valid actions only, the
rollout keeps the mask each action was sampled under, and masking speeds learning where most
actions are invalid (``docs/algorithms.md``, "Masking")."""

from __future__ import annotations

import pytest

from rlcamp.algos.bias_variance import check_study_spaces
from rlcamp.errors import ConfigError
from rlcamp.train import train
from tests.helpers.config import compose_train
from tests.helpers.learning import LearningClaim

SHORT = ("env.n_envs=2", "debug=default", "total_env_steps=2048")
STEP_ENV = ("env.id=tests.helpers.envs:MaskStepEnv", *SHORT)


@pytest.mark.parametrize("algo", ["ppo", "ppo_kl", "a2c", "reinforce", "npg", "trpo", "acktr"])
def test_every_on_policy_algorithm_trains_on_valid_actions_only(algo, tmp_path):
    """``MaskStepEnv`` raises on an invalid action (one valid of 4 each step), so a finished run
    sampled none; the mask comes from an observation key."""
    overrides = [*STEP_ENV, f"algo={algo}", "+env.kwargs.dict_obs=true", "env.action_mask=obs:action_mask"]
    summary, module = train(compose_train(overrides, tmp_path))
    assert summary["ep_return_mean"] == 28.0 and module.policy.action_mask_key == "action_mask"


def test_a_multidiscrete_mask_from_info_masks_each_component(tmp_path):
    """``MultiMaskStepEnv`` raises unless each of its 2 components takes its one valid value."""
    overrides = ["env.id=tests.helpers.envs:MultiMaskStepEnv", *SHORT, "env.action_mask=info:action_mask"]
    summary, _ = train(compose_train(overrides, tmp_path))
    assert summary["ep_return_mean"] == 28.0


def test_the_q_actor_critic_refuses_a_mask(tmp_path):
    overrides = [*STEP_ENV, "algo=actor_critic", "env.action_mask=info:action_mask"]
    with pytest.raises(ConfigError, match="takes no action mask; use algo=a2c or algo=ppo"):
        train(compose_train(overrides, tmp_path))


def test_the_variance_study_refuses_a_mask():
    from gymnasium.spaces import Box, Discrete

    with pytest.raises(ValueError, match="takes no action mask.*set env.action_mask=null"):
        check_study_spaces(Box(-1, 1, (2,)), Discrete(2), "info:action_mask")


PICK = ("algo=ppo", "env.id=tests.helpers.envs:MaskedPickEnv", "total_env_steps=4096")
PPO_MASKED = LearningClaim(
    overrides=(*PICK, "env.action_mask=info:action_mask"), threshold=5.0, seeds=(201, 202), min_passing=1
)
# the same run without the mask, for the comparison in docs/algorithms.md ("Masking")
PPO_UNMASKED = LearningClaim(overrides=PICK, threshold=5.0, seeds=(201, 202), min_passing=1)


@pytest.mark.slow
def test_masked_ppo_learns_to_pick_among_the_valid_actions(tmp_path):
    """PPO with the CartPole tuning (8 envs x 32 steps, 10 epochs, Adam 2e-3) on ``MaskedPickEnv``
    (16 actions, 3 valid a step, the one shown pays 1, an invalid one ends the episode; 8 steps:
    perfect 8, uniform over the valid 2.67) with the mask from ``info`` within 4096 env steps: at
    least 1 of 2 seeds reach a 20-episode mean return >= 5.0.

    At the end of the budget, seeds 101-112 (sorted): 6.10, 6.25, 6.25, 6.35, 6.35, 6.35, 6.55, 6.65,
    6.70, 6.70, 6.75, 6.75 — 12 of 12 >= 5.0. P(fewer than 1 of 2 pass) <= 0.95%
    (``tests.helpers.learning.failure_probability``). Unmasked (``PPO_UNMASKED``), seeds 101-110:
    1.00, 1.15, 1.45, 1.55, 1.60, 1.80, 1.95, 1.95, 2.65, 2.80 — 0 of 10 >= 5.0.
    """
    PPO_MASKED.check(tmp_path)
