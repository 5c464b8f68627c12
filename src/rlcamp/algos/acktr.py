"""ACKTR (Wu et al. 2017): A2C whose one step per rollout is K-FAC's KL-bounded natural gradient."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rlcamp.algos.natural import mean_kl, snapshot
from rlcamp.algos.policy_gradient import A2C
from rlcamp.config_checks import check_acktr
from rlcamp.errors import require
from rlcamp.optim.kfac import KFAC, KFAC_LAYERS, policy_fisher_loss, value_fisher_loss
from rlcamp.rollout.buffer import Batch


class ACKTR(A2C):
    """A2C's rollout, GAE advantages and loss ``-log π·Â + c_v·½(V - R)² - c_e·H``, stepped by K-FAC.

    Per rollout (``rlcamp.optim.kfac``): one forward records every Linear and Conv2d layer's inputs and
    pre-activations; the sampled-Fisher loss ``policy_fisher_loss + value_fisher_loss`` updates the
    running factors ``A, G``; the A2C gradient ``g`` (optionally norm-clipped) is replaced by
    ``s·η``, ``η = (A ⊗ G + λI)⁻¹g`` per layer (a Gaussian's ``log σ`` by ``g/(2 + λ)``) and
    ``s = min(1, sqrt(2δ / (lr² ηᵀg)))``; then SGD ``θ ← θ - lr·(s·η + μ·buf)``. The bound
    ``½ΔᵀF̂Δ ≤ δ`` holds for the fresh step ``lr·s·η``; momentum ``μ`` adds the decayed earlier steps on
    top, which the bound does not cover (as in ikostrikov's and Baselines' ACKTR). Actor and critic
    share one trust region: ``ηᵀg`` sums over both.

    Logs ``train/approx_kl`` (the exact mean KL of the policy measured after the step, momentum
    included), ``train/step_scale`` (``s``), ``train/kfac_damping`` (``λ``), ``train/quadratic_kl``
    (``½lr²s²ηᵀg``) and A2C's losses.

    Args:
        kl_clip: δ, the bound on the quadratic KL of the fresh step (half ikostrikov's ``kl_clip``).
        damping: λ of ``(A ⊗ G + λI)⁻¹``.
        decay: ρ of the running factors ``A ← ρA + (1-ρ)A_batch``.
        inverse_every: rollouts between eigendecompositions of the factors.
    """

    takes_memory = False  # K-FAC has no recurrent block (nn.LSTM bypasses its nn.Linear recorder)

    def __init__(
        self,
        *,
        kl_clip: float = 0.0005,
        damping: float = 0.01,
        decay: float = 0.99,
        inverse_every: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kfac = KFAC(self.kfac_layers(), decay, damping, inverse_every, self.policy.fisher_diagonal())

    def validate_network(self) -> None:
        """Every parameter must be in a K-FAC block or the exact diagonal: one outside would move by
        the raw gradient times the learning rate, outside the trust region."""
        super().validate_network()
        covered = {id(p) for layer in self.kfac_layers() for p in layer.parameters()}
        covered |= {id(p) for p, _ in self.policy.fisher_diagonal()}
        outside = [name for name, p in self.policy.named_parameters() if id(p) not in covered]
        require(
            not outside,
            f"algo=acktr: K-FAC has no block for network parameter {outside[0] if outside else ''} "
            "(it covers nn.Linear and nn.Conv2d layers); use algo=a2c or algo=ppo with this network",
        )

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_acktr(self.algo_settings)

    def kfac_layers(self) -> list[nn.Module]:
        """Every Linear and Conv2d layer of the actor-critic, each once (a shared trunk once)."""
        return [module for module in self.policy.modules() if isinstance(module, KFAC_LAYERS)]

    def update_curvature(self, obs: torch.Tensor) -> None:
        """Fold this rollout's sampled Fisher, averaged over ranks, into the K-FAC factors ``A, G``.

        ``policy.actor_and_value`` runs each layer once, as K-FAC's capture needs."""
        with self.kfac.capture() as capture:
            dist, values = self.policy.actor_and_value(obs)
        fisher_loss = policy_fisher_loss(dist) + value_fisher_loss(values)
        self.kfac.update_factors(capture, fisher_loss, False, reduce=self.all_ranks_mean)

    def gradient_step(self, loss: torch.Tensor) -> None:
        """``θ ← SGD(θ, s·η)``: the A2C gradient replaced by the KL-scaled natural gradient."""
        optimizer = self.optimizers(use_pl_optimizer=False)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_and_flag_gradients(loss)
        stats = self.kfac.natural_gradient_(optimizer.param_groups[0]["lr"], self.hparams.kl_clip)
        optimizer.step()
        self._step_metrics = {
            "train/step_scale": torch.tensor(stats.scale),
            "train/kfac_damping": torch.tensor(stats.damping),
            "train/quadratic_kl": torch.tensor(stats.quadratic_kl),
        }

    def minibatch_step(self, batch: Batch) -> bool:
        """Fold the batch's Fisher into the factors, take the preconditioned step, log its KL."""
        old = snapshot(self.policy, batch.obs)
        self.update_curvature(batch.obs)
        loss, metrics = self.compute_loss(batch)
        self.gradient_step(loss)
        with torch.no_grad():
            metrics["train/approx_kl"] = mean_kl(self.policy, batch.obs, old)
        self.update_log.step(metrics | self._step_metrics)
        return True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The K-FAC factors and eigenbases ride along, so a resumed run keeps its preconditioner."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["rlcamp"]["kfac"] = self.kfac.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.kfac.load_state_dict(checkpoint["rlcamp"]["kfac"])
