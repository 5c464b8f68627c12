"""``Q_φ(s, a)``, the action-value network of the lecture's actor-critic."""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from rlcamp.nn.mlp import mlp, mlp_forward, orthogonal_init


class QCritic(nn.Module):
    """``Q_φ(s, a)``: Discrete, an MLP of ``s`` with one output per action; Box, an MLP of ``[s, a]``."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int],
        activation: str,
    ) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        obs_dim = int(math.prod(observation_space.shape))
        in_features = obs_dim if self.discrete else obs_dim + int(math.prod(action_space.shape))
        self.body = mlp(in_features, hidden_sizes, activation)
        features = hidden_sizes[-1] if hidden_sizes else in_features
        self.out = orthogonal_init(nn.Linear(features, int(action_space.n) if self.discrete else 1), 1.0)

    def all_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """``[..., n_actions]``: ``Q_φ(s, a)`` for every action (Discrete only)."""
        return self.out(mlp_forward(self.body, obs))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return self.all_actions(obs).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return self.out(mlp_forward(self.body, torch.cat([obs, actions], dim=-1))).squeeze(-1)
