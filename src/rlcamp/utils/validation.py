"""Check a composed run config before any vector env is built and before anything is written.

Every failure is one line that names the config key and the fix, raised as ``ConfigError``,
``EnvError`` or ``CheckpointError`` (all ``ValueError``). The order:

1. the trainer: ``trainer=gpu`` without CUDA;
2. the env recipe, statically: ``env.n_envs``, ``env.vectorization``, ``env.nan_policy``, an
   unknown ``env.id`` (with close registered names), a MuJoCo env without the ``mujoco`` extra;
3. the checkpoint to resume from: missing, corrupt, not loadable as plain data, not rlcamp's,
   or another run's (``check_same_run``: algorithm, network, env, ``n_envs``, seed, ...);
4. the algorithm's own hyperparameter checks (``OnPolicyAlgorithm.validate_hparams`` and each
   subclass's), then the spaces, from one throwaway single env: an action space the policy
   cannot use;
5. the checkpoint against the module: trained on other spaces, or with another network;
6. the output directory: it must not hold another run's ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.envs.factory import VecEnvFactory, check_env_id, resolve_entry_point
from rlcamp.errors import VALIDATION_ERRORS, ConfigError, EnvError
from rlcamp.utils.build import build
from rlcamp.utils.checkpoint import (
    check_output_dir,
    check_resumable,
    check_same_run,
    checkpoint_config,
    load_checkpoint,
    resolve_ckpt_path,
)


def _instantiate(node: DictConfig) -> Any:
    """``hydra.utils.instantiate`` that lets rlcamp's one-line errors through unwrapped."""
    try:
        return hydra.utils.instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, VALIDATION_ERRORS):
            raise err.__cause__ from None
        raise


def check_trainer(cfg: DictConfig) -> None:
    """``trainer.accelerator=gpu`` (``trainer=gpu``) needs a CUDA device that torch can use."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu")).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but torch {torch.__version__} sees no CUDA device; "
            "use trainer=cpu, or install a CUDA build of torch on a GPU machine"
        )


def check_env(cfg: DictConfig) -> VecEnvFactory:
    """The env recipe's fields, its id and the MuJoCo extra, without making an env."""
    factory: VecEnvFactory = _instantiate(cfg.env)
    try:
        env_id = resolve_entry_point(factory.id)
        check_env_id(env_id)
    except EnvError as err:
        raise EnvError(f"env.id: {err}") from None
    entry_point = str(gym.spec(env_id).entry_point)
    if entry_point.startswith("gymnasium.envs.mujoco") and importlib.util.find_spec("mujoco") is None:
        raise EnvError(
            f"env.id={factory.id} needs MuJoCo, which is not installed: pip install -e '.[mujoco]' "
            "(or pip install 'gymnasium[mujoco]')"
        )
    return factory


def check_checkpoint(path: Path) -> dict[str, Any]:
    """Load the checkpoint safely and make sure rlcamp-train wrote it."""
    checkpoint = load_checkpoint(path)
    checkpoint_config(checkpoint, path)
    return checkpoint


def validate_run(cfg: DictConfig) -> tuple[OnPolicyAlgorithm, Path | None, dict[str, Any] | None]:
    """All checks, in the order of the module docstring; returns the built module and the resume point.

    ``ckpt_path=last`` is resolved here (see ``resolve_ckpt_path``). Nothing is written and no
    vector env is built: the module's collector is made later, in ``setup``.
    """
    check_trainer(cfg)
    check_env(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    checkpoint = check_checkpoint(ckpt_path) if ckpt_path is not None else None
    if checkpoint is not None:
        check_same_run(cfg, checkpoint, ckpt_path)
    try:
        module = build(cfg)
    except EnvError as err:
        raise EnvError(f"env.id={cfg.env.id}: {err}") from None
    if checkpoint is not None:
        check_resumable(checkpoint, module, ckpt_path)
    check_output_dir(cfg.paths.output_dir, ckpt_path)
    return module, ckpt_path, checkpoint
