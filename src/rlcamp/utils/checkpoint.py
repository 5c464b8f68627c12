"""rlcamp's run state in a checkpoint; load checkpoints without running code from them, rebuild
their module, prepare a resume."""

from __future__ import annotations

import csv
import logging
import pickle
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from rlcamp.errors import CheckpointError
from rlcamp.utils.distributed import rank_seed
from rlcamp.utils.rng import rng_state, set_rng_state
from rlcamp.utils.run_dir import hpc_checkpoint
from rlcamp.utils.trust import check_trusted_config

log = logging.getLogger(__name__)


def save_run_state(module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
    """Besides Lightning's weights, optimizer, LR schedule and loop state: rlcamp's run state.

    ``module`` is an ``OnPolicyAlgorithm``, typed by its Lightning base: ``utils/`` imports no ``algos/``.

    The resolved config, the spaces (checked on resume), env-step and episode counters, the
    episode-statistics window, the training time so far and the Python/NumPy/torch RNG states.
    With several ranks (every rank calls this; rank 0's dict is written) also every rank's RNG
    states (``rng_by_rank``), and ``episodes`` counts all ranks' episodes; the window is rank 0's.
    """
    stats = module.episode_stats.state()
    checkpoint["rlcamp"] = {
        "config": module.run_config,
        "spaces": module.env_spaces,
        "rng": rng_state(),
        "wall_seconds": module.clock.wall_seconds,
        "env_steps": module.env_steps,
        "episodes": stats["episodes"],
        "episode_window": {"returns": stats["returns"], "lengths": stats["lengths"]},
    }
    if module.world_size > 1:
        ranks: list[Any] = [None] * module.world_size
        torch.distributed.all_gather_object(ranks, (rng_state(), stats["episodes"]))
        checkpoint["rlcamp"]["rng_by_rank"] = [rng for rng, _ in ranks]
        checkpoint["rlcamp"]["episodes"] = sum(episodes for _, episodes in ranks)


def load_run_state(module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
    """Restore ``save_run_state``'s counters and episode statistics into ``module``.

    A resumed fit (the module has a trainer) also continues the random streams before Lightning's
    first dataloader ``iter()``; ``load_run`` (no trainer) leaves the caller's random state alone.
    On any world size rank ``r`` continues its own saved streams (``rng_by_rank``, else rank 0's
    ``rng``); a rank the checkpoint did not have starts fresh ones from ``(seed, rank, env_steps)``.
    Rank 0 takes the episode window and count, other ranks start empty, so the count summed over
    ranks is the run's.
    """
    state = checkpoint.get("rlcamp", {})
    module.env_steps = int(state.get("env_steps", 0))
    module.clock.seconds_before = float(state.get("wall_seconds", 0.0))
    rank = module.global_rank if module._trainer is not None else 0
    by_rank = state.get("rng_by_rank") or [state.get("rng")]
    if module._trainer is not None and rank < len(by_rank) and by_rank[rank] is not None:
        set_rng_state(by_rank[rank])
    elif module._trainer is not None and rank > 0:
        pl.seed_everything(rank_seed(module.hparams.seed, rank, module.env_steps), verbose=False)
    window = state.get("episode_window", {"returns": [], "lengths": []}) if rank == 0 else {}
    module.episode_stats.load_state(
        {"episodes": state.get("episodes", 0) if rank == 0 else 0, "returns": [], "lengths": [], **window}
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, never arbitrary pickles."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run dir>/checkpoints/last.ckpt"
        )
    if not zipfile.is_zipfile(path):  # torch.save's format; a text file or a bare pickle is not one
        raise CheckpointError(
            f"{path} is not a readable checkpoint (not a file torch.save wrote: truncated, corrupt or "
            "another kind of file); pass ckpt_path=<run dir>/checkpoints/last.ckpt"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} contains objects other than tensors and plain data; refusing to unpickle it "
            "(only load checkpoints you trust, and only rlcamp's own)"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {type(err).__name__})"
        ) from err


def checkpoint_config(
    checkpoint: dict[str, Any], path: str | Path = "checkpoint", trusted: Iterable[str] = ()
) -> DictConfig:
    """The resolved run config stored in an rlcamp checkpoint, once ``check_trusted_config`` has
    found nothing in it that rlcamp would not build itself (or that ``trusted`` does not name)."""
    config = checkpoint.get("rlcamp", {}).get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} was not written by rlcamp-train (no rlcamp config inside)")
    check_trusted_config(config, path, trusted)
    return OmegaConf.create(config)


def load_run(path: str | Path, trusted: Iterable[str] = ()) -> tuple[pl.LightningModule, DictConfig]:
    """Rebuild the module of a checkpoint with its weights and normalization statistics loaded.

    Only the classes rlcamp's configs name (and ``trusted``) are built: see ``rlcamp.utils.trust``.
    """
    from rlcamp.utils.build import build

    checkpoint = load_checkpoint(path)
    cfg = checkpoint_config(checkpoint, path, trusted)
    module = build(cfg)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{path} does not match the network its config builds: {str(err).splitlines()[0]}"
        ) from err
    module.on_load_checkpoint(checkpoint)
    return module, cfg


def latest_checkpoint(log_dir: str | Path, task_name: str, exclude: str | Path | None = None) -> Path | None:
    """The newest ``<log_dir>/<task_name>/runs/*/checkpoints/last.ckpt`` (by modification time)."""
    excluded = Path(exclude).resolve() if exclude is not None else None
    candidates = [
        path
        for path in Path(log_dir, task_name, "runs").glob("*/checkpoints/last.ckpt")
        if path.parent.parent.resolve() != excluded
    ]
    return max(candidates, key=lambda path: path.stat().st_mtime, default=None)


# overrides that a requeued job may change without becoming another job (its budget, where and
# how it logs, the hardware it runs on)
NOT_JOB_IDENTITY = (
    "ckpt_path",
    "total_env_steps",
    "num_threads",
    "tags",
    "callbacks",
    "logger",
    "trainer",
    "paths",
    "hydra",
    "resume",
)


def job_identity(overrides: list[str]) -> list[str]:
    """A multirun job's command-line overrides without the ``NOT_JOB_IDENTITY`` ones: what makes it
    this job of the sweep."""

    def key(override: str) -> str:
        return override.lstrip("+~").split("=", 1)[0]

    return sorted(
        o for o in overrides if not any(key(o) == k or key(o).startswith(k + ".") for k in NOT_JOB_IDENTITY)
    )


def latest_job_checkpoint(log_dir: str | Path, task_name: str, overrides: list[str]) -> Path | None:
    """The newest ``<log_dir>/<task_name>/multiruns/*/<job>/checkpoints/last.ckpt`` of the job whose
    ``.hydra/overrides.yaml`` holds the same overrides (``job_identity``): the same job of a sweep."""
    identity = job_identity(overrides)
    candidates = []
    for path in Path(log_dir, task_name, "multiruns").glob("*/*/checkpoints/last.ckpt"):
        saved = path.parent.parent / ".hydra" / "overrides.yaml"
        if saved.is_file() and job_identity(list(OmegaConf.load(saved))) == identity:
            candidates.append(path)
    return max(candidates, key=lambda path: path.stat().st_mtime, default=None)


def run_folder(ckpt_path: str | Path) -> Path:
    """The run folder a checkpoint belongs to: the one above ``checkpoints/``, or, for Lightning's
    ``hpc_ckpt_<n>.ckpt``, the one it lies in."""
    path = Path(ckpt_path)
    return path.parent if path.name.startswith("hpc_ckpt_") else path.parent.parent


def hydra_job_overrides() -> tuple[bool, list[str]]:
    """(is this a multirun job, its task overrides); (False, []) outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False, []
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.mode == RunMode.MULTIRUN, list(hydra_cfg.overrides.task)


def resolve_ckpt_path(cfg: DictConfig) -> Path | None:
    """``cfg.ckpt_path`` as a path; ``last`` is the newest ``last.ckpt`` of this run.

    ``last`` looks, in order, at the output directory's own ``checkpoints/last.ckpt`` (a requeued
    job with a fixed ``hydra.run.dir``, or a requeued multirun job), then its newest Lightning
    ``hpc_ckpt_<n>.ckpt`` (``hpc_checkpoint``), then, for a multirun job, the
    task's multirun jobs with the same overrides, else the task's newest ``runs/*``. Without any
    checkpoint it starts a fresh run (so a job script that always passes ``ckpt_path=last`` works
    for its first start and for every requeue).
    """
    value = cfg.get("ckpt_path")
    if value is None or str(value) == "":
        return None
    if str(value) != "last":
        return Path(str(value))
    own = Path(cfg.paths.output_dir, "checkpoints", "last.ckpt")
    multirun, overrides = hydra_job_overrides()
    hpc = hpc_checkpoint(cfg.paths.output_dir)
    if own.is_file():
        found: Path | None = own
    elif hpc is not None:
        log.warning(
            "ckpt_path=last: %s has no checkpoints/last.ckpt, resuming from Lightning's %s",
            own.parent.parent,
            hpc,
        )
        return hpc
    elif multirun:
        found = latest_job_checkpoint(cfg.paths.log_dir, cfg.task_name, overrides)
    else:
        found = latest_checkpoint(cfg.paths.log_dir, cfg.task_name, exclude=cfg.paths.output_dir)
    if found is None:
        log.warning(
            "ckpt_path=last: no checkpoint in %s or under %s/%s yet, starting a fresh run",
            cfg.paths.output_dir,
            cfg.paths.log_dir,
            cfg.task_name,
        )
    else:
        log.info("ckpt_path=last: resuming from %s", found)
    return found


def check_output_dir(output_dir: str | Path, ckpt_path: Path | None) -> None:
    """A run never starts over another run's ``checkpoints/last.ckpt`` in its output directory, and
    a fresh start never over a Lightning ``hpc_ckpt`` (Lightning would resume from it unasked)."""
    hpc = hpc_checkpoint(output_dir)
    if hpc is not None and ckpt_path is None:
        raise CheckpointError(
            f"{output_dir} holds Lightning's SLURM checkpoint {hpc.name}, which a fresh start would "
            "resume from unasked; resume it with ckpt_path=last or write elsewhere (another "
            "hydra.run.dir or task_name)"
        )
    own = Path(output_dir, "checkpoints", "last.ckpt")
    if own.is_file() and (ckpt_path is None or ckpt_path.resolve() != own.resolve()):
        raise CheckpointError(
            f"{output_dir} already holds a run ({own}); resume it with ckpt_path=last "
            "or write elsewhere (another hydra.run.dir or task_name)"
        )


# config keys (or subtrees) that make a run what it is: a resume that changes one of them would
# continue another experiment under this one's name. The optimizer is among them because its
# hyperparameters (lr, betas, ...) are restored from the checkpoint's optimizer state anyway.
RUN_IDENTITY = (
    "algo._target_",
    "algo.n_steps",
    "algo.optimizer",
    "env.id",
    "env.n_envs",
    "network",
    "seed",
)


def flat_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"algo.optimizer.lr": 0.001, ...}``: the leaves of a nested plain-data config."""
    if isinstance(config, dict):
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(flat_config(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: config}


# config keys added after checkpoints were written, with the value that does what those
# checkpoints' code did: a saved config without the key reads as having it (an old MLP run resumes)
ADDED_KEYS: dict[str, Any] = {
    "network.encoder._target_": "rlcamp.nn.encoders.FlattenEncoder",
    "network.encoder._partial_": True,
    "network.memory": "none",
    "network.memory_size": 128,
    "network.memory_shared": False,
}


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, current value)}`` for every leaf that differs (``None`` when absent;
    a key of ``ADDED_KEYS`` absent from ``saved`` reads as its value there)."""
    old, new = ADDED_KEYS | flat_config(saved), flat_config(current)
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


def is_identity_key(key: str) -> bool:
    return any(key == name or key.startswith(name + ".") for name in RUN_IDENTITY)


def follows_run_dir(change: tuple[Any, Any], saved_dir: str, current_dir: str) -> bool:
    """A value that moved with the run folder (``logger.csv.save_dir``, a callback's ``dirpath``):
    the same place relative to each run's output directory, so nothing the run reads changed."""
    old, new = change
    return (
        isinstance(old, str)
        and isinstance(new, str)
        and bool(saved_dir)
        and saved_dir in old
        and old.replace(saved_dir, current_dir) == new
    )


def another_run_fixes(cfg: DictConfig, path: str | Path, refused: list[str]) -> str:
    """The fixes of a refused resume that make sense: the checkpoint ``ckpt_path=last`` took from
    another folder is another run's, so name the run to resume or start fresh under another
    ``task_name``; a checkpoint named by hand or the folder's own may take a deliberate change."""
    own = Path(cfg.paths.output_dir, "checkpoints", "last.ckpt")
    if str(cfg.get("ckpt_path")) == "last" and Path(path).resolve() != own.resolve():
        return (
            f"ckpt_path=last took the newest checkpoint of task {cfg.task_name}; resume the run you mean "
            "with ckpt_path=<its run dir>/checkpoints/last.ckpt, or start a fresh run under another "
            "task_name (task_name=<name>)"
        )
    return (
        "resume with the checkpoint's settings, start a fresh run (a new task_name, or no ckpt_path), "
        f"or allow a deliberate change with resume.allow_changes=[{','.join(refused)}]"
    )


def check_same_run(cfg: DictConfig, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Refuse a resume whose config differs from the checkpoint's in a ``RUN_IDENTITY`` key.

    Keys listed in ``resume.allow_changes`` (a deliberate change) and all other keys (budget,
    loggers, callbacks, trainer, threads, paths, the algorithm's loss hyperparameters) may differ;
    the changes are logged, less the values that only moved with the run folder.
    """
    saved = checkpoint.get("rlcamp", {}).get("config") or {}
    current = OmegaConf.to_container(cfg, resolve=True)
    allowed = [str(key) for key in (OmegaConf.select(cfg, "resume.allow_changes", default=None) or [])]
    saved_dir = str((saved.get("paths") or {}).get("output_dir") or "")
    changes = {
        key: change
        for key, change in config_changes(saved, current).items()
        if not key.startswith(("paths.", "resume.", "ckpt_path", "hydra."))
        and not follows_run_dir(change, saved_dir, str(cfg.paths.output_dir))
    }
    refused = [
        key
        for key in changes
        if is_identity_key(key) and not any(key == a or key.startswith(a + ".") for a in allowed)
    ]
    if refused:
        listed = ", ".join(f"{key}: {changes[key][0]!r} -> {changes[key][1]!r}" for key in refused)
        raise CheckpointError(
            f"{path} belongs to another run ({listed}); {another_run_fixes(cfg, path, refused)}"
        )
    if changes:
        log.warning(
            "resuming %s with changed settings: %s",
            path,
            ", ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changes.items()),
        )


# an object's address in a repr ("<function f at 0x7f...>"), different in every process
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def comparable_spaces(spaces: dict[str, str]) -> dict[str, str]:
    """The stored space descriptions without object addresses: a space that holds a function
    (MiniGrid's ``MissionSpace``) prints its address, so the same env would read as another one."""
    return {key: ADDRESS.sub("", text) for key, text in spaces.items()}


def check_resumable(checkpoint: dict[str, Any], module: pl.LightningModule, path: str | Path) -> None:
    """The checkpoint was trained on the same spaces and its weights fit the configured network."""
    saved = checkpoint.get("rlcamp", {}).get("spaces")
    if saved is not None and comparable_spaces(saved) != comparable_spaces(module.env_spaces):
        config = checkpoint["rlcamp"].get("config") or {}
        env_id = config.get("env", {}).get("id", "another env")
        raise CheckpointError(
            f"{path} was trained on {env_id} (observation {saved['observation']}, "
            f"action {saved['action']}) but "
            f"env.id={module.env_factory.id} has observation {module.env_spaces['observation']}, action "
            f"{module.env_spaces['action']}; resume with the checkpoint's env or drop ckpt_path"
        )
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in checkpoint.get("state_dict", {}).items()}
    if found != expected:
        differing = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        raise CheckpointError(
            f"{path} does not match the network this config builds (first difference: {differing[0]}); "
            "resume with the checkpoint's algo and network settings or drop ckpt_path"
        )


def metrics_history(ckpt_path: str | Path, env_steps: int) -> list[tuple[int, dict[str, float]]]:
    """The rows of the checkpoint's run ``metrics.csv`` up to its ``env_steps``, as ``(step, metrics)``.

    Rows logged after the checkpoint (a run killed between two checkpoints) are left out: the
    resumed run logs those rollouts again. Unreadable rows (a line cut short or NUL bytes left by a
    full disk or a crash mid-append) are dropped with a warning that counts them. Empty without a
    ``metrics.csv`` next to ``checkpoints/``.
    """
    source = run_folder(ckpt_path) / "metrics.csv"
    if not source.is_file():
        return []
    lines = source.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)
    # a line holding NUL bytes, or without its newline (the last append, cut short), is damaged
    intact = [line for line in lines if line.endswith("\n") and "\0" not in line]
    unreadable = len(lines) - len(intact)
    header, *rows = list(csv.reader(intact)) or [[]]
    history = []
    for fields in rows:
        row = parse_metrics_row(header, fields)
        if row is None:
            unreadable += 1
        elif row[0] <= env_steps:
            history.append(row)
    if unreadable:
        log.warning("%s: dropped %d unreadable row(s) (cut short or corrupt)", source, unreadable)
    return history


def parse_metrics_row(header: list[str], fields: list[str]) -> tuple[int, dict[str, float]] | None:
    """``(step, metrics)`` of one ``metrics.csv`` row, or None when it has the wrong number of
    fields or a value that is not a number."""
    if len(fields) != len(header) or "step" not in header:
        return None
    try:
        values = {key: float(value) for key, value in zip(header, fields, strict=True) if value != ""}
        return int(values.pop("step")), values
    except (KeyError, ValueError):
        return None


def replay_metrics(loggers: list[Any], history: list[tuple[int, dict[str, float]]]) -> None:
    """Write a resumed run's earlier rows into its CSV loggers, so ``metrics.csv`` holds the whole run."""
    from pytorch_lightning.loggers import CSVLogger

    for logger in loggers:
        if isinstance(logger, CSVLogger) and history:
            for step, metrics in history:
                logger.log_metrics(metrics, step=step)
            logger.save()
