"""Running statistics for observation normalization and reward scaling.

They are ``nn.Module`` buffers, so they are saved in every checkpoint with the policy and can be
frozen at evaluation simply by not calling ``update``.
"""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance of a stream of batches (Chan et al.'s parallel update)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch ``[B, *shape]``: m = m + δ·n_b/n, M2 = M2_a + M2_b + δ²·n_a·n_b/n."""
        batch = batch.to(torch.float64)
        n_b = batch.shape[0]
        batch_mean, batch_var = batch.mean(0), batch.var(0, unbiased=False)
        delta = batch_mean - self.mean
        total = self.count + n_b
        m2 = self.var * self.count + batch_var * n_b + delta.square() * self.count * n_b / total
        self.mean += delta * n_b / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


class RunningNormalizer(nn.Module):
    """``clip((x - μ) / sqrt(σ² + ε), ±clip)`` with running μ, σ² (SB3's VecNormalize for obs)."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.rms = RunningMeanStd(shape)
        self.clip = clip
        self.epsilon = epsilon

    def update(self, x: torch.Tensor) -> None:
        self.rms.update(x.reshape(-1, *self.rms.mean.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(self.rms.var + self.epsilon).to(x.dtype)
        return torch.clamp((x - self.rms.mean.to(x.dtype)) / std, -self.clip, self.clip)


class RewardScaler(nn.Module):
    """Divide rewards by the running std of the discounted return ``G_t = γ·G_{t-1} + r_t``.

    The return accumulator is reset at episode ends; the mean is not subtracted (as in SB3's and
    gymnasium's reward normalization), so the sign of rewards is kept.
    """

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.rms = RunningMeanStd(())
        self.gamma = gamma
        self.clip = clip
        self.epsilon = epsilon
        self.register_buffer("returns", torch.zeros(n_envs, dtype=torch.float64))

    @torch.no_grad()
    def forward(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Update with this step's rewards ``[N]`` and return the scaled rewards."""
        self.returns.mul_(self.gamma).add_(reward)
        self.rms.update(self.returns)
        self.returns.masked_fill_(done, 0.0)
        scaled = reward / torch.sqrt(self.rms.var + self.epsilon)
        return torch.clamp(scaled, -self.clip, self.clip).to(reward.dtype)
