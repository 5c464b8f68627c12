"""Build seeded vector envs from a config: gymnasium's (the default) or EnvPool's (``env.backend``).

Every vector env uses gymnasium's SAME_STEP autoreset: the step that ends an episode returns the
first observation of the next one, and the last observation of the finished episode sits in
``info["final_obs"]`` (needed to bootstrap ``V(s_T)`` when an episode is truncated).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import ClipAction, RecordEpisodeStatistics

from rlcamp.config_checks import check_env_recipe, parse_action_mask
from rlcamp.envs.envpool import EnvPoolVectorEnv, check_envpool_kwargs, envpool_task_id, import_envpool
from rlcamp.envs.masks import InfoActionMask
from rlcamp.errors import EnvError
from rlcamp.tree import tree_stack

SUPPORTED_ACTION_SPACES = (
    "Discrete (softmax policy), Box (Gaussian policy), MultiDiscrete (a softmax per component) and "
    "MultiBinary (a Bernoulli per entry)"
)
ACTION_SPACES = (gym.spaces.Discrete, gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
# id prefixes whose package registers its ids only when imported (gymnasium >= 1.0 dropped the
# entry-point plugins): a "MinAtar/Breakout-v0" id imports the module that registers it
PREFIX_MODULES = {"MinAtar/": "rlcamp.envs.minatar", "ALE/": "ale_py", "MiniGrid-": "rlcamp.envs.minigrid"}
INSTALL_EXTRAS = "run `make install` (or pip install -e '.[minatar,atari,minigrid]')"


def resolve_entry_point(env_id: str) -> str:
    """The registered gymnasium id an ``env.id`` names, importing what registers it.

    - ``module:EnvId`` (gymnasium's own form, e.g. ``ale_py:ALE/Pong-v5`` or a package of yours
      that registers on import): import ``module``, then the bare ``EnvId``;
    - ``module:Class`` with an ``Env`` subclass: registered as ``rlcamp/<Class>-v0``, so it gets the
      same wrappers as any registered env;
    - a plain id with a prefix in ``PREFIX_MODULES`` (``MinAtar/...``, ``MiniGrid-...``): that
      module is imported.
    """
    if ":" not in env_id:
        module = next((m for prefix, m in PREFIX_MODULES.items() if env_id.startswith(prefix)), None)
        if env_id not in gym.registry and module is not None:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise EnvError(
                    f"{env_id} needs the {err.name} package, not installed: {INSTALL_EXTRAS}"
                ) from err
        return env_id
    module_name, attr = env_id.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EnvError(f"env id {env_id!r}: cannot import module {module_name!r} ({err})") from err
    target = getattr(module, attr, None)
    if isinstance(target, type) and issubclass(target, gym.Env):
        new_id = f"rlcamp/{attr}-v0"
        if new_id not in gym.registry:
            gym.register(id=new_id, entry_point=target)
        return new_id
    return attr  # gymnasium's own "module:RegisteredId" form: the module registered it


def check_env_id(env_id: str) -> None:
    """Raise a one-line error for an unknown id, suggesting close registered names."""
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.pprint_registry()"
    raise EnvError(f"unknown env id {env_id!r}{hint}")


def check_action_space(env_id: str, space: gym.Space) -> None:
    """Raise a one-line error for an action space no head takes (a MultiDiscrete must be a flat
    ``nvec`` counting from 0)."""
    if not isinstance(space, ACTION_SPACES):
        raise EnvError(
            f"{env_id} has action space {type(space).__name__}; rlcamp supports {SUPPORTED_ACTION_SPACES}"
        )
    if isinstance(space, gym.spaces.MultiDiscrete) and (space.nvec.ndim != 1 or space.start.any()):
        raise EnvError(
            f"{env_id} has action space MultiDiscrete(nvec={space.nvec.tolist()}, "
            f"start={space.start.tolist()}); rlcamp's MultiDiscrete head takes a 1-D nvec with "
            "start 0: flatten the space or shift the actions with a gymnasium ActionWrapper"
        )


def make_single_env(
    env_id: str,
    render_mode: str | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
    **kwargs: Any,
) -> gym.Env:
    """Make one env by id (or ``module:Class``), apply ``wrappers`` in order, then flatten a
    ``Tuple`` or ``Discrete`` observation space to a vector; a ``Dict`` stays a dict (one encoder
    per key, ``rlcamp.nn.encoders.DictEncoder``)."""
    env_id = resolve_entry_point(env_id)
    check_env_id(env_id)
    try:
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as err:
        if "mujoco" in str(err).lower():
            raise EnvError(
                f"{env_id} needs MuJoCo: install the extra with `pip install -e '.[mujoco]'`"
            ) from err
        raise EnvError(f"{env_id}: {err}") from err
    check_action_space(env_id, env.action_space)
    for wrap in wrappers:
        env = wrap(env)
    if not isinstance(env.observation_space, (gym.spaces.Box, gym.spaces.Dict)):
        env = gym.wrappers.FlattenObservation(env)
    return env


@dataclass
class VecEnvFactory:
    """Config-driven recipe for a seeded vector env (``conf/env/*.yaml`` instantiate this).

    Observation normalization and reward scaling are done by the rollout collector, not here,
    so their statistics live in the LightningModule's state and travel with the checkpoint.
    ``backend="envpool"`` builds the vector env from EnvPool (``rlcamp.envs.envpool``) behind the
    same interface and wrappers; ``env_fn`` (evaluation, videos) stays gymnasium's single env.
    ``action_mask``: where the env reports invalid-action masks (``obs:<key>``, ``info:<key>``; an
    info mask is moved into a ``Dict`` observation, ``rlcamp.envs.masks``), or None.
    """

    id: str
    backend: str = "gymnasium"
    n_envs: int = 1
    vectorization: str = "sync"
    normalize_obs: bool = False
    normalize_reward: bool = False
    clip_obs: float = 10.0
    clip_reward: float = 10.0
    max_episode_steps: int | None = None
    nan_policy: str = "raise"
    kwargs: dict[str, Any] = field(default_factory=dict)
    action_mask: str | None = None
    # per-env wrappers of the env family (e.g. MinAtar's channels-first frames), innermost first
    wrappers: list[Callable[[gym.Env], gym.Env]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_env_recipe(vars(self))
        if self.backend == "envpool":
            if self.vectorization != "sync":
                raise EnvError(
                    "env.vectorization=async with env.backend=envpool: EnvPool steps its sub-envs in its "
                    "own threads; use env.vectorization=sync"
                )
            self.check_envpool()

    def check_envpool(self) -> None:
        """EnvPool is installed, ports this env, and takes its ``kwargs`` (one-line errors)."""
        envpool_task_id(self.id)
        import_envpool()
        check_envpool_kwargs(self.id, self.kwargs)

    def env_fn(self, render_mode: str | None = None, training: bool = False) -> Callable[[], gym.Env]:
        """A thunk that makes one sub-env (what gymnasium's vector envs take). ``training``: the
        training vector env's sub-env, which an env family may preprocess differently from the one
        evaluation plays (Atari's life-loss ends and reward clipping); the same env here."""
        kwargs = dict(self.kwargs)
        if self.max_episode_steps is not None:
            kwargs["max_episode_steps"] = self.max_episode_steps
        wrappers = list(self.wrappers)
        mask = parse_action_mask(self.action_mask)
        if mask is None or mask[0] == "obs":
            return lambda: make_single_env(self.id, render_mode=render_mode, wrappers=wrappers, **kwargs)
        return lambda: InfoActionMask(
            make_single_env(self.id, render_mode=render_mode, wrappers=wrappers, **kwargs), mask[1]
        )

    @property
    def action_mask_key(self) -> str | None:
        """The observation key that holds the action mask (an info mask's too, moved there), or None."""
        mask = parse_action_mask(self.action_mask)
        return None if mask is None else mask[1]

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        """Observation and action space of one sub-env, from a throwaway instance."""
        if self.backend == "envpool":
            pool = self._envpool(seed=0, n=1)
            pool.close()
            check_action_space(self.id, pool.single_action_space)
            return pool.single_observation_space, pool.single_action_space
        env = self.env_fn(training=True)()
        try:
            return env.observation_space, env.action_space
        finally:
            env.close()

    def __call__(self, seed: int, n_envs: int | None = None) -> gym.vector.VectorEnv:
        """Build the vector env, reset with sub-env seeds ``seed, seed+1, ...`` on first reset.

        The caller does the first ``reset(seed=seed)``; here the action space is seeded.
        ``copy=False``: observations returned by ``step`` are the vector env's own buffer, valid
        until the next step (the collector copies what it keeps).
        """
        n = n_envs or self.n_envs
        if self.backend == "envpool":
            env = self._envpool(seed, n)
        else:
            vec_cls = SyncVectorEnv if self.vectorization == "sync" else AsyncVectorEnv
            env = vec_cls(
                [self.env_fn(training=True) for _ in range(n)],
                autoreset_mode=AutoresetMode.SAME_STEP,
                copy=False,
            )
        env = self.record_episodes(env)
        if isinstance(env.single_action_space, gym.spaces.Box):
            env = ClipAction(env)
        env.action_space.seed(seed)
        return env

    def record_episodes(self, env: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
        """The wrapper whose ``info["episode"]`` the collector logs: each episode's return and length."""
        return RecordEpisodeStatistics(env, buffer_length=100)

    def _envpool(self, seed: int, n: int) -> EnvPoolVectorEnv:
        options = dict(self.kwargs)
        if self.max_episode_steps is not None:
            options["max_episode_steps"] = self.max_episode_steps
        return EnvPoolVectorEnv(envpool_task_id(self.id), n, seed, options)


def final_observations(info: dict[str, Any], mask: np.ndarray) -> Any:
    """Stack ``info["final_obs"]`` of the sub-envs selected by ``mask`` into one array (one per key
    for a ``Dict`` space, whose per-env observations are dicts)."""
    return tree_stack([info["final_obs"][i] for i in np.flatnonzero(mask)])
