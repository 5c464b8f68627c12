"""Trust Region Policy Optimization (Schulman et al. 2015): NPG's direction plus a line search."""

from __future__ import annotations

from typing import Any

import torch

from rlcamp.algos.base import Metrics
from rlcamp.algos.natural import PolicySnapshot, backtracking_line_search
from rlcamp.algos.npg import NPG
from rlcamp.config_checks import check_trpo
from rlcamp.rollout.buffer import Batch


class TRPO(NPG):
    """NPG whose step ``Δ`` is shrunk by ``shrink^k`` until the *measured* mean KL is at most
    ``max_kl`` and the surrogate improves; a step that never qualifies is not taken.

    Logs ``train/step_fraction`` (``shrink^k``, 0 when rejected), ``train/approx_kl`` (the exact
    mean KL reached), ``train/surrogate_gain`` and ``train/line_search_backtracks``.

    Args:
        line_search_shrink: β of the backtracking ``θ_old + βᵏΔ``.
        line_search_max_backtracks: trials before the step is rejected.
    """

    def __init__(
        self, *, line_search_shrink: float = 0.8, line_search_max_backtracks: int = 10, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_trpo(self.algo_settings)

    def apply_step(self, batch: Batch, old: PolicySnapshot, step: torch.Tensor) -> Metrics:
        result = backtracking_line_search(
            self.actor_parameters(),
            step,
            lambda: self.surrogate_and_kl(batch, old),
            self.hparams.max_kl,
            self.hparams.line_search_shrink,
            self.hparams.line_search_max_backtracks,
        )
        return {
            "train/step_fraction": torch.tensor(result.fraction),
            "train/approx_kl": torch.tensor(result.kl),
            "train/surrogate_gain": torch.tensor(result.surrogate_gain),
            "train/line_search_backtracks": torch.tensor(float(result.backtracks)),
            "train/step_accepted": torch.tensor(float(result.accepted)),
        }
