"""The worked example of docs/extending.md: a new env, a new algorithm, run through rlcamp."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcamp.algos.base import Metrics, OnPolicyAlgorithm
from rlcamp.algos.losses import value_loss
from rlcamp.errors import require
from rlcamp.rollout.buffer import Batch


class Corridor(gym.Env):
    """Walk right along ``length`` cells: reward +1 and ``terminated`` at the end, -0.01 a step.

    Observation: the position scaled to [0, 1]. Actions: 0 = left, 1 = right. A time limit
    (``env.max_episode_steps``) ends long episodes with ``truncated`` instead.
    """

    def __init__(self, length: int = 8) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.position = max(self.position + (1 if action == 1 else -1), 0)
        terminated = self.position >= self.length
        reward = 1.0 if terminated else -0.01
        return np.array([self.position / self.length], dtype=np.float32), reward, terminated, False, {}


class AdvantageWeightedPG(OnPolicyAlgorithm):
    """``-E[log π(a|s)·Â] + c_v·½E[(V - R)²]`` on the base's GAE advantages and minibatches.

    Args:
        vf_coef: ``c_v``.
    """

    def __init__(self, *, vf_coef: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        require(self.hparams.vf_coef > 0, f"algo.vf_coef={self.hparams.vf_coef} must be > 0")

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        log_prob, _, values = self.policy.evaluate_actions(batch.obs, batch.actions)
        policy_loss = -(log_prob * batch.advantages).mean()
        v_loss = value_loss(values, batch.values, batch.returns)
        loss = policy_loss + self.hparams.vf_coef * v_loss
        return loss, {"train/policy_loss": policy_loss.detach(), "train/value_loss": v_loss.detach()}
