"""The lecture's actor-critic: the policy gradient weighted by a learned action value ``Q_φ(s, a)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch

from rlcamp.algos.policy_gradient import PolicyGradient
from rlcamp.config_checks import check_actor_critic
from rlcamp.errors import require
from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.q_critic import QCritic
from rlcamp.rollout.buffer import Batch, Rollout, bootstrap_truncations, normalize


def expected_q(policy: ActorCritic, critic: QCritic, obs: torch.Tensor) -> torch.Tensor:
    """``V̂(s) = E_{a~π_θ(·|s)} Q_φ(s, a)``: the exact sum ``Σ_a π(a|s) Q(s, a)`` for Discrete, one
    sampled ``a ~ π(·|s)`` for Box."""
    if critic.discrete:
        return (torch.softmax(policy.actor_params(obs), -1) * critic.all_actions(obs)).sum(-1)
    return critic(obs, policy.distribution(obs).sample())


def td0_targets(
    rewards: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor, gamma: float
) -> torch.Tensor:
    """On-policy TD(0) target ``y_t = r_t + γ(1 - d_t) V̂(s_{t+1})``, ``V̂(s) = E_{a~π} Q_φ(s, a)``

    (expected SARSA); ``[T, N]`` tensors, ``next_values[t] = V̂(s_{t+1})``.
    """
    return rewards + gamma * (1.0 - dones) * next_values


class QActorCritic(PolicyGradient):
    """``ĝ = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) Ψ_t`` with ``Ψ_t = Q_φ(s_t, a_t)`` (the lecture's) or
    ``Ψ_t = Q_φ(s_t, a_t) − V̂(s_t)``, ``V̂(s) = E_{a~π} Q_φ(s, a)`` (its advantage form).

    On each rollout the TD(0) targets ``y_t = td0_targets(...)`` come from the pre-update critic
    and stay fixed for the rollout (a target refreshed once per rollout); ``critic_steps``
    critic-only steps on ``½(Q_φ(s, a) − y)²`` fit ``Q_φ`` to them first, then ``Ψ`` is read from
    the fitted critic and one step is taken on ``-log π·Ψ - c_e·H + c_v·½(Q_φ(s, a) - y)²``. A
    time-limit truncation adds ``γ V̂(s_final)`` to the last reward (termination adds nothing). The
    policy's own state-value head is not used.

    Args:
        critic_hidden_sizes, critic_activation: the ``Q_φ`` MLP.
        critic_steps: critic-only gradient steps per rollout before the policy step (0: none).
        weight: ``q`` (``Ψ = Q_φ``) or ``advantage`` (``Ψ = Q_φ − V̂``).
    """

    def __init__(
        self,
        *,
        critic_hidden_sizes: Sequence[int] = (64, 64),
        critic_activation: str = "tanh",
        critic_steps: int = 0,
        weight: str = "q",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.q_critic = QCritic(
            self.policy.observation_space,
            self.policy.action_space,
            tuple(critic_hidden_sizes),
            critic_activation,
        )

    def validate_network(self) -> None:
        super().validate_network()
        require(
            self.policy.action_mask_key is None,
            "algo=actor_critic's Q critic sums over every action and takes no action mask; use "
            "algo=a2c or algo=ppo, or set env.action_mask=null",
        )
        require(
            not self.policy.image_obs,
            "algo=actor_critic's Q critic is an MLP on flat observations and cannot take images; "
            "use algo=a2c or algo=ppo for an image env",
        )
        require(
            isinstance(self.policy.action_space, (gym.spaces.Discrete, gym.spaces.Box)),
            f"algo=actor_critic's Q critic takes Discrete or Box actions, not "
            f"{type(self.policy.action_space).__name__}; use algo=a2c or algo=ppo for this env",
        )
        require(
            not self.policy.dict_obs,
            "algo=actor_critic's Q critic is an MLP on flat observations and cannot take a Dict "
            "observation; use algo=a2c or algo=ppo",
        )

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_actor_critic(self.algo_settings)

    def policy_weights(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Ψ``: ``Q_φ(s, a)``, or ``Q_φ(s, a) − Σ_a' π(a'|s) Q_φ(s, a')`` for ``weight=advantage``."""
        q = self.q_critic(obs, actions)
        if self.hparams.weight == "advantage":
            q = q - expected_q(self.policy, self.q_critic, obs)
        return q

    def process_rollout(self, rollout: Rollout) -> Batch:
        obs, actions = rollout.flat_obs, rollout.flat_actions
        log_probs, _, _ = self.policy.evaluate_actions(obs, actions)
        q = self.q_critic(obs, actions)
        next_values = expected_q(
            self.policy, self.q_critic, torch.cat([rollout.obs[1:], rollout.next_obs[None]])
        )
        gamma = self.hparams.gamma
        rewards = bootstrap_truncations(rollout, lambda s: expected_q(self.policy, self.q_critic, s), gamma)
        targets = td0_targets(rewards, next_values, rollout.dones, gamma)
        return Batch(
            obs=obs,
            actions=actions,
            log_probs=log_probs,
            values=q,
            advantages=self.policy_weights(obs, actions),
            returns=targets.reshape(-1),
        )

    def leaves_parameters_out(self) -> bool:
        """The policy's state-value head is in no loss, and the critic-only steps leave θ out."""
        return True

    def minibatch_step(self, batch: Batch) -> bool:
        """Fit ``Q_φ`` to the rollout's fixed targets for ``critic_steps`` steps, re-read ``Ψ`` from
        the fitted critic, then take the shared policy(+critic) step."""
        if self.hparams.critic_steps and len(batch):
            for _ in range(self.hparams.critic_steps):
                self.gradient_step(self.critic_loss(batch, batch.values))
            with torch.no_grad():
                weights = self.policy_weights(batch.obs, batch.actions)
            batch.advantages = normalize(weights) if self.hparams.normalize_advantage else weights
        return super().minibatch_step(batch)

    def critic_loss(self, batch: Batch, values: torch.Tensor) -> torch.Tensor:
        """``½ E[(Q_φ(s, a) - y)²]``."""
        return 0.5 * (self.q_critic(batch.obs, batch.actions) - batch.returns).square().mean()
