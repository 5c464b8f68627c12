"""Running statistics for observation normalization and reward scaling.

They are ``nn.Module`` buffers, so they are saved in every checkpoint with the policy and can be
frozen at evaluation simply by not calling ``update``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance of a stream of batches (Chan et al.'s parallel update).

    With several ranks, ``gather`` (set by the algorithm: Lightning's ``strategy.all_gather``)
    stacks every rank's batch moments and each rank merges them all in rank order, so the
    statistics are those of all ranks' batches together and the same on every rank.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))
        self.gather: Callable[[torch.Tensor], torch.Tensor] | None = None

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch ``[B, *shape]`` (every rank's batch when ``gather`` is set)."""
        batch = batch.to(torch.float64)
        batch_mean, batch_var = batch.mean(0), batch.var(0, unbiased=False)
        if self.gather is None:
            self.merge(batch.shape[0], batch_mean, batch_var)
            return
        n_b = torch.full_like(batch_mean, float(batch.shape[0]))
        for n, mean, var in self.gather(torch.stack([n_b, batch_mean, batch_var])):
            self.merge(n.reshape(-1)[0], mean, var)

    def merge(self, n_b: int | torch.Tensor, batch_mean: torch.Tensor, batch_var: torch.Tensor) -> None:
        """m = m + δ·n_b/n, M2 = M2_a + M2_b + δ²·n_a·n_b/n with δ = m_b - m_a, n = n_a + n_b."""
        delta = batch_mean - self.mean
        total = self.count + n_b
        m2 = self.var * self.count + batch_var * n_b + delta.square() * self.count * n_b / total
        self.mean += delta * n_b / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


class RunningNormalizer(nn.Module):
    """``clip((x - μ) / sqrt(σ² + ε), ±clip)`` with running μ, σ² of the raw observations.

    The rollout collector calls ``update`` once per rollout with all of its raw observations, so
    every step of a rollout is normalized with the same statistics (and the stored network inputs
    are exactly what the acting policy saw).
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.rms = RunningMeanStd(shape)
        self.clip = clip
        self.epsilon = epsilon
        # float32 affine form x·s + b of the normalization, derived from the statistics
        self.register_buffer("scale", torch.ones(shape), persistent=False)
        self.register_buffer("bias", torch.zeros(shape), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _: module._refresh())

    def _refresh(self) -> None:
        """``s = 1 / sqrt(σ² + ε)``, ``b = -μ·s``, so that ``(x - μ) / sqrt(σ² + ε) = x·s + b``."""
        inv_std = torch.rsqrt(self.rms.var + self.epsilon)
        self.scale.copy_(inv_std)
        self.bias.copy_(-self.rms.mean * inv_std)

    def update(self, x: torch.Tensor) -> None:
        self.rms.update(x.reshape(-1, *self.rms.mean.shape))
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.addcmul(self.bias, x, self.scale), -self.clip, self.clip)


class RewardScaler(nn.Module):
    """``clip(r_t / sqrt(Var[G] + ε), ±clip)`` with ``G_t = γ·G_{t-1} + r_t`` (reset at episode ends).

    The mean is not subtracted (as in SB3's and gymnasium's reward normalization), so the sign of
    rewards is kept. The collector accumulates ``G`` per step; ``forward`` takes a whole rollout's
    rewards and returns, merges the returns into the running variance, then scales the rewards.
    """

    def __init__(self, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.rms = RunningMeanStd(())
        self.gamma = gamma
        self.clip = clip
        self.epsilon = epsilon

    @torch.no_grad()
    def forward(self, rewards: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
        self.rms.update(returns.reshape(-1))
        scaled = rewards / torch.sqrt(self.rms.var + self.epsilon)
        return torch.clamp(scaled, -self.clip, self.clip).to(rewards.dtype)
