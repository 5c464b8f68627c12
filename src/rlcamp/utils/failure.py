"""How a job that failed ends: refused (the run folder left as it was), or recorded in its
``summary.json``; then NaN in a multirun, one line or the traceback in a single run.

Light on purpose (no torch): ``rlcamp-train`` ends a job its config checks refuse here before
importing torch, and :func:`rlcamp.train.run_job` ends every other failure the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rlcamp.errors import VALIDATION_ERRORS, RunDirBusyError
from rlcamp.utils.conf import algo_name
from rlcamp.utils.multirun import is_multirun
from rlcamp.utils.run_dir import hpc_checkpoint, restore_run_record
from rlcamp.utils.summary import ENDING_KEYS, read_summary, write_summary

log = logging.getLogger(__name__)


def is_refusal(cfg: DictConfig, error: Exception) -> bool:
    """The command was refused before it trained, over a run it must leave as it was: the folder is
    another process's, or a config error where a run already is (its summary, or the checkpoint of
    a run that crashed before writing one, or Lightning's ``hpc_ckpt``)."""
    output_dir = Path(cfg.paths.output_dir)
    existing_run = (
        (output_dir / "summary.json").exists()
        or (output_dir / "checkpoints").exists()
        or hpc_checkpoint(output_dir) is not None
    )
    return isinstance(error, RunDirBusyError) or (isinstance(error, VALIDATION_ERRORS) and existing_run)


def record_failure(cfg: DictConfig, error: Exception) -> None:
    """Write ``summary.json`` with ``status: failed`` and the error's first line.

    It keeps what ``summary.json`` already recorded (env steps, episodes, returns) and only sets
    its status and error.
    """
    output_dir = Path(cfg.paths.output_dir)
    message = str(error).splitlines()[0] if str(error) else ""
    summary = {
        "algo": algo_name(str(OmegaConf.select(cfg, "algo._target_", default=""))),
        "env_id": OmegaConf.select(cfg, "env.id"),
        "seed": cfg.get("seed"),
        "output_dir": str(output_dir),
        **{key: value for key, value in read_summary(output_dir).items() if key not in ENDING_KEYS},
        "status": "failed",
        "error": f"{type(error).__name__}: {message}",
    }
    write_summary(output_dir, summary)


def end_failed_job(cfg: DictConfig, error: Exception) -> float:
    """End the Hydra job that failed with ``error`` (called while it is being handled).

    In a multirun a failing job (a bad value, a diverged run) records ``status: failed`` and its
    error in its ``summary.json``, logs the traceback and returns NaN (Optuna marks the trial
    failed), so the other jobs still run. A single run exits with the one-line message for config
    errors, for a NaN/inf the env or the update produced (``FloatingPointError``) and for
    ``OSError`` (a full disk, naming the file), and re-raises anything else. A refused command
    (``is_refusal``) writes nothing and puts back the run's ``.hydra/`` record.
    """
    refused = is_refusal(cfg, error)
    if not refused:
        try:
            record_failure(cfg, error)
        except OSError as write_error:
            log.error("the failure could not be recorded: %s", write_error)
    if is_multirun():
        log.exception("job failed, continuing the sweep: %s", error)
    if refused:  # after the last log line: the job's log is part of the record
        restore_run_record(cfg.paths.output_dir)
    if is_multirun():
        return float("nan")
    if isinstance(error, (*VALIDATION_ERRORS, FloatingPointError)):
        raise SystemExit(f"rlcamp-train: error: {error}") from None
    if isinstance(error, OSError):
        raise SystemExit(
            f"rlcamp-train: error: {error}; free disk space or write elsewhere (paths.log_dir=...)"
        ) from None
    raise error
