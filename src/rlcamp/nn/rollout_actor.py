"""The actor's per-step forward pass for the rollout, in numpy.

At a batch of a few observations, each torch op costs a few µs of dispatch and the numpy
equivalent about one, so the collector runs the actor through a numpy snapshot of the current
parameters (zero-copy views on CPU; one copy per rollout from a GPU). It computes exactly
``ActorCritic.normalize_obs`` and ``ActorCritic.sample`` (``tests/nn/test_rollout_actor.py``);
values and log-probs are still computed by the torch policy, in one batched pass afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.heads import CategoricalHead

NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


class NumpyActor:
    """``(raw_obs, noise) → (network input, action)`` with the policy's parameters at creation.

    Valid while the parameters do not change, i.e. for one rollout.
    """

    def __init__(self, policy: ActorCritic) -> None:
        self.activation = NUMPY_ACTIVATIONS[policy.activation]
        self.layers = [
            (_numpy(m.weight).T, _numpy(m.bias)) for m in policy.actor_body if isinstance(m, nn.Linear)
        ]
        self.head_weight, self.head_bias = (
            _numpy(policy.head.linear.weight).T,
            _numpy(policy.head.linear.bias),
        )
        self.discrete = isinstance(policy.head, CategoricalHead)
        self.std = None if self.discrete else np.exp(_numpy(policy.head.log_std))
        normalizer = policy.obs_normalizer
        self.norm = (
            None
            if normalizer is None
            else (_numpy(normalizer.scale), _numpy(normalizer.bias), normalizer.clip)
        )

    def __call__(self, raw_obs: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = raw_obs.reshape(raw_obs.shape[0], -1)
        if self.norm is not None:
            scale, bias, clip = self.norm
            x = np.clip(x * scale + bias, -clip, clip)
        h = x
        for weight, bias in self.layers:
            h = self.activation(h @ weight + bias)
        params = h @ self.head_weight + self.head_bias
        action = np.argmax(params + noise, axis=-1) if self.discrete else params + self.std * noise
        return x, action


def rollout_actor(policy: ActorCritic) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A numpy actor on the CPU when the activation has a numpy form (and ``policy.act_on_device`` is
    off), else the torch policy on its own device behind the same call."""
    if policy.activation in NUMPY_ACTIVATIONS and not policy.act_on_device:
        return NumpyActor(policy)
    device = next(policy.parameters()).device

    def torch_actor(raw_obs: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs = policy.normalize_obs(torch.from_numpy(raw_obs).to(device))
        action = policy.sample(obs, torch.from_numpy(noise).to(device))
        return _numpy(obs), _numpy(action)

    return torch_actor
