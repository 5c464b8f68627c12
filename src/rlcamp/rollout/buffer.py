"""The tensors of one rollout, ``[T, N, ...]``, the flat batch the update reads, and the pure
functions between them: GAE batch assembly and minibatching (after SB3's ``RolloutBuffer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import torch

from rlcamp.rollout.advantages import gae
from rlcamp.tree import Obs, tree_chunk, tree_map, tree_rows

Evaluate = Callable[[Obs, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` along ``dim`` (advantage normalization, PPO detail #7)."""
    return (x - x.mean(dim, keepdim=True)) / (x.std(dim, keepdim=True) + eps)


@dataclass
class Rollout:
    """What the collector recorded: ``T`` steps of ``N`` envs.

    ``obs`` are network inputs in their own dtype (normalized float vectors, or uint8 images), or a
    dict of them, one per key of a ``Dict`` observation space (``rlcamp.tree``).
    ``final_obs[k]`` is the last observation of an episode cut by a time limit at
    ``(t, env) = final_index[k]``; its value is bootstrapped into ``rewards[t, env]``.
    """

    obs: Obs  # [T, N, obs_dim] float32, or [T, N, C, H, W] uint8, or a dict of such
    actions: torch.Tensor  # [T, N] (Discrete) or [T, N, act_dim] (Box)
    rewards: torch.Tensor  # [T, N], scaled when reward scaling is on
    dones: torch.Tensor  # [T, N] float, 1 where the episode ended (terminated or truncated)
    next_obs: Obs  # [N, *obs], s_T
    final_obs: Obs  # [K, *obs]
    final_index: torch.Tensor  # [K, 2] long: (t, env) of each truncation

    @property
    def n_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_envs(self) -> int:
        return self.rewards.shape[1]

    @property
    def flat_obs(self) -> Obs:
        """``obs`` as ``[T·N, *obs]``, time-major (row ``t·N + env``), as ``Batch`` stores it."""
        return tree_map(lambda obs: obs.flatten(0, 1), self.obs)

    @property
    def flat_actions(self) -> torch.Tensor:
        """``actions`` as ``[T·N, ...]``, in the row order of ``flat_obs``."""
        return self.actions.reshape(self.n_steps * self.n_envs, *self.actions.shape[2:])


@dataclass
class Batch:
    """Flat ``[B, ...]`` training data; the update's minibatches are row subsets of it (of each
    key of a dict ``obs``)."""

    obs: Obs
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return self.advantages.shape[0]

    def index(self, idx: torch.Tensor) -> Batch:
        """Rows ``idx`` of every field (one gather per field and key)."""
        return Batch(*(tree_rows(getattr(self, f.name), idx) for f in fields(self)))

    def split(self, n_chunks: int) -> list[Batch]:
        """``n_chunks`` consecutive equal slices (views, no copy)."""
        columns = [tree_chunk(getattr(self, f.name), n_chunks) for f in fields(self)]
        return [Batch(*parts) for parts in zip(*columns, strict=True)]

    def minibatches(self, epochs: int, n: int, normalize_advantage: bool) -> Iterator[Batch]:
        """``epochs`` shuffled passes of ``n`` minibatches that partition the rows of each pass.

        Each pass gathers the shuffled rows once and standardizes the advantages within each
        minibatch in one vectorized op; the minibatches are views of that gathered copy. A single
        pass of a single minibatch (``epochs = n = 1``, the full-batch methods) is the batch itself,
        unshuffled, its advantages standardized over all of it.
        """
        if epochs == 1 and n == 1:
            if normalize_advantage and len(self) > 1:
                self.advantages = normalize(self.advantages)
            yield self
            return
        for _ in range(epochs):
            shuffled = self.index(torch.randperm(len(self), device=self.advantages.device))
            if normalize_advantage and len(self) // n > 1:
                shuffled.advantages = normalize(shuffled.advantages.view(n, -1)).view(-1)
            yield from shuffled.split(n)


def bootstrap_truncations(
    rollout: Rollout, value: Callable[[Obs], torch.Tensor], gamma: float
) -> torch.Tensor:
    """Rewards with ``γ·V(s_final)`` added where a time limit cut the episode (not on termination).

    ``value`` estimates ``V(s_final)`` (the critic ``V_φ``, or QActorCritic's ``E_π Q_φ``); it is
    called only when the rollout holds a truncation.
    """
    rewards = rollout.rewards
    if len(rollout.final_index):
        rewards = rewards.clone()
        t, env = rollout.final_index.unbind(1)
        rewards[t, env] += gamma * value(rollout.final_obs)
    return rewards


def gae_batch(
    rollout: Rollout,
    evaluate: Evaluate,
    value: Callable[[Obs], torch.Tensor],
    gamma: float,
    lam: float,
) -> Batch:
    """The rollout as training data: old log-probs and values in one batched pass, GAE(λ)
    advantages and λ-returns ``A_t + V(s_t)``, time-limit truncations bootstrapped with ``γV``.

    ``evaluate(obs, actions) -> (log π(a|s), H, V(s))`` and ``value(obs) -> V(s)`` are the policy's.
    """
    T, N = rollout.n_steps, rollout.n_envs
    flat_obs, flat_actions = rollout.flat_obs, rollout.flat_actions
    log_probs, _, values = evaluate(flat_obs, flat_actions)
    values = values.reshape(T, N)
    last_value = value(rollout.next_obs)
    rewards = bootstrap_truncations(rollout, value, gamma)
    advantages = gae(rewards, values, rollout.dones, last_value, gamma, lam)
    return Batch(
        obs=flat_obs,
        actions=flat_actions,
        log_probs=log_probs,
        values=values.reshape(-1),
        advantages=advantages.reshape(-1),
        returns=(advantages + values).reshape(-1),
    )
