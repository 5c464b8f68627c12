"""The numpy rollout actor computes exactly the torch policy's input normalization and sampling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

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
        expected_obs = policy.preprocess(torch.from_numpy(raw))
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


class LayerNormActor(ActorCritic):
    """A body the numpy mirror does not have: a ``LayerNorm`` after the first layer, ReLU activation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "activation": "relu"})
        first, *rest = list(self.actor_body)
        self.actor_body = nn.Sequential(first, nn.LayerNorm(first.out_features), *rest)
        with torch.no_grad():
            self.actor_body[1].weight.mul_(3.0)


class ScaledLogits(ActorCritic):
    """A subclass that changes ``actor_params`` and nothing the numpy actor reads."""

    def actor_params(self, obs: torch.Tensor) -> torch.Tensor:
        return 5.0 * super().actor_params(obs)


@pytest.mark.parametrize("network", [LayerNormActor, ScaledLogits])
def test_a_network_the_numpy_actor_cannot_mirror_runs_through_torch(network):
    """The network decides: a body or method the numpy copy lacks gets the torch actor, whose actions
    are the trained policy's; a numpy copy of its Linear layers alone would act differently."""
    torch.manual_seed(0)
    policy = network(gym.spaces.Box(-5, 5, (6,), np.float32), gym.spaces.Discrete(4))
    assert policy.numpy_actor() is None
    actor = rollout_actor(policy)
    assert not isinstance(actor, NumpyActor)
    raw = np.random.default_rng(1).normal(size=(256, 6)).astype(np.float32) * 3
    noise = policy.noise((256,))
    with torch.no_grad():
        expected = policy.sample(policy.preprocess(torch.from_numpy(raw)), noise).numpy()
    np.testing.assert_array_equal(actor(raw, noise.numpy())[1], expected)
    # what routing by activation name used to run for this policy: its Linear layers alone
    linears = [(m.weight, m.bias) for m in policy.actor_body if isinstance(m, nn.Linear)]
    mirror = NumpyActor(linears, (policy.head.linear.weight, policy.head.linear.bias), policy.activation)
    assert (mirror(raw, noise.numpy())[1] != expected).any()
