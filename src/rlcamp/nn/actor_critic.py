"""The actor-critic: a policy head and a state-value head on MLP bodies (separate or shared)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Distribution

from rlcamp.envs.normalize import RunningNormalizer
from rlcamp.nn.heads import make_head
from rlcamp.nn.mlp import mlp, mlp_forward, orthogonal_init


class ActorCritic(nn.Module):
    """``π_θ(a|s)`` and ``V_φ(s)``.

    Every method takes *network inputs*: raw observations after ``normalize_obs``. The rollout
    collector stores those inputs, so the update sees exactly what the acting policy saw.
    ``shared=True`` puts both heads on one body (``network=mlp_shared``); by default the actor and
    the critic have separate bodies (PPO detail #13 for MuJoCo). ``act_on_device=True`` runs the
    rollout's per-step actor as torch on the policy's device (a GPU with ``trainer=gpu``: many envs)
    instead of the numpy copy on the CPU (``nn/rollout_actor.py``), which the update on the GPU keeps.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        shared: bool = False,
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        clip_obs: float = 10.0,
        act_on_device: bool = False,
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        obs_dim = int(math.prod(observation_space.shape))
        self.obs_normalizer = RunningNormalizer((obs_dim,), clip=clip_obs) if normalize_obs else None
        self.actor_body = mlp(obs_dim, hidden_sizes, activation, ortho_init)
        self.critic_body = self.actor_body if shared else mlp(obs_dim, hidden_sizes, activation, ortho_init)
        features = hidden_sizes[-1] if hidden_sizes else obs_dim
        self.head = make_head(features, action_space, log_std_init)
        self.value_head = nn.Linear(features, 1)
        if ortho_init:
            orthogonal_init(self.value_head, 1.0)
        self.shared = shared
        self.activation = activation
        self.act_on_device = act_on_device

    @property
    def is_discrete(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    def normalize_obs(self, raw_obs: torch.Tensor) -> torch.Tensor:
        """Network input of raw observations: flattened, then normalized if normalization is on."""
        obs = raw_obs.reshape(*raw_obs.shape[: raw_obs.dim() - len(self.observation_space.shape)], -1).float()
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)

    def actor_params(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits (Discrete) or the Gaussian mean (Box)."""
        return self.head(mlp_forward(self.actor_body, obs))

    def distribution(self, obs: torch.Tensor) -> Distribution:
        """``π_θ(·|s)`` as a ``torch.distributions`` object."""
        return self.head.distribution(self.actor_params(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``V_φ(s)``, shape ``[...]``."""
        return self.value_head(mlp_forward(self.critic_body, obs)).squeeze(-1)

    def act(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``a ~ π_θ(·|s)`` (or take its mode) and return ``(a, log π_θ(a|s), V_φ(s))``."""
        dist = self.distribution(obs)
        action = dist.mode if deterministic else dist.sample()
        return action, dist.log_prob(action), self.value(obs)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Rollout hot path: an action from pre-drawn ``noise``, running the actor only."""
        return self.head.sample(self.actor_params(obs), noise)

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π_θ(a|s), H[π_θ(·|s)], V_φ(s))`` for a batch, without distribution objects."""
        if self.shared:
            features = mlp_forward(self.actor_body, obs)
            log_prob, entropy = self.head.log_prob_entropy(self.head(features), actions)
            return log_prob, entropy, self.value_head(features).squeeze(-1)
        log_prob, entropy = self.head.log_prob_entropy(self.actor_params(obs), actions)
        return log_prob, entropy, self.value(obs)
