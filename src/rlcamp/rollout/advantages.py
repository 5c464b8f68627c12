"""Return and advantage estimators as pure functions of ``[T, N]`` tensors.

Conventions: ``rewards[t]``, ``dones[t]`` belong to the transition ``s_t → s_{t+1}``;
``dones[t] = 1`` when the episode ended at that step (terminated or truncated; a truncated step's
reward already carries the bootstrap ``γ·V(s_final)``, see ``rollout.buffer.bootstrap_truncations``);
``last_value = V(s_T)`` bootstraps the step after the rollout. Vectorized over the ``N`` envs,
a loop over time.
"""

from __future__ import annotations

import torch


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Reward-to-go ``R_t = r_t + γ(1 - d_t) R_{t+1}`` with ``R_T = V(s_T)``.

    With ``last_value = 0`` and complete episodes this is the Monte-Carlo return
    ``R_t = Σ_k γ^k r_{t+k}`` of REINFORCE.
    """
    returns = torch.empty_like(rewards)
    next_return = last_value
    not_done = 1.0 - dones.to(rewards.dtype)
    for t in reversed(range(rewards.shape[0])):
        next_return = rewards[t] + gamma * not_done[t] * next_return
        returns[t] = next_return
    return returns


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16), by its recursion.

    ``δ_t = r_t + γ(1 - d_t) V(s_{t+1}) - V(s_t)``,  ``A_t = δ_t + γλ(1 - d_t) A_{t+1}``,
    i.e. ``A_t = Σ_l (γλ)^l δ_{t+l}`` within an episode. ``λ = 0`` gives the one-step TD error,
    ``λ = 1`` the Monte-Carlo (or n-step bootstrapped) return minus ``V(s_t)``.
    The λ-return used as the value target is ``A_t + V(s_t)``.
    """
    advantages = torch.empty_like(rewards)
    not_done = 1.0 - dones.to(rewards.dtype)
    next_values = torch.cat([values[1:], last_value.unsqueeze(0)], dim=0)
    deltas = rewards + gamma * not_done * next_values - values
    decay = gamma * lam * not_done
    next_advantage = torch.zeros_like(last_value)
    for t in reversed(range(rewards.shape[0])):
        next_advantage = deltas[t] + decay[t] * next_advantage
        advantages[t] = next_advantage
    return advantages
