"""The vanilla policy gradient ``-log π·Ψ``, shared by REINFORCE, the actor-critic and A2C.

They differ only in the weight ``Ψ_t`` their ``process_rollout`` puts in ``batch.advantages`` and
in the critic they train; the loss and the single full-batch step per rollout are shared.
"""

from __future__ import annotations

from typing import Any

import torch

from rlcamp.algos.base import Metrics, OnPolicyAlgorithm
from rlcamp.algos.losses import value_loss
from rlcamp.config_checks import check_policy_gradient
from rlcamp.rollout.buffer import Batch


def policy_gradient_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``-(1/B) Σ_i log π_θ(a_i|s_i) · Ψ_i``: its gradient is minus the policy-gradient estimate

    ``ĝ = (1/B) Σ_i ∇_θ log π_θ(a_i|s_i) Ψ_i`` (the lecture's REINFORCE estimator with ``Ψ = R_t``,
    without its constant ``1/(1-γ)``, which only rescales the step).
    """
    return -(log_probs * weights).mean()


class PolicyGradient(OnPolicyAlgorithm):
    """One full-batch gradient step per rollout on ``-log π·Ψ - c_e·H (+ c_v·critic loss)``.

    Args:
        ent_coef: ``c_e``, weight of the entropy bonus ``H[π_θ(·|s)]``.
        vf_coef: ``c_v``, weight of the critic's regression loss.
    """

    def __init__(self, *, ent_coef: float = 0.0, vf_coef: float = 0.5, **kwargs: Any) -> None:
        super().__init__(update_epochs=1, n_minibatches=1, **kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_policy_gradient(self.algo_settings)

    def critic_loss(self, batch: Batch, values: torch.Tensor) -> torch.Tensor | None:
        """``½ E[(V_φ(s) - R)²]`` on ``batch.returns``; None when there is no critic to train."""
        return value_loss(values, batch.values, batch.returns)

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        log_prob, entropy, values = self.policy.evaluate_actions(batch.obs, batch.actions, batch.sequences)
        if batch.loss_rows is not None:  # the sequences ran whole; the loss reads these rows
            rows = batch.loss_rows
            log_prob, entropy, values = log_prob[rows], entropy[rows], values[rows]
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

    def minibatch_step(self, batch: Batch) -> bool:
        """Skip the step when the rollout holds no complete episode (REINFORCE, short ``n_steps``)."""
        if len(batch) == 0:
            self.update_log.step({"train/skipped_update": torch.tensor(1.0)})
            return True
        return super().minibatch_step(batch)


class A2C(PolicyGradient):
    """A2C: synchronous advantage actor-critic (Mnih et al. 2016) with GAE(λ) (Schulman et al. 2016).

    ``ĝ = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) Â_t`` over ``N`` envs × ``n_steps``, one step per rollout.
    ``Â_t`` is the base's GAE(λ) (``rlcamp.rollout.buffer.gae_batch``): ``λ = 1`` is the A2C
    paper's n-step return ``Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n}) - V(s_t)`` bootstrapped at the
    rollout's end (``n = n_steps - t``), ``λ = 0`` the one-step TD error
    ``δ_t = r_t + γV(s_{t+1}) - V(s_t)``. The critic regresses ``V_φ(s_t)`` on the λ-return
    ``Â_t + V(s_t)``; the loss is ``-log π·Â + c_v·½(V - R)² - c_e·H``, and the gradient is clipped
    to ``max_grad_norm``. Time-limit truncations bootstrap ``γV(s_final)``. A recurrent policy
    (``network.memory``) reads the rollout as its ``n_envs`` whole sequences, exactly as it acted.
    """

    takes_memory = True
