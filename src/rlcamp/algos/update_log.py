"""What one rollout's update records: per-step metrics, per-rollout metrics, non-finite flags.

Everything stays a tensor until the rollout ends, so an optimizer step never waits for a device
sync; ``row`` turns the rollout into one row of floats and ``check_finite`` raises once per rollout.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rlcamp.errors import NonFiniteUpdateError

Metrics = dict[str, torch.Tensor]


class UpdateLog:
    """The metrics and NaN/inf flags of the current rollout's update."""

    def __init__(self) -> None:
        self.steps: list[Metrics] = []  # one dict per optimizer step, averaged by ``row``
        self.rollout: Metrics = {}  # measured once per rollout (explained variance, KL, ...)
        self._nonfinite: torch.Tensor | None = None  # [loss, grad] flags of the first bad step

    def step(self, metrics: Metrics) -> None:
        self.steps.append(metrics)

    def flag(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Flag a NaN/inf ``loss`` or ``grad_norm``; the first bad step's flags name the cause."""
        nonfinite = ~torch.isfinite(torch.stack([loss.detach().float(), grad_norm.float()]))
        first = self._nonfinite
        self._nonfinite = nonfinite if first is None else torch.where(first.any(), first, nonfinite)

    def row(self) -> dict[str, float]:
        """Each step metric's mean over the steps that logged it, plus the rollout metrics; then reset."""
        row = {}
        for key in dict.fromkeys(k for metrics in self.steps for k in metrics):
            row[key] = float(torch.stack([m[key] for m in self.steps if key in m]).float().mean())
        row.update({key: float(value) for key, value in self.rollout.items()})
        self.steps, self.rollout = [], {}
        return row

    def check_finite(self, parameters: Iterable[torch.Tensor], where: str) -> None:
        """Raise ``NonFiniteUpdateError`` if a flagged step or the resulting weights hold NaN/inf."""
        flags, self._nonfinite = self._nonfinite, None
        bad_loss, bad_grad = flags.tolist() if flags is not None else (False, False)
        bad_weights = not bool(torch.stack([torch.isfinite(p).all() for p in parameters]).all())
        if not (bad_loss or bad_grad or bad_weights):
            return
        what = "loss" if bad_loss else "gradient" if bad_grad else "weights"
        raise NonFiniteUpdateError(
            f"non-finite {what} in the update of {where}; stopped without checkpointing these weights: "
            "lower algo.optimizer.lr, set algo.max_grad_norm or env.normalize_reward=true, then resume "
            "from the last checkpoint or restart"
        )
