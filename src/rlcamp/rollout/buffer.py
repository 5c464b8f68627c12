"""The tensors of one rollout, ``[T, N, ...]``, and the flat batch the update reads."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Rollout:
    """What the collector recorded: ``T`` steps of ``N`` envs.

    ``obs`` are network inputs (normalized when observation normalization is on).
    ``final_obs[k]`` is the last observation of an episode cut by a time limit at
    ``(t, env) = final_index[k]``; its value is bootstrapped into ``rewards[t, env]``.
    """

    obs: torch.Tensor  # [T, N, obs_dim]
    actions: torch.Tensor  # [T, N] (Discrete) or [T, N, act_dim] (Box)
    rewards: torch.Tensor  # [T, N], scaled when reward scaling is on
    dones: torch.Tensor  # [T, N] float, 1 where the episode ended (terminated or truncated)
    next_obs: torch.Tensor  # [N, obs_dim], s_T
    final_obs: torch.Tensor  # [K, obs_dim]
    final_index: torch.Tensor  # [K, 2] long: (t, env) of each truncation

    @property
    def n_steps(self) -> int:
        return self.obs.shape[0]

    @property
    def n_envs(self) -> int:
        return self.obs.shape[1]

    @property
    def flat_obs(self) -> torch.Tensor:
        """``obs`` as ``[T·N, obs_dim]``, time-major (row ``t·N + env``), as ``Batch`` stores it."""
        return self.obs.reshape(self.n_steps * self.n_envs, -1)

    @property
    def flat_actions(self) -> torch.Tensor:
        """``actions`` as ``[T·N, ...]``, in the row order of ``flat_obs``."""
        return self.actions.reshape(self.n_steps * self.n_envs, *self.actions.shape[2:])


@dataclass
class Batch:
    """Flat ``[B, ...]`` training data; the update's minibatches are row subsets of it."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return self.obs.shape[0]

    def index(self, idx: torch.Tensor) -> Batch:
        """Rows ``idx`` of every field (one gather per field)."""
        return Batch(*(getattr(self, f.name)[idx] for f in fields(self)))

    def split(self, n_chunks: int) -> list[Batch]:
        """``n_chunks`` consecutive equal slices (views, no copy)."""
        columns = [getattr(self, f.name).chunk(n_chunks) for f in fields(self)]
        return [Batch(*parts) for parts in zip(*columns, strict=True)]
