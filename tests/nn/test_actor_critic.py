"""The network with an action mask: the mask is stored, not encoded, enters the policy in one place,
and the network that cannot take one refuses it in one line."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.errors import ConfigError, EnvError
from rlcamp.nn import ActorCritic

VECTOR = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def masked_space(n: int) -> gym.spaces.Dict:
    return gym.spaces.Dict({"x": VECTOR, "action_mask": gym.spaces.MultiBinary(n)})


@pytest.mark.parametrize(
    "action_space",
    [gym.spaces.Discrete(5), gym.spaces.MultiDiscrete([2, 3])],
    ids=["discrete", "multidiscrete"],
)
def test_the_mask_is_stored_as_bool_not_encoded_and_masks_every_policy_path(action_space):
    n = 5
    policy = ActorCritic(masked_space(n), action_space, action_mask_key="action_mask", shared=True)
    assert policy.input_dtype["action_mask"] == np.bool_ and policy.input_shape["action_mask"] == (n,)
    assert policy.actor_encoder.features_dim == 3  # the mask is no input feature
    assert policy.numpy_actor() is None  # the torch path samples the masked policy
    torch.manual_seed(0)
    raw = {"x": torch.randn(64, 3), "action_mask": torch.tensor([[1, 0, 0, 1, 1]] * 64, dtype=torch.int8)}
    obs = policy.preprocess(raw)
    assert obs["action_mask"].dtype == torch.bool
    params = policy.actor_params(obs)
    invalid = torch.finfo(params.dtype).min
    assert (params[:, 1:3] == invalid).all() and (params[:, [0, 3, 4]] > invalid).all()
    actions = policy.sample(obs, policy.noise((64,)))
    log_prob, _, _ = policy.evaluate_actions(obs, actions)
    torch.testing.assert_close(log_prob, policy.distribution(obs).log_prob(actions))
    torch.testing.assert_close(policy.actor_and_value(obs)[0].log_prob(actions), log_prob)
    if isinstance(action_space, gym.spaces.Discrete):
        assert not torch.isin(actions, torch.tensor([1, 2])).any()


@pytest.mark.parametrize(
    ("observation_space", "action_space", "message"),
    [
        (masked_space(2), gym.spaces.Box(-1.0, 1.0, (2,), np.float32), "masks Discrete or MultiDiscrete"),
        (masked_space(4), gym.spaces.MultiBinary(4), "masks Discrete or MultiDiscrete"),
        (masked_space(4), gym.spaces.Discrete(5), "one flag per action"),
        (VECTOR, gym.spaces.Discrete(3), "has no key 'action_mask'"),
    ],
)
def test_a_mask_the_network_cannot_apply_is_refused_in_one_line(observation_space, action_space, message):
    with pytest.raises((ConfigError, EnvError), match=message) as err:
        ActorCritic(observation_space, action_space, action_mask_key="action_mask")
    assert "\n" not in str(err.value)
