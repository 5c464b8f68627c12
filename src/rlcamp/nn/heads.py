"""Distribution heads: a softmax policy for Discrete actions, a diagonal Gaussian for Box, a product of
softmaxes for MultiDiscrete and a product of Bernoullis for MultiBinary.

``distribution()`` is the readable definition through ``torch.distributions``. The other methods
are the same maths written directly on tensors, because the rollout calls the policy once per env
step and the distribution objects cost more than the network there (tests check both agree):

- Categorical ``π(a|s) = softmax(z)_a``: sample ``a = argmax_i(z_i + g_i)`` with Gumbel noise
  ``g = -log(-log U)`` (Gumbel-max trick); ``log π(a|s) = log_softmax(z)_a``;
  entropy ``H = -Σ_i p_i log p_i``.
- Gaussian ``π(a|s) = N(μ(s), diag σ²)`` with a state-independent ``log σ``: sample
  ``a = μ + σ·ε``, ``ε ~ N(0, I)``; ``log π(a|s) = Σ_j [-(a_j-μ_j)²/(2σ_j²) - log σ_j - ½log 2π]``;
  entropy ``H = Σ_j (½ + ½log 2π + log σ_j)``.
- MultiCategorical ``π(a|s) = Π_j softmax(z_j)_{a_j}`` over segments ``z_j`` of ``nvec[j]`` logits:
  Gumbel-max per segment; ``log π`` and ``H`` are the segments' summed; the KL too.
- Bernoulli ``π(a|s) = Π_j σ(z_j)^{a_j} (1 - σ(z_j))^{1-a_j}``: sample ``a = [z + l > 0]`` with logistic
  noise ``l = log U - log(1 - U)``; ``log π(a|s) = -Σ_j [a_j softplus(-z_j) + (1-a_j) softplus(z_j)]``;
  entropy ``H = Σ_j [p_j softplus(-z_j) + (1-p_j) softplus(z_j)]``, ``p = σ(z)``.

An invalid-action mask (Huang & Ontañón 2022) sets the logits of invalid actions to the dtype's
lowest finite value before any of these (``mask_logits``): their probability is exactly 0, so the
Categorical and MultiCategorical heads above sample, score and differentiate the masked softmax
``π(a|s) = m_a exp(z_a) / Σ_b m_b exp(z_b)``; the Gaussian and Bernoulli heads take no mask.

Sampling is written on noise drawn up front (the collector draws a whole rollout's at once) and, for
the Gumbel and logistic tricks, the noise maps to exactly the distribution's law (tests count draws).

Each head also says what the algorithms need of a distribution without knowing its kind (the head
protocol): ``distribution_params`` (the tensors that fix ``π(·|s)``, frozen as NPG/TRPO/ACKTR's old
policy), ``kl`` between two such parameterizations, ``fisher_diagonal`` (ACKTR's exact Fisher of
the free parameters no layer produces) and the ``action_shape``/``action_dtype`` a rollout stores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal
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


def bernoulli_kl(old_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """``KL(p‖q) = Σ_j [p_j (log p_j - log q_j) + (1-p_j)(log(1-p_j) - log(1-q_j))]`` per state, from
    logits, with ``log σ(z) = -softplus(-z)`` and ``log(1 - σ(z)) = -softplus(z)``."""
    p = torch.sigmoid(old_logits)
    log_ratio_one = F.softplus(-new_logits) - F.softplus(-old_logits)
    log_ratio_zero = F.softplus(new_logits) - F.softplus(old_logits)
    return (p * log_ratio_one + (1.0 - p) * log_ratio_zero).sum(-1)


def mask_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``z_a`` where ``m_a`` (valid), else the lowest finite float: ``softmax`` then gives invalid
    actions probability exactly 0, and, finite, no NaN in ``0·log 0`` terms or their gradients."""
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


def gumbel_noise(shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """Gumbel(0, 1) noise ``-log(-log U)`` of ``shape``."""
    u = torch.rand(*shape, device=device)
    return -torch.log(-torch.log(u.clamp_(1e-20, 1.0)))


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
        return gumbel_noise((*shape, self.n_actions), device)

    def sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.argmax(logits + noise, dim=-1)

    def mode(self, logits: torch.Tensor) -> torch.Tensor:
        """The most likely action (the deterministic policy ``rlcamp-eval`` plays)."""
        return self.distribution(logits).mode

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

    def mode(self, mean: torch.Tensor) -> torch.Tensor:
        """``μ``."""
        return self.distribution(mean).mode

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


class MultiCategoricalHead(nn.Module):
    """Logits ``z = W h + b`` of ``len(nvec)`` independent softmax policies, segment ``j`` over
    ``nvec[j]`` actions (MultiDiscrete); an action is ``len(nvec)`` int64 choices."""

    def __init__(self, in_features: int, nvec: Sequence[int], init_gain: float = 0.01) -> None:
        super().__init__()
        self.nvec = tuple(int(n) for n in nvec)
        total = sum(self.nvec)
        self.linear = orthogonal_init(nn.Linear(in_features, total), init_gain)
        self.action_shape: tuple[int, ...] = (len(self.nvec),)
        self.action_dtype = np.dtype(np.int64)
        # index[j, i]: the column of segment j's action i; the padding slots read column `total`
        index = torch.full((len(self.nvec), max(self.nvec)), total, dtype=torch.long)
        for j, (start, n) in enumerate(zip(np.cumsum((0, *self.nvec[:-1])), self.nvec, strict=True)):
            index[j, :n] = torch.arange(int(start), int(start) + n)
        self.register_buffer("segment_index", index, persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.linear.weight, self.linear.bias)

    def segments(self, flat: torch.Tensor) -> torch.Tensor:
        """``[..., Σnvec] → [..., len(nvec), max nvec]``, segment ``j`` in row ``j``, padded with the
        lowest finite float: its probability is exactly 0, and, finite, it adds no NaN to ``0·log 0``
        terms or their gradients (-inf would)."""
        padded = F.pad(flat, (0, 1), value=torch.finfo(flat.dtype).min)
        return padded[..., self.segment_index]

    def distribution(self, logits: torch.Tensor) -> Distribution:
        """The product of the segments' ``Categorical`` s (padding: probability 0)."""
        categorical = Categorical(logits=self.segments(logits), validate_args=False)
        return Independent(categorical, 1, validate_args=False)

    def noise(self, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """Gumbel(0, 1) noise for every logit of ``shape`` samples."""
        return gumbel_noise((*shape, sum(self.nvec)), device)

    def sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``a_j = argmax_i (z_j + g_j)_i`` per segment (Gumbel-max)."""
        return torch.argmax(self.segments(logits + noise), dim=-1)

    def mode(self, logits: torch.Tensor) -> torch.Tensor:
        """Each segment's most likely action."""
        return self.distribution(logits).mode

    def distribution_params(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(z,)``: the logits fix the distribution."""
        return (logits,)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``KL(π_old ‖ π_new) = Σ_j KL_j`` per state, the segments' ``categorical_kl`` summed."""
        return categorical_kl(self.segments(old[0]), self.segments(new[0])).sum(-1)

    def fisher_diagonal(self) -> list[tuple[nn.Parameter, float]]:
        """None: every parameter is a layer's."""
        return []

    def log_prob_entropy(
        self, logits: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Σ_j log softmax(z_j)_{a_j}, Σ_j H_j)``."""
        log_p = torch.log_softmax(self.segments(logits), dim=-1)
        log_prob = log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1).sum(-1)
        entropy = -(log_p.exp() * log_p).sum((-2, -1))
        return log_prob, entropy


class BernoulliHead(nn.Module):
    """Logits ``z = W h + b`` of independent Bernoulli actions, one per entry of a MultiBinary space
    of ``shape``; stored as int8 0/1 of that shape, the space's own dtype, which the env takes as is."""

    def __init__(self, in_features: int, shape: Sequence[int], init_gain: float = 0.01) -> None:
        super().__init__()
        self.n = int(math.prod(shape))
        self.linear = orthogonal_init(nn.Linear(in_features, self.n), init_gain)
        self.action_shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.action_dtype = np.dtype(np.int8)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.linear.weight, self.linear.bias)

    def shaped(self, flat: torch.Tensor) -> torch.Tensor:
        """``[..., n] → [..., *shape]``."""
        return flat.reshape(*flat.shape[:-1], *self.action_shape)

    def distribution(self, logits: torch.Tensor) -> Distribution:
        bernoulli = Bernoulli(logits=self.shaped(logits), validate_args=False)
        return Independent(bernoulli, len(self.action_shape), validate_args=False)

    def noise(self, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """Logistic noise ``log U - log(1 - U)`` for ``shape`` samples."""
        u = torch.rand(*shape, self.n, device=device).clamp_(1e-20, 1.0)
        return torch.log(u) - torch.log1p(-u)

    def sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``a = [z + l > 0]``: ``P(l > -z) = σ(z)``; float 0/1 like ``Bernoulli.sample``."""
        return self.shaped((logits + noise > 0).to(logits.dtype))

    def mode(self, logits: torch.Tensor) -> torch.Tensor:
        """``[z > 0]`` (``Bernoulli.mode`` is NaN at ``p = ½``)."""
        return self.shaped((logits > 0).to(logits.dtype))

    def distribution_params(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(z,)``: the logits fix the distribution."""
        return (logits,)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``KL(π_old ‖ π_new)`` per state (``bernoulli_kl``)."""
        return bernoulli_kl(old[0], new[0])

    def fisher_diagonal(self) -> list[tuple[nn.Parameter, float]]:
        """None: every parameter is a layer's."""
        return []

    def log_prob_entropy(
        self, logits: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log π = -Σ_j [a_j softplus(-z_j) + (1-a_j) softplus(z_j)]`` and
        ``H = Σ_j [p_j softplus(-z_j) + (1-p_j) softplus(z_j)]``, ``p = σ(z)``."""
        a = actions.reshape(logits.shape).to(logits.dtype)
        neg_log_p1, neg_log_p0 = F.softplus(-logits), F.softplus(logits)
        log_prob = -(a * neg_log_p1 + (1.0 - a) * neg_log_p0).sum(-1)
        p = torch.sigmoid(logits)
        entropy = (p * neg_log_p1 + (1.0 - p) * neg_log_p0).sum(-1)
        return log_prob, entropy


Head = CategoricalHead | GaussianHead | MultiCategoricalHead | BernoulliHead


def make_head(in_features: int, action_space: gym.Space, log_std_init: float = 0.0) -> Head:
    """The policy head that fits ``action_space``: softmax for Discrete, Gaussian for Box, a softmax
    per component for MultiDiscrete, a Bernoulli per entry for MultiBinary."""
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(in_features, int(action_space.n))
    if isinstance(action_space, gym.spaces.Box):
        return GaussianHead(in_features, int(math.prod(action_space.shape)), log_std_init)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return MultiCategoricalHead(in_features, action_space.nvec.tolist())
    if isinstance(action_space, gym.spaces.MultiBinary):
        return BernoulliHead(in_features, action_space.shape)
    raise ValueError(
        f"action space {type(action_space).__name__} is not supported: "
        "use Discrete, Box, MultiDiscrete or MultiBinary"
    )
