"""A rich progress bar over environment steps, with steps/s and the mean episode return."""

from __future__ import annotations

import pytorch_lightning as pl
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class EnvStepProgressBar(pl.Callback):
    """Advances once per rollout; Lightning's own bar counts batches, which mean little here."""

    def __init__(self, refresh_per_second: float = 4.0) -> None:
        self.refresh_per_second = refresh_per_second
        self._progress: Progress | None = None
        self._task = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("env steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[sps]:>8.0f} steps/s  return {task.fields[ret]:8.2f}"),
            refresh_per_second=self.refresh_per_second,
        )
        self._task = self._progress.add_task(
            type(pl_module).__name__,
            total=pl_module.hparams.total_env_steps,
            completed=pl_module.env_steps,
            sps=0.0,
            ret=float("nan"),
        )
        self._progress.start()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is None:
            return
        metrics = pl_module.last_metrics
        self._progress.update(
            self._task,
            completed=min(pl_module.env_steps, pl_module.hparams.total_env_steps),
            sps=metrics.get("time/sps", 0.0),
            ret=metrics.get("rollout/ep_return_mean", float("nan")),
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
