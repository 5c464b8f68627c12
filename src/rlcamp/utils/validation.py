"""Check a composed run config before any vector env is built and before anything is written.

Every failure is one line that names the config key and the fix, raised as ``ConfigError``,
``EnvError`` or ``CheckpointError`` (all ``ValueError``). The checks that the config alone
decides (seed, the env recipe's values, the algorithm's hyperparameters) are written in
:mod:`rlcamp.config_checks`, which ``rlcamp-train`` runs before importing torch. The order:

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

import difflib
import importlib.util
import inspect
import os
import types
import typing
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from rlcamp.config_checks import check_run_keys, require_number
from rlcamp.envs.factory import VecEnvFactory, check_env_id, resolve_entry_point
from rlcamp.errors import VALIDATION_ERRORS, ConfigError, EnvError, NothingToTrain
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


def _instantiate(node: DictConfig) -> Any:
    """``hydra.utils.instantiate`` that lets rlcamp's one-line errors through unwrapped."""
    try:
        return hydra.utils.instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, VALIDATION_ERRORS):
            raise err.__cause__ from None
        raise


def init_parameters(cls: type) -> dict[str, Any]:
    """``{name: type hint}`` of the keyword parameters ``cls(...)`` takes, through ``**kwargs``
    passed up its base classes (``Any`` where a hint cannot be resolved)."""
    params: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # a hint naming a type only imported for type checking
            hints = {}
        signature = inspect.signature(init)
        for name, param in signature.parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                params.setdefault(name, hints.get(name, Any))
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return params


def check_value_type(key: str, value: Any, hint: Any) -> None:
    """A value typed ``int`` / ``float`` (or ``X | None``) in the signature must be one."""
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else ()
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if len(args) == 2 and optional else hint
    if value is None and optional:
        return
    if base in (int, float):
        require_number(key, value, integer=base is int)


def check_node_keys(node: DictConfig, cls: type, group: str, skip: tuple[str, ...] = ()) -> None:
    """Every key of config group ``group`` is a parameter of ``cls``, with a value of its type."""
    params = init_parameters(cls)
    for key in node:
        if str(key).startswith("_") or key in skip:
            continue
        if key not in params:
            close = ", ".join(difflib.get_close_matches(str(key), list(params), n=3)) or ", ".join(
                sorted(params)
            )
            raise ConfigError(f"{group}.{key} is not a setting of {cls.__name__}; did you mean: {close}")
        check_value_type(f"{group}.{key}", node[key], params[key])


def env_factory_class(cfg: DictConfig) -> type:
    """The class ``env._target_`` names (an env family's ``VecEnvFactory``, e.g. Atari's); a one-line
    error for anything else."""
    target = str(OmegaConf.select(cfg, "env._target_", default="rlcamp.envs.VecEnvFactory"))
    try:
        cls = hydra.utils.get_class(target)
    except Exception as err:
        raise ConfigError(f"env._target_={target} is not an importable class") from err
    if not (isinstance(cls, type) and issubclass(cls, VecEnvFactory)):
        raise ConfigError(
            f"env._target_={target} is not a VecEnvFactory (rlcamp.envs.VecEnvFactory or a subclass)"
        )
    return cls


def check_env_keys(cfg: DictConfig) -> None:
    """The env recipe's keys and value types (see ``check_node_keys``) for the factory class
    ``env._target_`` names; its values are that class's to check (``check_env_recipe``)."""
    check_node_keys(cfg.env, env_factory_class(cfg), "env")


def check_algo_keys(cfg: DictConfig) -> None:
    """The algorithm's keys and value types (see ``check_node_keys``)."""
    try:
        algo_cls = hydra.utils.get_class(str(cfg.algo._target_))
    except Exception as err:
        raise ConfigError(f"algo._target_={cfg.algo._target_} is not an importable class") from err
    check_node_keys(cfg.algo, algo_cls, "algo", skip=("env", "network"))


def env_class(env_id: str) -> Any:
    """The class (or factory) a registered env id's entry point names, without making an env."""
    entry_point = gym.spec(env_id).entry_point
    return (
        hydra.utils.get_object(entry_point.replace(":", ".")) if isinstance(entry_point, str) else entry_point
    )


def takes_keyword(function: Any, name: str) -> bool:
    """Whether ``function(name=...)`` is accepted (a parameter ``name`` or ``**kwargs``)."""
    parameters = inspect.signature(function).parameters
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def check_env_kwargs(factory: VecEnvFactory, env_id: str) -> None:
    """``env.kwargs`` the env's constructor does not take (unless it takes ``**kwargs``), and
    ``render_mode``, which rlcamp sets itself (frames for videos, none for training)."""
    if "render_mode" in factory.kwargs:
        raise EnvError(
            "env.kwargs.render_mode is chosen by rlcamp (rgb_array frames for videos, none for training); "
            "drop it and film with callbacks.eval.video=true or rlcamp-eval video=true"
        )
    if not factory.kwargs:
        return
    env_cls = env_class(env_id)
    signature = inspect.signature(env_cls)
    for key in factory.kwargs:
        if not takes_keyword(env_cls, key):
            raise EnvError(
                f"env.kwargs.{key} is not a parameter of {env_id} (it takes: "
                f"{', '.join(signature.parameters) or 'nothing'}); drop it"
            )


def check_renders_frames(env_id: str, key: str) -> None:
    """``<key>=true`` films the env: it must take ``render_mode`` and offer ``rgb_array`` frames."""
    env_cls = env_class(resolve_entry_point(env_id))
    modes = getattr(env_cls, "metadata", {}).get("render_modes", [])
    if not takes_keyword(env_cls, "render_mode") or "rgb_array" not in modes:
        raise EnvError(
            f"{key}=true but {env_id} cannot render rgb_array frames "
            f"(no render_mode parameter or mode); set {key}=false"
        )


def check_video(cfg: DictConfig, env_id: str) -> None:
    """``callbacks.eval.video=true`` (with evaluation on) needs an env that renders frames, found
    now rather than at the first evaluation."""
    node = OmegaConf.select(cfg, "callbacks.eval", default=None)
    if node and node.get("video") and node.get("every_env_steps") is not None:
        check_renders_frames(env_id, "callbacks.eval.video")


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
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu")).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but torch {torch.__version__} sees no CUDA device; "
            "use trainer=cpu, or install a CUDA build of torch on a GPU machine"
        )


def check_env(cfg: DictConfig) -> VecEnvFactory:
    """The env recipe's fields, its id, its kwargs, video and the MuJoCo extra, without making an env."""
    factory: VecEnvFactory = _instantiate(cfg.env)
    try:
        env_id = resolve_entry_point(factory.id)
        check_env_id(env_id)
    except EnvError as err:
        raise EnvError(f"env.id: {err}") from None
    check_env_kwargs(factory, env_id)
    check_video(cfg, env_id)
    entry_point = str(gym.spec(env_id).entry_point)
    if entry_point.startswith("gymnasium.envs.mujoco") and importlib.util.find_spec("mujoco") is None:
        raise EnvError(
            f"env.id={factory.id} needs MuJoCo, which is not installed: pip install -e '.[mujoco]' "
            "(or pip install 'gymnasium[mujoco]')"
        )
    return factory


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
