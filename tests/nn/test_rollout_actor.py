"""The numpy rollout actor computes exactly the torch policy's input normalization and sampling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.nn import ActorCritic
from rlcamp.nn.rollout_actor import NumpyActor, rollout_actor


@pytest.mark.parametrize("activation", ["tanh", "relu", "silu", "elu", "gelu"])
@pytest.mark.parametrize(
    "action_space", [gym.spaces.Discrete(4), gym.spaces.Box(-1, 1, (3,), np.float32)], ids=["discrete", "box"]
)
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
def test_rollout_actor_matches_torch_policy(activation, action_space, normalize):
    torch.manual_seed(0)
    policy = ActorCritic(
        gym.spaces.Box(-5, 5, (6,), np.float32),
        action_space,
        activation=activation,
        normalize_obs=normalize,
        log_std_init=-0.5,
    )
    if normalize:
        policy.obs_normalizer.update(torch.randn(500, 6) * 3 + 1)
    actor = rollout_actor(policy)
    assert isinstance(actor, NumpyActor) == (activation != "gelu")
    raw = (np.random.default_rng(0).normal(size=(8, 6)) * 4).astype(np.float32)
    noise = policy.head.noise((8,))
    obs, action = actor(raw, noise.numpy())
    with torch.no_grad():
        expected_obs = policy.normalize_obs(torch.from_numpy(raw))
        expected_action = policy.sample(expected_obs, noise)
    np.testing.assert_allclose(obs, expected_obs.numpy(), rtol=1e-5, atol=1e-6)
    if isinstance(action_space, gym.spaces.Discrete):
        np.testing.assert_array_equal(action, expected_action.numpy())
    else:
        np.testing.assert_allclose(action, expected_action.numpy(), rtol=1e-4, atol=1e-5)


def test_act_on_device_runs_the_torch_policy_with_the_same_actions():
    torch.manual_seed(0)
    spaces = (gym.spaces.Box(-5, 5, (6,), np.float32), gym.spaces.Discrete(4))
    numpy_actor = rollout_actor(ActorCritic(*spaces))
    torch.manual_seed(0)
    torch_actor = rollout_actor(ActorCritic(*spaces, act_on_device=True))
    assert not isinstance(torch_actor, NumpyActor)
    raw = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
    noise = ActorCritic(*spaces).head.noise((8,)).numpy()
    np.testing.assert_array_equal(numpy_actor(raw, noise)[1], torch_actor(raw, noise)[1])
