"""The actor's per-step forward pass for the rollout, in numpy.

At a batch of a few observations, each torch op costs a few µs of dispatch and the numpy
equivalent about one, so the collector runs the actor through a numpy snapshot of the current
parameters (zero-copy views on CPU; one copy per rollout from a GPU). It computes exactly
``ActorCritic.preprocess`` and ``ActorCritic.sample`` (``tests/nn/test_rollout_actor.py``);
values and log-probs are still computed by the torch policy, in one batched pass afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlcamp.nn.recurrent import Sequences
from rlcamp.tree import tree_map

if TYPE_CHECKING:
    from rlcamp.nn.actor_critic import ActorCritic

NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}

Tensors = tuple[torch.Tensor, torch.Tensor]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


class NumpyActor:
    """``(raw_obs, noise) → (network input, action)`` with the parameters it was given at creation.

    ``layers``: the actor body's ``(weight, bias)`` pairs, each followed by ``activation``; ``head``:
    the head's ``(weight, bias)``; ``log_std``: a Gaussian head's (None: Categorical, Gumbel-max);
    ``normalizer``: ``(scale, bias, clip)`` of the observation normalization, or None. Built by
    ``ActorCritic.numpy_actor``, the network's own claim that this is its actor. Valid while the
    parameters do not change, i.e. for one rollout.
    """

    def __init__(
        self,
        layers: list[Tensors],
        head: Tensors,
        activation: str,
        log_std: torch.Tensor | None = None,
        normalizer: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    ) -> None:
        self.activation = NUMPY_ACTIVATIONS[activation]
        self.layers = [(_numpy(weight).T, _numpy(bias)) for weight, bias in layers]
        self.head_weight, self.head_bias = _numpy(head[0]).T, _numpy(head[1])
        self.discrete = log_std is None
        self.std = None if log_std is None else np.exp(_numpy(log_std))
        self.norm = (
            None if normalizer is None else (_numpy(normalizer[0]), _numpy(normalizer[1]), normalizer[2])
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
    """The policy's numpy actor on the CPU where it offers one (``ActorCritic.numpy_actor``) and
    ``policy.act_on_device`` is off, else the torch policy on its own device behind the same call
    (observations and network inputs a dict of arrays for a ``Dict`` space)."""
    actor = None if policy.act_on_device else policy.numpy_actor()
    if actor is not None:
        return actor
    device = next(policy.parameters()).device

    def torch_actor(raw_obs: Any, noise: np.ndarray) -> tuple[Any, np.ndarray]:
        obs = policy.preprocess(tree_map(lambda leaf: torch.from_numpy(leaf).to(device), raw_obs))
        action = policy.sample(obs, torch.from_numpy(noise).to(device))
        return tree_map(_numpy, obs), _numpy(action)

    return torch_actor


def recurrent_actor(
    policy: ActorCritic,
) -> Callable[[Any, np.ndarray, torch.Tensor, np.ndarray], tuple[Any, np.ndarray, torch.Tensor]]:
    """A recurrent policy's rollout step, in torch on its own device (no numpy mirror):
    ``(raw_obs, noise, state, starts) -> (network inputs, actions, state after the step)``, the state
    a ``[N, S]`` tensor that stays on the device and is reset where ``starts`` (``[N]``) is 1."""
    device = next(policy.parameters()).device

    def step(
        raw_obs: Any, noise: np.ndarray, state: torch.Tensor, starts: np.ndarray
    ) -> tuple[Any, np.ndarray, torch.Tensor]:
        obs = policy.preprocess(tree_map(lambda leaf: torch.from_numpy(leaf).to(device), raw_obs))
        memory = Sequences.one_step(state, torch.from_numpy(starts).to(device))
        action, state = policy.step(obs, memory, torch.from_numpy(noise).to(device))
        return tree_map(_numpy, obs), _numpy(action), state

    return step
