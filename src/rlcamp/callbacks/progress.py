"""A rich progress bar over environment steps, with steps/s and the mean episode return.

Its total is the env steps the run trains: the budget rounded up to whole rollouts, with one line
when that is more than the budget."""

from __future__ import annotations

import logging
import math

import pytorch_lightning as pl
from rich.console import JustifyMethod
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

log = logging.getLogger(__name__)


def progress_columns(total: int) -> tuple[ProgressColumn, ...]:
    """The bar's columns: the env-step count ``done/total`` and the times keep their full width (an
    80-column terminal once showed ``100000/…``); the bar takes what is left."""

    def whole(width: int = 0, justify: JustifyMethod = "left") -> Column:
        return Column(no_wrap=True, min_width=width, justify=justify)

    return (
        TextColumn("[bold]{task.description}", table_column=whole()),
        BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=4)),
        MofNCompleteColumn(table_column=whole(len(f"{total}/{total}"), "right")),
        TextColumn("env steps", table_column=whole(len("env steps"))),
        TimeElapsedColumn(table_column=whole(7)),
        TimeRemainingColumn(table_column=whole(7)),
        TextColumn("{task.fields[sps]:>6.0f} steps/s  return {task.fields[ret]:.2f}", table_column=whole()),
    )


def planned_env_steps(budget: int, rollout_steps: int) -> int:
    """The env steps a run trains: its budget rounded up to whole rollouts (all ranks together)."""
    return math.ceil(budget / rollout_steps) * rollout_steps


def budget_note(budget: int, rollout_steps: int) -> str:
    """One line when the budget is not a whole number of rollouts (the run trains past it); else empty."""
    planned = planned_env_steps(budget, rollout_steps)
    if planned == budget:
        return ""
    return (
        f"total_env_steps={budget} is not a whole number of rollouts of {rollout_steps} env steps "
        f"(n_envs × n_steps): the run trains {planned // rollout_steps} rollouts, {planned} env steps"
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
        rollout_steps = pl_module.rollout_size * trainer.world_size
        total = planned_env_steps(pl_module.hparams.total_env_steps, rollout_steps)
        note = budget_note(pl_module.hparams.total_env_steps, rollout_steps)
        if note:
            log.warning(note)
        self._progress = Progress(
            *progress_columns(total),
            refresh_per_second=self.refresh_per_second,
            expand=True,
        )
        self._task = self._progress.add_task(
            type(pl_module).__name__,
            total=total,
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
            completed=pl_module.env_steps,
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
