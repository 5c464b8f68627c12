"""Natural policy gradient (Kakade 2001) with a KL-scaled step (as in TRPO, Schulman et al. 2015)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlcamp.algos.base import Metrics, OnPolicyAlgorithm
from rlcamp.algos.natural import (
    PolicySnapshot,
    fisher_vector_product,
    flat_grad,
    flat_params,
    mean_kl,
    natural_step,
    set_flat_params,
    snapshot,
)
from rlcamp.config_checks import check_npg
from rlcamp.nn.recurrent import Sequences
from rlcamp.rollout.buffer import Batch
from rlcamp.tree import Obs


def held_out_gains(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor
) -> torch.Tensor:
    """``(π_θ(a|s) / π_old(a|s) − 1) · Â`` per sample: each sample's share of the surrogate's gain
    ``L(θ) − L(θ_old)``."""
    return ((log_prob - old_log_prob).exp() - 1.0) * advantages


@dataclass
class NaturalDirection:
    """One natural-gradient solve: ``π_old``, the loss ``−L``, ``g``, ``Δ``, ``gᵀΔ``, the loss's metrics."""

    old: PolicySnapshot
    loss: torch.Tensor
    grad: torch.Tensor
    step: torch.Tensor
    expected: torch.Tensor
    metrics: Metrics


def importance_surrogate(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor
) -> torch.Tensor:
    """``L(θ) = E[π_θ(a|s) / π_old(a|s) · A]`` (TRPO eq. 14); ``∇L(θ_old)`` is the policy gradient."""
    return ((log_prob - old_log_prob).exp() * advantages).mean()


class NPG(OnPolicyAlgorithm):
    """One natural-gradient step per rollout on the whole batch, then a separate value fit.

    Policy: ``θ ← θ + sqrt(2δ / xᵀFx) · x`` with ``x = F⁻¹∇L`` from conjugate gradient on
    Fisher-vector products (``rlcamp.algos.natural``). Value: ``value_epochs`` Adam passes of
    ``value_minibatches`` minibatches on ``½(V(s) - R^λ)²``; the optimizer holds the critic only.

    With ``network=mlp_shared`` the shared body is the actor's: the natural step moves it and the
    value fit trains only the value head on its (detached) features.

    Args:
        max_kl: δ, the KL radius of the step (its quadratic estimate ``½ΔᵀFΔ`` equals δ).
        cg_iters: conjugate-gradient iterations for ``x ≈ F⁻¹g``.
        cg_damping: λ in ``(F + λI)x = g``.
        value_epochs, value_minibatches: passes of the value fit over the rollout, minibatches per pass.
        signal_z: take the step only when ``held_out_z`` is at least this (null: always, the
            lecture's step every rollout). Once every episode reaches the time limit the
            standardized advantages are noise, and a step of KL δ on noise walks the policy off the
            solution; the test skips such steps (``docs/algorithms.md``, "Staying solved").
    """

    def __init__(
        self,
        *,
        max_kl: float = 0.01,
        cg_iters: int = 10,
        cg_damping: float = 0.1,
        value_epochs: int = 10,
        value_minibatches: int = 16,
        signal_z: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(update_epochs=1, n_minibatches=1, **kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_npg(self.algo_settings)

    # ------------------------------------------------------------- parameter groups
    def actor_parameters(self) -> list[nn.Parameter]:
        """θ: the policy's actor parameters (a shared body included), moved by the natural step."""
        return self.policy.actor_parameters()

    def critic_parameters(self) -> list[nn.Parameter]:
        """φ: the policy's critic parameters, fitted by the value optimizer."""
        return self.policy.critic_parameters()

    def critic_value(self, obs: Obs, memory: Sequences | None = None) -> torch.Tensor:
        """``V_φ(s)``; on a shared body the features are detached so the fit never moves θ."""
        return self.policy.value(obs, memory, detach_shared=True)

    def leaves_parameters_out(self) -> bool:
        """The value fit's backward leaves θ out (θ moves by the natural step)."""
        return True

    def optimized_parameters(self) -> list[nn.Parameter]:
        """The value optimizer (from ``algo.optimizer``) steps φ only: θ moves by the natural step."""
        return self.critic_parameters()

    # ------------------------------------------------------------- update
    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """``-L(θ)``, the negated importance-sampled surrogate; its gradient is ``-g``."""
        log_prob, entropy, _ = self.policy.evaluate_actions(batch.obs, batch.actions)
        surrogate = importance_surrogate(log_prob, batch.log_probs, batch.advantages)
        return -surrogate, {"train/entropy": entropy.mean().detach()}

    def surrogate_and_kl(self, batch: Batch, old: PolicySnapshot) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L(θ), D̄_KL(θ_old, θ))`` at the current parameters, averaged over ranks (TRPO's line
        search decides on them)."""
        log_prob, _ = self.policy.log_prob_entropy(batch.obs, batch.actions)
        surrogate = importance_surrogate(log_prob, batch.log_probs, batch.advantages)
        both = self.all_ranks_mean(torch.stack([surrogate, mean_kl(self.policy, batch.obs, old)]))
        return both[0], both[1]

    def apply_step(self, batch: Batch, old: PolicySnapshot, step: torch.Tensor) -> Metrics:
        """NPG takes the full step ``Δ``; TRPO overrides this with its line search."""
        params = self.actor_parameters()
        with torch.no_grad():
            surrogate_old, _ = self.surrogate_and_kl(batch, old)
            set_flat_params(params, flat_params(params) + step)
            surrogate, kl = self.surrogate_and_kl(batch, old)
        return {"train/approx_kl": kl, "train/surrogate_gain": surrogate - surrogate_old}

    def natural_direction(self, batch: Batch) -> NaturalDirection:
        """``g = ∇L(θ_old)`` and ``Δ = natural_step(g, F·)`` on ``batch``.

        ``g`` and every product ``F·v`` are averaged over ranks (DDP does not sync
        ``torch.autograd.grad``), so every rank solves the same system and takes the same step.
        """
        params = self.actor_parameters()
        old = snapshot(self.policy, batch.obs)
        loss, metrics = self.compute_loss(batch)
        grad = self.all_ranks_mean(-flat_grad(loss, params))
        kl = mean_kl(self.policy, batch.obs, old)
        local_fvp = fisher_vector_product(kl, params, self.hparams.cg_damping)

        def fvp(vector: torch.Tensor) -> torch.Tensor:
            return self.all_ranks_mean(local_fvp(vector))

        step, expected = natural_step(grad, fvp, self.hparams.max_kl, self.hparams.cg_iters)
        return NaturalDirection(old, loss, grad, step, expected, metrics)

    def held_out_z(self, batch: Batch) -> torch.Tensor:
        """Whether the step's gain holds on data it was not fitted to: ``Δ`` from a random half of
        the rollout, and on the other half the z-score ``mean / (std / √n)`` of the per-sample gains
        ``(π_{θ+Δ}(a|s) / π_old(a|s) − 1) · Â`` (``held_out_gains``), averaged over ranks."""
        order = torch.randperm(len(batch), device=batch.advantages.device)
        half = len(batch) // 2
        fitted, held_out = batch.index(order[:half]), batch.index(order[half:])
        step = self.natural_direction(fitted).step
        params = self.actor_parameters()
        theta = flat_params(params)
        with torch.no_grad():
            set_flat_params(params, theta + step)
            log_prob, _ = self.policy.log_prob_entropy(held_out.obs, held_out.actions)
            set_flat_params(params, theta)
        gains = held_out_gains(log_prob, held_out.log_probs, held_out.advantages)
        return self.all_ranks_mean(gains.mean() / (gains.std() / math.sqrt(len(gains))))

    def policy_update(self, batch: Batch) -> Metrics:
        """The natural step ``Δ`` on the whole batch (NPG in full, TRPO through its line search);
        with ``signal_z``, only when ``held_out_z`` reaches it (else ``train/step_skipped``)."""
        metrics: Metrics = {}
        if self.hparams.signal_z is not None:
            z = self.held_out_z(batch)
            skipped = bool(z < self.hparams.signal_z)
            metrics = {"train/held_out_z": z.detach(), "train/step_skipped": torch.tensor(float(skipped))}
            if skipped:
                return metrics
        direction = self.natural_direction(batch)
        metrics.update(direction.metrics)
        metrics.update(self.apply_step(batch, direction.old, direction.step))
        metrics["train/policy_loss"] = direction.loss.detach()
        metrics["train/expected_improvement"] = direction.expected.detach()
        metrics["train/grad_norm"] = direction.grad.norm()
        return metrics

    def minibatch_step(self, batch: Batch) -> bool:
        """The natural-gradient policy step on the whole batch, then the critic's fit."""
        metrics = self.policy_update(batch)
        hp = self.hparams
        metrics["train/value_loss"] = self.fit_value(batch, hp.value_epochs, hp.value_minibatches)
        self.update_log.step(metrics)
        return True
