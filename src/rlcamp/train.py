"""``rlcamp-train``: compose the Hydra config, build env → policy → algorithm, fit, summarize.

rlcamp-train algo=ppo env=hopper seed=3
rlcamp-train -m algo.optimizer.lr=1e-3,3e-4 seed=1,2,3

The command's entry point is the light :mod:`rlcamp.cli`, which imports this module when a job starts.
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Checkpoint, Timer
from pytorch_lightning.utilities import rank_zero_only

from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.callbacks.checkpoint import EnvStepCheckpoint
from rlcamp.config_checks import check_run_keys
from rlcamp.errors import NothingToTrain
from rlcamp.utils.build import build, instantiate_group
from rlcamp.utils.checkpoint import metrics_history, replay_metrics
from rlcamp.utils.conf import CONF_DIR, algo_name
from rlcamp.utils.failure import end_failed_job
from rlcamp.utils.multirun import is_multirun
from rlcamp.utils.run_dir import RunDirLock, restore_run_record
from rlcamp.utils.summary import comparison_dir, print_summary, read_summary, write_summary
from rlcamp.utils.validation import validate_run
from rlcamp.utils.wandb import define_env_step_axis, finish_wandb, setup_wandb

__all__ = ["CONF_DIR", "build", "main", "run_job", "train"]

log = logging.getLogger(__name__)


def quiet_libraries() -> None:
    """Silence start-up chatter that says nothing about the run."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning_fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__` defined.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MUJOCO_GL", "egl")


def train(cfg: DictConfig) -> tuple[dict[str, Any], OnPolicyAlgorithm]:
    """Train one run and write ``summary.json``; returns (summary, module).

    The run folder is held (``RunDirLock``) from the checks to the summary, by rank 0 only: the
    other ranks of a DDP run write into the same folder.
    """
    quiet_libraries()
    check_run_keys(cfg)
    holder = RunDirLock(cfg.paths.output_dir) if rank_zero_only.rank == 0 else nullcontext()
    with holder:
        return fit_run(cfg)


def fit_run(cfg: DictConfig) -> tuple[dict[str, Any], OnPolicyAlgorithm]:
    """``train``'s work once the run folder is held: check, fit, summarize."""
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)

    module, ckpt_path, checkpoint = validate_run(cfg)
    # read before the loggers exist: Lightning's CSVLogger deletes the metrics.csv of its folder,
    # which is the checkpoint's own when a run resumes into its output directory
    history = metrics_history(ckpt_path, checkpoint["rlcamp"]["env_steps"]) if checkpoint else []
    setup_wandb(cfg)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    # Lightning adds its own epoch ModelCheckpoint when enabled without one; ours is env-step based
    has_checkpoint = any(isinstance(callback, Checkpoint) for callback in callbacks)
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, logger=loggers or False, callbacks=callbacks, enable_checkpointing=has_checkpoint
    )
    define_env_step_axis(loggers)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    replay_metrics(loggers, history)

    try:
        trainer.fit(module, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except BaseException as error:
        finish_wandb(exit_code=1)
        if isinstance(error, SystemExit) and trainer.interrupted:  # Lightning's exit on a second Ctrl-C
            raise SystemExit(128 + signal.SIGINT) from None
        raise
    finish_wandb()
    preempted_by = next((cb.preempted_by for cb in callbacks if isinstance(cb, EnvStepCheckpoint)), None)
    summary = {
        **run_ending(trainer, module, preempted_by),
        **module.summary(),
        "algo": algo_name(cfg.algo._target_),
        "seed": cfg.seed,
        "output_dir": str(output_dir),
        "resumed_from": str(ckpt_path) if ckpt_path else None,
    }
    if summary["status"] == "stopped":
        log.warning(
            "stopped at %d of %d env steps by %s",
            module.env_steps,
            module.hparams.total_env_steps,
            summary["stop_reason"],
        )
    if trainer.is_global_zero:  # srun-started ranks each run train(); rank 0 reports
        write_summary(output_dir, summary)
        multirun = is_multirun()
        print_summary(summary, comparison_dir(output_dir, multirun, cfg.task_name), multirun)
    return summary, module


def stop_reason(trainer: pl.Trainer) -> str:
    """What ended a fit before its env-step budget: a Lightning limit, else a callback's stop."""
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:
        return f"trainer.max_epochs={trainer.max_epochs}"
    if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return f"trainer.max_steps={trainer.max_steps}"
    if timer is not None and (timer.time_remaining("train") or 0.0) <= 0:
        return f"trainer.max_time ({timer.time_elapsed('train'):.0f} s)"
    return "a callback set trainer.should_stop (e.g. EarlyStopping)"


def run_ending(
    trainer: pl.Trainer, module: OnPolicyAlgorithm, preempted_by: signal.Signals | None
) -> dict[str, str]:
    """How the fit ended, for ``summary.json``: ``completed`` only when the env-step budget was spent;
    else ``interrupted`` (Ctrl-C) or ``preempted`` (another signal) with ``preempted_by``, or
    ``stopped`` with its ``stop_reason`` (a Lightning limit, a callback)."""
    if module.env_steps >= module.hparams.total_env_steps:
        return {"status": "completed"}
    if preempted_by is not None:
        status = "interrupted" if preempted_by == signal.SIGINT else "preempted"
        return {"status": status, "preempted_by": preempted_by.name}
    return {"status": "stopped", "stop_reason": stop_reason(trainer)}


def run_job(cfg: DictConfig) -> float | None:
    """The task of one Hydra job: train, and end a failure as ``end_failed_job`` says (a recorded
    status and one clear line; a refused command writes nothing); a pre-empted run exits with
    128 + the signal number; a resume of a run whose budget is already spent says so and exits 0
    without training.
    """
    try:
        summary, module = train(cfg)
    except NothingToTrain as done:
        restore_run_record(cfg.paths.output_dir)
        print(f"rlcamp-train: {done}")
        return recorded_metric(cfg)
    except Exception as error:
        return end_failed_job(cfg, error)
    if summary["status"] in ("preempted", "interrupted"):
        raise SystemExit(128 + signal.Signals[summary["preempted_by"]])
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    value = module.last_metrics.get(metric, summary.get(metric))
    return float(value) if value is not None else None


def recorded_metric(cfg: DictConfig) -> float | None:
    """``cfg.optimized_metric`` as the run's ``summary.json`` recorded it (a run already complete)."""
    metric = cfg.get("optimized_metric")
    value = read_summary(cfg.paths.output_dir).get(metric) if metric else None
    return float(value) if value is not None else None


def main() -> None:
    """``rlcamp-train`` as installed before its entry point moved to :func:`rlcamp.cli.train`
    (``pip install -e .`` updates the script); ``python -m rlcamp.train`` runs the same."""
    from rlcamp.cli import train as cli_train

    cli_train()


if __name__ == "__main__":
    main()
