"""Save the policy's weights at chosen env steps of one run (the variance study's snapshots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch


def snapshot_path(dirpath: str | Path, at_env_steps: int) -> Path:
    """Where :class:`PolicySnapshots` writes the snapshot scheduled at ``at_env_steps``."""
    return Path(dirpath) / f"policy_{at_env_steps}.pt"


class PolicySnapshots(pl.Callback):
    """At the end of the first rollout with ``env_steps >= s``, save ``policy.state_dict()`` for each ``s``.

    Each file holds ``{"state_dict", "env_steps", "ep_return_mean"}`` (the step actually reached and
    the mean return of the last 20 training episodes). A full checkpoint is not needed: the study
    freezes the actor and fits its own critics.
    """

    def __init__(self, dirpath: str, at_env_steps: Sequence[int]) -> None:
        if not at_env_steps or any(s <= 0 for s in at_env_steps):
            raise ValueError(f"at_env_steps={list(at_env_steps)}: give one or more positive env steps")
        self.dirpath = Path(dirpath)
        self.pending = sorted(int(s) for s in at_env_steps)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        while self.pending and pl_module.env_steps >= self.pending[0]:
            if not trainer.is_global_zero:  # ranks hold the same weights; rank 0 writes (its window)
                self.pending.pop(0)
                continue
            self.dirpath.mkdir(parents=True, exist_ok=True)
            snapshot = {
                "state_dict": pl_module.policy.state_dict(),
                "env_steps": pl_module.env_steps,
                "ep_return_mean": pl_module.collector.stats.return_mean,
            }
            torch.save(snapshot, snapshot_path(self.dirpath, self.pending.pop(0)))
