"""Weights & Biases around Lightning's ``WandbLogger``: mode, names, x-axis, videos, clean finish.

``wandb`` is imported only where a W&B logger is in use.

- Without credentials (no ``WANDB_API_KEY``, no ``wandb login`` entry in ``~/.netrc``) and no
  explicit ``WANDB_MODE``, runs log offline and one line says how to upload them later; so they
  do with credentials when the W&B server cannot be reached (``server_unreachable``).
- Every metric is plotted against ``env_steps`` (``define_metric``).
- The runs of one Hydra multirun share a W&B group, so seeds aggregate in the UI.
"""

from __future__ import annotations

import logging
import netrc
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, open_dict

from rlcamp.utils.conf import algo_name

log = logging.getLogger(__name__)

WANDB_LOGGER = "pytorch_lightning.loggers.WandbLogger"
WANDB_DEFAULT_URL = "https://api.wandb.ai"
# how long the reachability check waits for the W&B server (wandb itself waits ~100 s, then fails)
WANDB_CONNECT_SECONDS = 5.0


def wandb_logger_configs(cfg: DictConfig) -> list[DictConfig]:
    """The entries of ``cfg.logger`` that build a ``WandbLogger``."""
    loggers = cfg.get("logger") or {}
    return [entry for entry in loggers.values() if entry and entry.get("_target_") == WANDB_LOGGER]


def has_credentials() -> bool:
    """True with ``WANDB_API_KEY`` set or a ``wandb login`` entry for the W&B host in the netrc file."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", WANDB_DEFAULT_URL)).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def server_unreachable(timeout: float = WANDB_CONNECT_SECONDS) -> str | None:
    """Why the W&B server (``WANDB_BASE_URL``) cannot be reached, or ``None`` if a TCP connection
    to it opens within ``timeout``. wandb has no quick check of its own: ``wandb.init`` retries for
    about 100 s and then fails the run."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", WANDB_DEFAULT_URL))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError as err:
        return f"cannot reach {url.geturl()} ({err.strerror or err})"
    return None


def sweep_group(task_name: str) -> str:
    """``<task_name>-<sweep timestamp>`` inside a Hydra multirun, else ``<task_name>``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return f"{task_name}-{Path(hydra_cfg.sweep.dir).name}"
    return task_name


def run_name(cfg: DictConfig) -> str:
    """``<algo>-<env id>-s<seed>``, e.g. ``ppo-CartPole-v1-s3``."""
    algo = algo_name(str(cfg.algo.get("_target_", "run")))
    return f"{algo}-{cfg.env.id}-s{cfg.seed}"


def setup_wandb(
    cfg: DictConfig, name: str | None = None, group: str | None = None, job_type: str = "train"
) -> None:
    """Prepare ``cfg.logger``'s W&B entries before they are instantiated.

    Null ``name``, ``group`` and ``job_type`` entries are filled in (defaults: :func:`run_name`,
    :func:`sweep_group`, ``job_type``), and offline mode is chosen, with a one-line notice, when
    there are no credentials or the server cannot be reached.
    """
    entries = wandb_logger_configs(cfg)
    if not entries:
        return
    for entry in entries:
        with open_dict(entry):
            if entry.get("group") is None:
                entry.group = group or sweep_group(cfg.get("task_name", "train"))
            if entry.get("name") is None:
                entry.name = name or run_name(cfg)
            if entry.get("job_type") is None:
                entry.job_type = job_type
    chosen = any(entry.get("offline") for entry in entries) or os.environ.get("WANDB_MODE")
    if chosen:
        return
    reason = (
        None if has_credentials() else "no WANDB_API_KEY (set it in .env or run `wandb login`)"
    ) or server_unreachable()
    if reason:
        for entry in entries:
            entry.offline = True
        save_dir = entries[0].get("save_dir") or "."
        log.warning(
            "W&B: %s, logging offline; upload later with: wandb sync %s/wandb/offline-run-*",
            reason,
            save_dir,
        )


def wandb_loggers(loggers: Iterable[Any]) -> list[Any]:
    """The ``WandbLogger`` instances among ``loggers``."""
    from pytorch_lightning.loggers import WandbLogger

    return [logger for logger in loggers if isinstance(logger, WandbLogger)]


def define_env_step_axis(loggers: Iterable[Any]) -> None:
    """Make ``env_steps`` the x-axis of every metric of every W&B run (starts the runs)."""
    for logger in wandb_loggers(loggers):
        run = logger.experiment
        run.define_metric("env_steps")
        run.define_metric("*", step_metric="env_steps", step_sync=True)


def log_video(loggers: Iterable[Any], key: str, path: str | Path, env_steps: int | None = None) -> None:
    """Upload an mp4 to every W&B run among ``loggers`` (under ``key``, at ``env_steps``)."""
    runs = [logger.experiment for logger in wandb_loggers(loggers)]
    if not runs:
        return
    import wandb

    row: dict[str, Any] = {key: wandb.Video(str(path), format="mp4")}
    if env_steps is not None:
        row["env_steps"] = env_steps
    for run in runs:
        run.log(row)


def log_summary(loggers: Iterable[Any], values: Mapping[str, Any]) -> None:
    """Write ``values`` into the summary of every W&B run among ``loggers``."""
    for logger in wandb_loggers(loggers):
        logger.experiment.summary.update(dict(values))


def finish_wandb(exit_code: int = 0) -> None:
    """Close the active W&B run so the next job of a sweep starts its own (no-op without one)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)
