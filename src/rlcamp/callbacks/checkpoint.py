"""Write ``last.ckpt`` atomically every k environment steps, at the end, and on pre-emption signals.

Checkpoints are taken only at rollout boundaries (after the module's ``on_train_epoch_end`` has
logged the rollout and stepped the LR schedule), so a resumed run continues with the next rollout.

SIGTERM and SIGUSR1 (the signals SLURM sends before it stops a job) and SIGINT (Ctrl-C) do not
interrupt the rollout in progress (a second Ctrl-C does, with ``KeyboardInterrupt``): they are
noted, and at the end of that rollout the checkpoint is written and training stops (an
evaluation then in progress stops at once: ``pending_signal``). The handler
that was installed before (Lightning's: on SLURM with auto-requeue it saves ``hpc_ckpt_*.ckpt``
and runs ``scontrol requeue``) is then called for SIGUSR1, so the requeue happens only once
``last.ckpt`` is safely on disk. A requeued job started with ``ckpt_path=last`` resumes from it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from rlcamp.errors import NonFiniteUpdateError

log = logging.getLogger(__name__)

PREEMPTION_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")


class RunFolderCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint writer, staged beside its destination: ``<name>.tmp`` in the
    same folder, flushed to disk and renamed over ``<name>`` (``os.replace`` is atomic), and
    removed when the write fails (a full disk), so no half-written file keeps the space.

    Lightning's own stages the file in ``$TMPDIR`` (fsspec's transaction), which fails when that
    is small or full although the run folder has room.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise OSError(err.errno, f"could not write {path}: {err.strerror or err}") from None
            raise


class EnvStepCheckpoint(Checkpoint):
    """Checkpoint on an env-step schedule rather than Lightning's epoch/batch schedule.

    The file is written atomically beside its destination (``RunFolderCheckpointIO``, which this
    callback makes the trainer's checkpoint writer, so Lightning's SLURM ``hpc_ckpt`` too), so a
    crash or SIGKILL mid-write never leaves a truncated ``last.ckpt``, and a full disk no
    ``.tmp``. Weights that are not finite are never written.

    Being a Lightning ``Checkpoint``, its ``on_train_epoch_end`` runs after the module's.
    """

    def __init__(
        self,
        dirpath: str,
        every_env_steps: int = 50_000,
        filename: str = "last.ckpt",
        signals: tuple[str, ...] | list[str] = PREEMPTION_SIGNALS,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_env_steps = every_env_steps
        self.filename = filename
        self.signals = [
            signal.Signals[name] if isinstance(name, str) else signal.Signals(name) for name in signals
        ]
        self._next_save = every_env_steps
        self._saved_at: int | None = None
        self._previous_handlers: dict[signal.Signals, Any] = {}
        self.received_signal: signal.Signals | None = None
        self.preempted_by: signal.Signals | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the checkpoint atomically (every rank must call: Lightning syncs inside)."""
        bad = [
            name
            for name, t in pl_module.state_dict().items()
            if t.is_floating_point() and not t.isfinite().all()
        ]
        if bad:
            raise NonFiniteUpdateError(
                f"refusing to overwrite {self.path} with non-finite weights ({bad[0]}); "
                "the last checkpoint is kept"
            )
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_at = pl_module.env_steps

    # ----------------------------------------------------------------- signals
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received_signal is None:
            self.received_signal = signal.Signals(signum)
            log.warning(
                "received %s: checkpointing at the end of this rollout, then stopping",
                self.received_signal.name,
            )

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.signals:
            self._previous_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)

    def _restore_handlers(self) -> None:
        for sig, previous in self._previous_handlers.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous_handlers = {}

    def _signal_decision(self, trainer: pl.Trainer) -> bool:
        """True on every rank once any rank got a pre-emption signal (one all-reduce per rollout)."""
        return bool(trainer.strategy.reduce_boolean_decision(self.received_signal is not None, all=False))

    # ----------------------------------------------------------------- hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Make ``RunFolderCheckpointIO`` the writer, unless another than Lightning's default was chosen."""
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = RunFolderCheckpointIO()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        steps = pl_module.env_steps
        self._next_save = (steps // self.every_env_steps + 1) * self.every_env_steps
        self._saved_at = None
        self.received_signal = self.preempted_by = None
        self._install_handlers()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        preempted = self._signal_decision(trainer)
        if pl_module.env_steps >= self._next_save or preempted:
            self.save(trainer, pl_module)
            while self._next_save <= pl_module.env_steps:
                self._next_save += self.every_env_steps
        if preempted:
            self.preempted_by = self.received_signal or signal.SIGTERM
            trainer.should_stop = True
            log.warning(
                "%s: saved %s at env step %d; resume with ckpt_path=%s (or ckpt_path=last)",
                self.preempted_by.name,
                self.path,
                pl_module.env_steps,
                self.path,
            )
            previous = self._previous_handlers.get(self.preempted_by)
            if self.preempted_by == signal.SIGUSR1 and callable(previous):
                previous(self.preempted_by, None)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_handlers()
        if self._saved_at != pl_module.env_steps:
            self.save(trainer, pl_module)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()


def pending_signal(trainer: pl.Trainer) -> signal.Signals | None:
    """The pre-emption signal an ``EnvStepCheckpoint`` of ``trainer`` has noted and will act on at
    the end of this rollout (``None`` if none): work before that (an evaluation) stops early."""
    noted = (cb.received_signal for cb in trainer.callbacks if isinstance(cb, EnvStepCheckpoint))
    return next((sig for sig in noted if sig is not None), None)
