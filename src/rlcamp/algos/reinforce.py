"""REINFORCE (Williams 1992): Monte-Carlo policy gradient, with an optional baseline.

Also the parent of the family's one-step methods (``PolicyGradient``): actor-critic and A2C are
REINFORCE with another weight ``Ψ_t`` in the same estimator.
"""

from __future__ import annotations

from typing import Any

import torch

from rlcamp.algos.base import ConfigError, FullBatchUpdate, Metrics, OnPolicyAlgorithm
from rlcamp.algos.losses import value_loss
from rlcamp.rollout.advantages import discounted_returns
from rlcamp.rollout.buffer import Batch, Rollout

BASELINES = ("none", "mean", "value")


def policy_gradient_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``-(1/B) Σ_i log π_θ(a_i|s_i) · Ψ_i``: its gradient is minus the policy-gradient estimate

    ``ĝ = (1/B) Σ_i ∇_θ log π_θ(a_i|s_i) Ψ_i`` (the lecture's REINFORCE estimator with ``Ψ = R_t``,
    without its constant ``1/(1-γ)``, which only rescales the step).
    """
    return -(log_probs * weights).mean()


def complete_episode_mask(dones: torch.Tensor) -> torch.Tensor:
    """``[T, N]`` bool: True where the step's episode ends inside the rollout (at or after ``t``).

    Steps after an env's last episode end (its tail, cut by the rollout boundary) are False: their
    return is unknown. ``mask[t, n] = max_{t' ≥ t} dones[t', n]``.
    """
    return dones.bool().flip(0).cummax(0).values.flip(0)


def reward_to_go(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo return ``G_t = Σ_{k=0}^{T_ep - t - 1} γ^k r_{t+k}`` to the end of the episode.

    Exact where ``complete_episode_mask`` is True; elsewhere a partial sum to be masked out.
    """
    return discounted_returns(rewards, dones, torch.zeros_like(rewards[0]), gamma)


class PolicyGradient(FullBatchUpdate, OnPolicyAlgorithm):
    """One gradient step per rollout on ``-log π·Ψ - c_e·H (+ c_v·critic loss)``.

    ``process_rollout`` decides ``Ψ`` (``batch.advantages``) and the critic's targets; the loss and
    the single full-batch step are shared. ``update_epochs`` and ``n_minibatches`` are fixed to 1.

    Args:
        ent_coef: ``c_e``, weight of the entropy bonus ``H[π_θ(·|s)]``.
        vf_coef: ``c_v``, weight of the critic's regression loss.
    """

    def __init__(self, *, ent_coef: float = 0.0, vf_coef: float = 0.5, **kwargs: Any) -> None:
        super().__init__(update_epochs=1, n_minibatches=1, **kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        hp = self.hparams
        if hp.ent_coef < 0:
            raise ConfigError(f"algo.ent_coef={hp.ent_coef} must be >= 0")
        if hp.vf_coef <= 0:
            raise ConfigError(f"algo.vf_coef={hp.vf_coef} must be > 0")

    def critic_loss(self, batch: Batch, values: torch.Tensor) -> torch.Tensor | None:
        """``½ E[(V_φ(s) - R)²]`` on ``batch.returns``; None when there is no critic to train."""
        return value_loss(values, batch.values, batch.returns)

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        log_prob, entropy, values = self.policy.evaluate_actions(batch.obs, batch.actions)
        policy_loss = policy_gradient_loss(log_prob, batch.advantages)
        entropy_mean = entropy.mean()
        loss = policy_loss - self.hparams.ent_coef * entropy_mean
        metrics = {"train/policy_loss": policy_loss.detach(), "train/entropy": entropy_mean.detach()}
        critic = self.critic_loss(batch, values)
        if critic is not None:
            loss = loss + self.hparams.vf_coef * critic
            metrics["train/value_loss"] = critic.detach()
        metrics["train/loss"] = loss.detach()
        return loss, metrics

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        """Skip the step when the rollout holds no complete episode (REINFORCE, short ``n_steps``)."""
        if len(batch) == 0:
            self._train_metrics.append({"train/skipped_update": torch.tensor(1.0)})
            return
        super().training_step(batch, batch_idx)


class REINFORCE(PolicyGradient):
    """``ĝ = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) (G_t - b(s_t))`` from complete episodes.

    **Episodes cut by the rollout boundary are left out.** ``G_t`` needs the rewards to the end of
    the episode, so a step enters the update only if its episode ends inside this rollout
    (``complete_episode_mask``): the tail after each env's last episode end is dropped, and its
    episode's remaining steps, collected in the next rollout, enter *that* update with their exact
    return (the reward-to-go of a step needs only its future). Choose ``n_steps`` well above the
    typical episode length, or most data is dropped; a rollout with no episode end skips its update
    (``train/skipped_update``) and ``train/valid_fraction`` reports the share kept.

    **A time-limit truncation ends the episode**: ``G_t`` sums the rewards up to the limit, the
    return of the time-limited task, without bootstrapping ``V(s_final)``; the Monte-Carlo return
    stays free of the critic.

    Args:
        baseline: ``none`` (``Ψ = G_t``), ``mean`` (``b`` = the rollout's mean return, a constant
            computed from the same batch: unbiased up to ``O(1/B)``) or ``value`` (``b = V_φ(s_t)``
            of the pre-update critic, itself regressed on ``G_t`` with weight ``vf_coef``).
        normalize_advantage (base): standardize ``Ψ`` over the rollout ("return normalization"; with
            ``baseline=none`` it amounts to a mean baseline and a rescaled step).
    """

    def __init__(self, *, baseline: str = "value", **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        if self.hparams.baseline not in BASELINES:
            raise ConfigError(
                f"algo.baseline={self.hparams.baseline!r}: choose one of {', '.join(BASELINES)}"
            )

    def process_rollout(self, rollout: Rollout) -> Batch:
        returns = reward_to_go(rollout.rewards, rollout.dones, self.hparams.gamma)
        keep = complete_episode_mask(rollout.dones).reshape(-1)
        obs, actions = rollout.flat_obs[keep], rollout.flat_actions[keep]
        returns = returns.reshape(-1)[keep]
        log_probs, _, values = self.policy.evaluate_actions(obs, actions)
        baseline = {
            "none": torch.zeros_like(returns),
            "mean": returns.mean().expand_as(returns),
            "value": values,
        }
        return Batch(
            obs=obs,
            actions=actions,
            log_probs=log_probs,
            values=values,
            advantages=returns - baseline[self.hparams.baseline],
            returns=returns,
        )

    def critic_loss(self, batch: Batch, values: torch.Tensor) -> torch.Tensor | None:
        return super().critic_loss(batch, values) if self.hparams.baseline == "value" else None

    def collect_rollout(self) -> Batch:
        batch = super().collect_rollout()
        self._rollout_metrics["train/valid_fraction"] = torch.tensor(len(batch) / self.rollout_size)
        return batch
