"""Distribution heads: a softmax policy for Discrete actions, a diagonal Gaussian for Box.

``distribution()`` is the readable definition through ``torch.distributions``. The other methods
are the same maths written directly on tensors, because the rollout calls the policy once per env
step and the distribution objects cost more than the network there (tests check both agree):

- Categorical ``π(a|s) = softmax(z)_a``: sample ``a = argmax_i(z_i + g_i)`` with Gumbel noise
  ``g = -log(-log U)`` (Gumbel-max trick); ``log π(a|s) = log_softmax(z)_a``;
  entropy ``H = -Σ_i p_i log p_i``.
- Gaussian ``π(a|s) = N(μ(s), diag σ²)`` with a state-independent ``log σ``: sample
  ``a = μ + σ·ε``, ``ε ~ N(0, I)``; ``log π(a|s) = Σ_j [-(a_j-μ_j)²/(2σ_j²) - log σ_j - ½log 2π]``;
  entropy ``H = Σ_j (½ + ½log 2π + log σ_j)``.

Each head also says what the algorithms need of a distribution without knowing its kind (the head
protocol): ``distribution_params`` (the tensors that fix ``π(·|s)``, frozen as NPG/TRPO/ACKTR's old
policy), ``kl`` between two such parameterizations, ``fisher_diagonal`` (ACKTR's exact Fisher of
the free parameters no layer produces) and the ``action_shape``/``action_dtype`` a rollout stores.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal
from torch.nn import functional as F

from rlcamp.nn.mlp import orthogonal_init
from rlcamp.optim.kfac import GAUSSIAN_LOG_STD_FISHER

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def categorical_kl(old_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """``KL(p‖q) = Σ_a p_a (log p_a - log q_a)`` per state, from logits."""
    old_log_p = torch.log_softmax(old_logits, dim=-1)
    new_log_p = torch.log_softmax(new_logits, dim=-1)
    return (old_log_p.exp() * (old_log_p - new_log_p)).sum(-1)


def gaussian_kl(
    old_mean: torch.Tensor, old_log_std: torch.Tensor, new_mean: torch.Tensor, new_log_std: torch.Tensor
) -> torch.Tensor:
    """``KL(N(μ₀, σ₀²) ‖ N(μ₁, σ₁²))`` per state for diagonal Gaussians, summed over action dims:

    ``Σ_j [log σ₁ⱼ/σ₀ⱼ + (σ₀ⱼ² + (μ₀ⱼ - μ₁ⱼ)²) / (2σ₁ⱼ²) - ½]``.
    """
    var_ratio = torch.exp(2.0 * (old_log_std - new_log_std))
    mean_term = (old_mean - new_mean).square() * torch.exp(-2.0 * new_log_std)
    return (new_log_std - old_log_std + 0.5 * (var_ratio + mean_term) - 0.5).sum(-1)


class CategoricalHead(nn.Module):
    """Logits ``z = W h + b`` of a softmax policy over ``n`` actions."""

    def __init__(self, in_features: int, n_actions: int, init_gain: float = 0.01) -> None:
        super().__init__()
        self.linear = orthogonal_init(nn.Linear(in_features, n_actions), init_gain)
        self.n_actions = n_actions
        self.action_shape: tuple[int, ...] = ()
        self.action_dtype = np.dtype(np.int64)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.linear.weight, self.linear.bias)

    def distribution(self, logits: torch.Tensor) -> Distribution:
        return Categorical(logits=logits, validate_args=False)

    def noise(self, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """Gumbel(0, 1) noise ``-log(-log U)`` for ``shape`` samples."""
        u = torch.rand(*shape, self.n_actions, device=device)
        return -torch.log(-torch.log(u.clamp_(1e-20, 1.0)))

    def sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.argmax(logits + noise, dim=-1)

    def distribution_params(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(z,)``: the logits fix the distribution."""
        return (logits,)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``KL(π_old ‖ π_new)`` per state (``categorical_kl``)."""
        return categorical_kl(old[0], new[0])

    def fisher_diagonal(self) -> list[tuple[nn.Parameter, float]]:
        """None: every parameter is a layer's."""
        return []

    def log_prob_entropy(
        self, logits: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(logits, dim=-1)
        log_prob = log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return log_prob, entropy


class GaussianHead(nn.Module):
    """Mean ``μ = W h + b`` and a learned, state-independent ``log σ`` (PPO detail: continuous #1)."""

    def __init__(
        self, in_features: int, action_dim: int, log_std_init: float = 0.0, init_gain: float = 0.01
    ) -> None:
        super().__init__()
        self.linear = orthogonal_init(nn.Linear(in_features, action_dim), init_gain)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.action_dim = action_dim
        self.action_shape: tuple[int, ...] = (action_dim,)
        self.action_dtype = np.dtype(np.float32)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.linear.weight, self.linear.bias)

    def distribution(self, mean: torch.Tensor) -> Distribution:
        std = self.log_std.exp().expand_as(mean)
        return Independent(Normal(mean, std, validate_args=False), 1, validate_args=False)

    def noise(self, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.randn(*shape, self.action_dim, device=device)

    def sample(self, mean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return mean + self.log_std.exp() * noise

    def distribution_params(self, mean: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(μ, log σ)``; ``log σ`` is the parameter itself (state-independent, broadcast)."""
        return (mean, self.log_std)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``KL(π_old ‖ π_new)`` per state (``gaussian_kl``)."""
        return gaussian_kl(old[0], old[1], new[0], new[1])

    def fisher_diagonal(self) -> list[tuple[nn.Parameter, float]]:
        """``log σ``, whose exact Fisher is ``2·I`` (``GAUSSIAN_LOG_STD_FISHER``)."""
        return [(self.log_std, GAUSSIAN_LOG_STD_FISHER)]

    def log_prob_entropy(
        self, mean: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        log_std = self.log_std
        z = (actions - mean) * torch.exp(-log_std)
        log_prob = (-0.5 * z.square() - log_std - HALF_LOG_2PI).sum(-1)
        entropy = (0.5 + HALF_LOG_2PI + log_std).sum(-1).expand(log_prob.shape)
        return log_prob, entropy


def make_head(
    in_features: int, action_space: gym.Space, log_std_init: float = 0.0
) -> CategoricalHead | GaussianHead:
    """The policy head that fits ``action_space``: softmax for Discrete, Gaussian for Box."""
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(in_features, int(action_space.n))
    if isinstance(action_space, gym.spaces.Box):
        return GaussianHead(in_features, int(math.prod(action_space.shape)), log_std_init)
    raise ValueError(f"action space {type(action_space).__name__} is not supported: use Discrete or Box")
