"""Proximal Policy Optimization with the clipped surrogate (Schulman et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch

from rlcamp.algos.base import ConfigError, Metrics, OnPolicyAlgorithm
from rlcamp.algos.losses import value_loss
from rlcamp.rollout.buffer import Batch


def clipped_surrogate_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """``-E[min(r·A, clip(r, 1-ε, 1+ε)·A)]`` with ``r = π_θ(a|s) / π_old(a|s)`` (PPO eq. 7)."""
    ratio = log_ratio.exp()
    return -torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages).mean()


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """``E[(r - 1) - log r]``, an unbiased, non-negative estimate of ``KL(π_old ‖ π_θ)``."""
    return (log_ratio.exp() - 1.0 - log_ratio).mean()


class PPO(OnPolicyAlgorithm):
    """PPO-clip: ``L = L^CLIP - c_v·L^V + c_e·H``, minimized as its negative.

    Args:
        clip_range: ε of the clipped surrogate.
        clip_range_vf: ε_v of the clipped value loss (None: unclipped).
        anneal_clip: decay ε linearly to 0 with the budget (rl-zoo's tuned CartPole).
        ent_coef, vf_coef: c_e and c_v.
        target_kl: stop this rollout's update once the approximate KL exceeds 1.5 × target_kl.
    """

    def __init__(
        self,
        *,
        clip_range: float = 0.2,
        clip_range_vf: float | None = None,
        anneal_clip: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        target_kl: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["env", "network", "optimizer"])
        if clip_range <= 0:
            raise ConfigError(f"algo.clip_range={clip_range} must be > 0")
        if clip_range_vf is not None and clip_range_vf <= 0:
            raise ConfigError(f"algo.clip_range_vf={clip_range_vf} must be > 0 or null")
        self._update_stopped = False

    @property
    def clip(self) -> float:
        """Current ε: constant, or ``ε₀ · progress_remaining`` when annealed."""
        eps = self.hparams.clip_range
        return eps * self.progress_remaining if self.hparams.anneal_clip else eps

    def on_train_epoch_start(self) -> None:
        self._update_stopped = False

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        hp = self.hparams
        clip = self.clip
        log_prob, entropy, values = self.policy.evaluate_actions(batch.obs, batch.actions)
        log_ratio = log_prob - batch.log_probs
        policy_loss = clipped_surrogate_loss(log_ratio, batch.advantages, clip)
        v_loss = value_loss(values, batch.values, batch.returns, hp.clip_range_vf)
        entropy_mean = entropy.mean()
        loss = policy_loss - hp.ent_coef * entropy_mean + hp.vf_coef * v_loss
        with torch.no_grad():
            metrics = {
                "train/policy_loss": policy_loss.detach(),
                "train/value_loss": v_loss.detach(),
                "train/entropy": entropy_mean.detach(),
                "train/approx_kl": approx_kl(log_ratio),
                "train/clip_fraction": ((log_ratio.exp() - 1.0).abs() > clip).float().mean(),
                "train/loss": loss.detach(),
            }
        return loss, metrics

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        """One minibatch step; with ``target_kl``, skip the rest of the rollout's update once the
        (all-ranks mean) approximate KL exceeds ``1.5 · target_kl`` (as SB3 does)."""
        if self._update_stopped:
            return
        loss, metrics = self.compute_loss(batch)
        if self.hparams.target_kl is not None:
            kl = self.trainer.strategy.reduce(metrics["train/approx_kl"], reduce_op="mean")
            if kl > 1.5 * self.hparams.target_kl:
                self._update_stopped = True
                self._train_metrics.append({"train/early_stop": torch.tensor(1.0)})
                return
        self.gradient_step(loss)
        self._train_metrics.append(metrics)
