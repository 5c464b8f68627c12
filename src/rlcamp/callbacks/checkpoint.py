"""Write ``last.ckpt`` every k environment steps and at the end of training, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl


class EnvStepCheckpoint(pl.Callback):
    """Checkpoint on an env-step schedule rather than Lightning's epoch/batch schedule.

    The file is written to ``<name>.tmp`` and renamed over ``<name>`` (``os.replace`` is atomic),
    so a crash mid-write never leaves a truncated ``last.ckpt``.
    """

    def __init__(self, dirpath: str, every_env_steps: int = 50_000, filename: str = "last.ckpt") -> None:
        self.dirpath = Path(dirpath)
        self.every_env_steps = every_env_steps
        self.filename = filename
        self._next_save = every_env_steps

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    def save(self, trainer: pl.Trainer) -> None:
        """Write the checkpoint atomically (every rank must call: Lightning syncs inside)."""
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        steps = pl_module.env_steps
        self._next_save = (steps // self.every_env_steps + 1) * self.every_env_steps

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.env_steps >= self._next_save:
            self.save(trainer)
            self._next_save += self.every_env_steps * max(
                1, (pl_module.env_steps - self._next_save) // self.every_env_steps + 1
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)
