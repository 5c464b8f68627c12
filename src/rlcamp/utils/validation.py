"""Check a composed run config before any vector env is built and before anything is written.

Every failure is one line that names the config key and the fix, raised as ``ConfigError``,
``EnvError`` or ``CheckpointError`` (all ``ValueError``). The checks that need no torch (seed, a
CPU-only torch asked for a GPU, the algorithm's keys and hyperparameters in
:mod:`rlcamp.config_checks`; the env recipe's keys, id, kwargs, video and extras in
:mod:`rlcamp.envs.checks`) are written there, and ``rlcamp-train`` runs them before importing
torch. The order:

0. the run's own keys and the env recipe's: ``seed`` (an integer in [0, 2**32 - 1]), ``num_threads``,
   a string or float where a number or an integer belongs, a key (added with ``+``) that the env
   recipe or (in 2.) the env does not take;
1. the trainer: ``trainer=gpu`` without CUDA;
2. the env recipe, statically: ``env.n_envs``, ``env.vectorization``, ``env.nan_policy``,
   ``env.max_episode_steps``, an unknown ``env.id`` (with close registered names), a MuJoCo env
   without the ``mujoco`` extra,
   ``env.kwargs.render_mode`` (rlcamp chooses it), ``callbacks.eval.video=true`` with an env that
   cannot render frames;
3. the checkpoint to resume from: missing, corrupt, not loadable as plain data, not rlcamp's,
   or another run's (``check_same_run``: algorithm, network, env, ``n_envs``, seed, ...); then the
   algorithm's keys and value types as in 0.;
4. the algorithm's own hyperparameter checks (``OnPolicyAlgorithm.validate_hparams`` and each
   subclass's), then the spaces, from one throwaway single env: an action space the policy
   cannot use, a rollout too large for this machine's memory;
5. the checkpoint against the module: trained on other spaces, or with another network;
6. the output directory: it must not hold another run's ``checkpoints/last.ckpt``, and it and
   ``checkpoints/`` must be writable (or creatable). The folder Hydra makes for the run is
   checked before Hydra makes it (``rlcamp.utils.run_dir.RunFolderCheck``, a Hydra callback);
7. a resume must have env steps left to train: else ``NothingToTrain`` (not an error, the run is
   complete).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from rlcamp.config_checks import check_node_keys, check_run_keys, no_cuda_error, wants_gpu
from rlcamp.envs.checks import check_env, check_env_keys
from rlcamp.errors import ConfigError, EnvError, NothingToTrain
from rlcamp.tree import tree_leaves
from rlcamp.utils.build import build
from rlcamp.utils.checkpoint import (
    check_output_dir,
    check_resumable,
    check_same_run,
    checkpoint_config,
    load_checkpoint,
    resolve_ckpt_path,
)
from rlcamp.utils.run_dir import check_folder
from rlcamp.utils.trust import targets_of


def check_algo_keys(cfg: DictConfig) -> None:
    """The algorithm's keys and value types (see ``check_node_keys``)."""
    try:
        algo_cls = hydra.utils.get_class(str(cfg.algo._target_))
    except Exception as err:
        raise ConfigError(f"algo._target_={cfg.algo._target_} is not an importable class") from err
    check_node_keys(cfg.algo, algo_cls, "algo", skip=("env", "network"))


def check_writable(cfg: DictConfig) -> None:
    """The run folder and ``checkpoints/`` must be writable or creatable (``check_folder``)."""
    dirs = [Path(cfg.paths.output_dir)]
    ckpt_dir = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath", default=None)
    if ckpt_dir is not None:
        dirs.append(Path(str(ckpt_dir)))
    for directory in dirs:
        check_folder(directory)


# what one transition holds during a rollout and its update: copies of its stored observation (the
# stored and the raw observation, and the copy the update's shuffle makes), float32 values per
# action entry (action and noise), and float32 values besides (reward, done, return, value,
# log-prob, advantage, target, ...): a generous estimate, to refuse sizes that cannot fit rather
# than budget exactly
OBS_COPIES, FLOATS_PER_ACTION_ENTRY, FLOATS_PER_TRANSITION = 3, 2, 12


def physical_memory_bytes() -> int | None:
    """This machine's physical memory (``None`` where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_rollout_memory(module: pl.LightningModule) -> None:
    """One rollout (``algo.n_steps`` x ``env.n_envs`` transitions) must fit in physical memory:
    refused in one line now, instead of an allocator traceback, or swapping, mid-run."""
    memory = physical_memory_bytes()
    if memory is None:
        return
    policy = module.policy
    obs_bytes = sum(  # uint8 frames: 1 a pixel; a Dict's keys summed
        int(np.prod(shape)) * dtype.itemsize
        for shape, dtype in zip(tree_leaves(policy.input_shape), tree_leaves(policy.input_dtype), strict=True)
    )
    action_entries = int(np.prod(policy.action_shape or (1,)))
    per_transition = OBS_COPIES * obs_bytes + 4 * (
        FLOATS_PER_ACTION_ENTRY * action_entries + FLOATS_PER_TRANSITION
    )
    needed = module.rollout_size * per_transition
    if needed > memory:
        raise ConfigError(
            f"a rollout of algo.n_steps={module.hparams.n_steps} x env.n_envs={module.env_factory.n_envs} "
            f"transitions needs about {needed / 2**30:.0f} GiB, more than this machine's "
            f"{memory / 2**30:.0f} GiB; lower algo.n_steps or env.n_envs"
        )


def check_trainer(cfg: DictConfig) -> None:
    """``trainer.accelerator=gpu`` (``trainer=gpu``) needs a CUDA device that torch can use."""
    accelerator = wants_gpu(cfg)
    if accelerator and not torch.cuda.is_available():
        raise no_cuda_error(accelerator, torch.__version__)


def check_checkpoint(path: Path, cfg: DictConfig) -> dict[str, Any]:
    """Load the checkpoint safely and make sure rlcamp-train wrote it; its config may name only the
    classes rlcamp's configs or this run's own config name."""
    checkpoint = load_checkpoint(path)
    checkpoint_config(checkpoint, path, trusted=targets_of(OmegaConf.to_container(cfg)))
    return checkpoint


def check_budget_left(cfg: DictConfig, checkpoint: dict[str, Any], path: Path) -> None:
    """A resume must have env steps left to train; else ``NothingToTrain`` (the run is complete)."""
    done, budget = int(checkpoint["rlcamp"].get("env_steps", 0)), cfg.algo.total_env_steps
    if done >= budget:
        raise NothingToTrain(
            f"{path} has already trained {done} env steps of total_env_steps={budget}: nothing to do "
            "(raise total_env_steps to train it longer)"
        )


def validate_run(cfg: DictConfig) -> tuple[pl.LightningModule, Path | None, dict[str, Any] | None]:
    """All checks, in the order of the module docstring; returns the built module and the resume point.

    ``ckpt_path=last`` is resolved here (see ``resolve_ckpt_path``). Nothing is written and no
    vector env is built: the module's collector is made later, in ``setup``.
    """
    check_run_keys(cfg)
    check_env_keys(cfg)
    check_trainer(cfg)
    check_env(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    checkpoint = check_checkpoint(ckpt_path, cfg) if ckpt_path is not None else None
    if checkpoint is not None:
        check_same_run(cfg, checkpoint, ckpt_path)
    check_algo_keys(cfg)
    try:
        module = build(cfg)
    except EnvError as err:
        raise EnvError(f"env.id={cfg.env.id}: {err}") from None
    check_rollout_memory(module)
    if checkpoint is not None:
        check_resumable(checkpoint, module, ckpt_path)
    check_output_dir(cfg.paths.output_dir, ckpt_path)
    check_writable(cfg)
    if checkpoint is not None:
        check_budget_left(cfg, checkpoint, ckpt_path)
    return module, ckpt_path, checkpoint
