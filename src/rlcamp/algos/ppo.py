"""Proximal Policy Optimization (Schulman et al. 2017): ``PPO``, the clipped surrogate (eq. 7), and
``PPOKL``, the same algorithm with the adaptive KL-penalty objective (eq. 8, the β rule of section 4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from rlcamp.algos.base import Metrics, OnPolicyAlgorithm
from rlcamp.algos.losses import value_loss
from rlcamp.config_checks import check_ppo, check_ppo_kl
from rlcamp.rollout.buffer import Batch


def clipped_surrogate_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """``-E[min(r·A, clip(r, 1-ε, 1+ε)·A)]`` with ``r = π_θ(a|s) / π_old(a|s)`` (PPO eq. 7)."""
    ratio = log_ratio.exp()
    return -torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages).mean()


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """``E[(r - 1) - log r]``, an unbiased, non-negative estimate of ``KL(π_old ‖ π_θ)``.

    Its gradient ``E_old[(r - 1)∇log π_θ]`` is also unbiased for ``∇KL = -E_old[∇log π_θ]``
    (because ``E_old[r∇log π_θ] = E_θ[∇log π_θ] = 0``), so it serves as the penalty term too.
    """
    return (log_ratio.exp() - 1.0 - log_ratio).mean()


def kl_penalty_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, beta: float) -> torch.Tensor:
    """``-E[r·A - β·KL(π_old ‖ π_θ)]`` (PPO eq. 8), the KL estimated per sample by ``approx_kl``."""
    return -(log_ratio.exp() * advantages).mean() + beta * approx_kl(log_ratio)


def adapt_kl_coef(beta: float, kl: float, kl_target: float) -> float:
    """PPO's β rule (section 4): ``β/2`` if ``d < d_targ/1.5``, ``2β`` if ``d > 1.5·d_targ``, else β."""
    if kl < kl_target / 1.5:
        return beta / 2.0
    if kl > kl_target * 1.5:
        return beta * 2.0
    return beta


class PPO(OnPolicyAlgorithm):
    """PPO-clip: ``L = L^CLIP - c_v·L^V + c_e·H``, minimized as its negative, over
    ``update_epochs × n_minibatches`` minibatch steps per rollout.

    Args:
        clip_range: ε of the clipped surrogate.
        clip_range_vf: ε_v of the clipped value loss (None: unclipped).
        anneal_clip: decay ε linearly to 0 with the budget (rl-zoo's tuned CartPole).
        ent_coef, vf_coef: c_e and c_v.
        target_kl: stop this rollout's update once the approximate KL exceeds 1.5 × target_kl.
        seq_len: a recurrent policy's minibatches are sequences of this many steps, each replayed
            from the state stored before its first step (None: each env's whole rollout, CleanRL's
            ``ppo_atari_lstm.py``; ``Batch.sequence_minibatches``).
    """

    takes_memory = True

    def __init__(
        self,
        *,
        clip_range: float = 0.2,
        clip_range_vf: float | None = None,
        anneal_clip: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        target_kl: float | None = None,
        seq_len: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_ppo(self.algo_settings)

    def minibatches(self, batch: Batch) -> Iterator[Batch]:
        """The base's shuffled minibatches; a recurrent policy's are sequences of ``seq_len`` steps."""
        hp = self.hparams
        return batch.minibatches(hp.update_epochs, hp.n_minibatches, hp.normalize_advantage, hp.seq_len)

    @property
    def clip(self) -> float:
        """Current ε: constant, or ``ε₀ · progress_remaining`` when annealed."""
        eps = self.hparams.clip_range
        return eps * self.progress_remaining if self.hparams.anneal_clip else eps

    def policy_loss(self, log_ratio: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
        """The surrogate to minimize: here ``-L^CLIP``."""
        return clipped_surrogate_loss(log_ratio, advantages, self.clip)

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        hp = self.hparams
        clip = self.clip
        log_prob, entropy, values = self.policy.evaluate_actions(batch.obs, batch.actions, batch.sequences)
        log_ratio = log_prob - batch.log_probs
        policy_loss = self.policy_loss(log_ratio, batch.advantages)
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

    def minibatch_step(self, batch: Batch) -> bool:
        """One minibatch step; with ``target_kl``, end the rollout's update once the (all-ranks
        mean) approximate KL exceeds ``1.5 · target_kl``, before stepping (as SB3 does)."""
        loss, metrics = self.compute_loss(batch)
        target_kl = self.hparams.target_kl
        if target_kl is not None and self.all_ranks_mean(metrics["train/approx_kl"]) > 1.5 * target_kl:
            self.update_log.step({"train/early_stop": torch.tensor(1.0)})
            return False
        self.gradient_step(loss)
        self.update_log.step(metrics)
        return True


class PPOKL(PPO):
    """PPO with ``L^KLPEN = E[r·A - β·KL(π_old ‖ π_θ)]`` in place of ``L^CLIP`` (``algo=ppo_kl``).

    After each rollout's update ``d = E[KL(π_old ‖ π_θ)]`` is measured on the whole rollout (mean
    over ranks, so every rank keeps the same β) and β follows ``adapt_kl_coef``.
    ``adaptive_kl=false`` keeps β fixed (Table 1's "fixed KL"); with ``kl_coef=0`` it is the
    unclipped, unpenalized surrogate (Table 1's first row). ``clip_range`` only sets the logged
    ``train/clip_fraction``.

    Args:
        kl_coef: β, the initial penalty coefficient (the paper: 1).
        kl_target: d_targ of the β rule (the paper tries 0.003, 0.01, 0.03).
        adaptive_kl: apply the β rule after every rollout.
    """

    def __init__(
        self, *, kl_coef: float = 1.0, kl_target: float = 0.01, adaptive_kl: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.kl_coef = float(kl_coef)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_ppo_kl(self.algo_settings)

    def policy_loss(self, log_ratio: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
        """``-L^KLPEN`` at the current β."""
        return kl_penalty_loss(log_ratio, advantages, self.kl_coef)

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        """The base's update, then measure ``d`` on the whole rollout, log it and β, adapt β."""
        super().training_step(batch, batch_idx)
        with torch.no_grad():
            log_prob, _, _ = self.policy.evaluate_actions(batch.obs, batch.actions, batch.sequences)
            kl = float(self.all_ranks_mean(approx_kl(log_prob - batch.log_probs)))
        self.update_log.rollout["train/kl"] = torch.tensor(kl)
        self.update_log.rollout["train/kl_coef"] = torch.tensor(self.kl_coef)
        if self.hparams.adaptive_kl:
            self.kl_coef = adapt_kl_coef(self.kl_coef, kl, self.hparams.kl_target)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["rlcamp"]["kl_coef"] = self.kl_coef

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.kl_coef = float(checkpoint.get("rlcamp", {}).get("kl_coef", self.hparams.kl_coef))
