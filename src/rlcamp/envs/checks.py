"""The env recipe's checks that make no env and import no torch: its keys, its id, its kwargs, video
and the extras it needs. ``rlcamp-train`` runs them before importing torch and Lightning
(:func:`check_env_config`), and ``validate_run`` runs the same functions for a run started from
Python, so an unknown ``env.id`` is one line in about a second either way.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

import gymnasium as gym
import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from rlcamp.config_checks import check_node_keys
from rlcamp.envs.factory import VecEnvFactory, check_env_id, resolve_entry_point
from rlcamp.errors import VALIDATION_ERRORS, ConfigError, EnvError


def instantiate_checked(node: DictConfig) -> Any:
    """``hydra.utils.instantiate`` that lets rlcamp's one-line errors through unwrapped."""
    try:
        return hydra.utils.instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, VALIDATION_ERRORS):
            raise err.__cause__ from None
        raise


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


def check_env(cfg: DictConfig) -> VecEnvFactory:
    """The env recipe's fields, its id, its kwargs, video and the MuJoCo extra, without making an env."""
    factory: VecEnvFactory = instantiate_checked(cfg.env)
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


def check_env_config(cfg: DictConfig) -> None:
    """What ``rlcamp-train`` checks of the env before importing torch: the recipe's keys, then
    ``check_env``."""
    check_env_keys(cfg)
    check_env(cfg)
