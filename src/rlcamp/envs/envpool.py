"""EnvPool behind rlcamp's vector-env interface (``env.backend=envpool``).

EnvPool steps a batch of C++ envs in one call. It differs from the gymnasium path in three ways
that ``EnvPoolVectorEnv`` hides, so the collector and every algorithm run unchanged:

- **Autoreset.** EnvPool resets a finished sub-env on its *next* step (NEXT_STEP). Here the step
  that ends an episode steps the finished sub-envs once more at once (EnvPool's own reset step,
  ``step(actions, env_id=...)``) and returns their first observation, with the last one in
  ``info["final_obs"]`` (gymnasium's SAME_STEP). ``reset(env_id=...)`` gives the same trajectories
  on classic control and MuJoCo, but on Atari with ``episodic_life`` it restores the lives counter, so
  a game never ends: see docs/operations.md, "EnvPool backend".
- **Seeding.** EnvPool seeds its sub-envs when the pool is built. Sub-env ``i`` gets
  ``env_seed[i] = seed + i`` (EnvPool's own ``std::mt19937`` seeded with that integer), the same
  integers as gymnasium's ``reset(seed=seed)``; the random streams differ, the distributions do not.
  ``reset(seed=s)`` rebuilds the pool with seed ``s`` (a no-op for the freshly built pool).
- **Spaces.** gymnasium's spaces are presented: EnvPool's MuJoCo envs declare ``float64`` actions,
  gymnasium's ``float32`` (actions are cast back on the way in).

Ids are mapped explicitly (``GYMNASIUM_TO_ENVPOOL``): gymnasium's classic control and MuJoCo v5 ids
to EnvPool's task of the same name (EnvPool 1.2 ships v3/v4/v5 MuJoCo; only v5, gymnasium 1.x's
current set, is mapped). EnvPool marks a step truncated when the time limit is reached, also if the
env terminated on that very step (gymnasium then says terminated): such a step is bootstrapped.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rlcamp.errors import EnvError

GYMNASIUM_TO_ENVPOOL: dict[str, str] = {
    **{
        name: name
        for name in (
            "CartPole-v1",
            "Acrobot-v1",
            "MountainCar-v0",
            "MountainCarContinuous-v0",
            "Pendulum-v1",
        )
    },
    **{
        f"{name}-v5": f"{name}-v5"
        for name in (
            "Ant",
            "HalfCheetah",
            "Hopper",
            "Humanoid",
            "HumanoidStandup",
            "InvertedDoublePendulum",
            "InvertedPendulum",
            "Pusher",
            "Reacher",
            "Swimmer",
            "Walker2d",
        )
    },
}
"""gymnasium id -> EnvPool task id, for every env ``env.backend=envpool`` runs."""

RENDER_KWARGS = frozenset({"render_mode", "width", "height", "camera_id", "camera_name"})
# set by rlcamp (the pool itself, seeds, the time limit) or resolved by EnvPool in its own assets
RESERVED_KWARGS = frozenset({"xml_file", "max_episode_steps", "seed", "env_seed", "num_envs"})
INSTALL_HINT = "pip install -e '.[envpool]'"


@contextlib.contextmanager
def quiet_spaces() -> Iterator[None]:
    """Silence gymnasium's warning that EnvPool's float64 Box bounds are cast to the float32 dtype."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precision lowered.*")
        yield


def import_envpool() -> Any:
    """The ``envpool`` package, or a one-line error naming the extra to install."""
    try:
        return importlib.import_module("envpool")
    except ImportError as err:
        raise EnvError(f"env.backend=envpool needs EnvPool, which is not installed: {INSTALL_HINT}") from err


def envpool_task_id(env_id: str) -> str:
    """EnvPool's task id for a gymnasium id; a one-line error for custom or unported envs."""
    if ":" in env_id:
        raise EnvError(
            f"env.id={env_id} is a custom env; EnvPool runs only its own C++ ports: use env.backend=gymnasium"
        )
    if env_id not in GYMNASIUM_TO_ENVPOOL:
        raise EnvError(
            f"env.id={env_id} has no EnvPool port (env.backend=envpool runs "
            f"{', '.join(GYMNASIUM_TO_ENVPOOL)}); use env.backend=gymnasium"
        )
    return GYMNASIUM_TO_ENVPOOL[env_id]


def gymnasium_parameters(env_id: str) -> set[str]:
    """The constructor parameters of gymnasium's env class for ``env_id``."""
    entry_point = gym.spec(env_id).entry_point
    if isinstance(entry_point, str):
        module, attr = entry_point.split(":")
        entry_point = getattr(importlib.import_module(module), attr)
    return set(inspect.signature(entry_point).parameters)


def check_envpool_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Allow only env options that both gymnasium's env and EnvPool's port take (same name, same
    meaning), so a config means the same MDP on both backends; one-line error otherwise."""
    if not kwargs:
        return
    task_id = envpool_task_id(env_id)
    for key in kwargs:
        if key in RENDER_KWARGS:
            raise EnvError(
                f"env.kwargs.{key}: env.backend=envpool does not render; drop it (evaluation videos use "
                "gymnasium's env of the same id) or use env.backend=gymnasium"
            )
    shared = set(import_envpool().make_spec(task_id).config._fields) & gymnasium_parameters(env_id)
    shared -= RESERVED_KWARGS
    for key in kwargs:
        if key not in shared:
            raise EnvError(
                f"env.kwargs.{key} is not an option of EnvPool's {task_id} that gymnasium's also takes "
                f"({', '.join(sorted(shared)) or 'none'}); drop it or use env.backend=gymnasium"
            )


class EnvPoolVectorEnv(gym.vector.VectorEnv):
    """An EnvPool pool as a gymnasium ``VectorEnv`` with SAME_STEP autoreset and ``final_obs``.

    ``info["final_obs"]`` is a dense array (every sub-env's observation before the resets of this
    step; rows where ``info["_final_obs"]`` is False are the unchanged current observations), which
    ``rlcamp.envs.factory.final_observations`` reads like gymnasium's per-env array. In sync mode
    EnvPool returns the sub-envs in the order of the requested ``env_id``s (tests pin it).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, task_id: str, num_envs: int, seed: int, options: dict[str, Any] | None = None) -> None:
        """A pool of EnvPool's ``task_id`` built with ``options`` (checked by the caller, e.g.
        ``check_envpool_kwargs``); EnvPool picks its own threads (``num_threads=0``)."""
        self.task_id = task_id
        self.num_envs = num_envs
        self._options = dict(options or {})
        self._pool = self._build(seed)
        self._fresh = True  # built and not yet reset: reset(seed=its seed) need not rebuild it
        self._seed: int | Sequence[int] = seed
        self.single_observation_space = self._pool.observation_space
        self.single_action_space = self._gymnasium_action_space(self._pool.action_space)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._obs: np.ndarray | None = None

    def _build(self, seed: int | Sequence[int]) -> Any:
        env_seed = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
        if len(env_seed) != self.num_envs:
            raise EnvError(f"reset(seed=...) got {len(env_seed)} seeds for {self.num_envs} sub-envs")
        envpool = import_envpool()
        with quiet_spaces():
            pool = envpool.make_gymnasium(
                self.task_id, num_envs=self.num_envs, seed=env_seed[0], env_seed=env_seed, **self._options
            )
            pool.observation_space, pool.action_space  # noqa: B018 (EnvPool makes its spaces lazily)
        return pool

    @staticmethod
    def _gymnasium_action_space(space: gym.Space) -> gym.Space:
        """EnvPool's action space with gymnasium's dtype (``float32`` for Box, as ``gym.make`` has)."""
        if isinstance(space, gym.spaces.Box) and space.dtype != np.float32:
            return gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape)
        return space

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all sub-envs (a new ``seed`` rebuilds the pool), or those in ``options["reset_mask"]``."""
        mask = (options or {}).get("reset_mask")
        if mask is not None:
            if self._obs is None:
                raise EnvError("reset(options={'reset_mask': ...}) before the first full reset()")
            obs, info = self._pool.reset(env_id=np.flatnonzero(mask).astype(np.int32))
            info.pop("players", None)
            self._obs = self._obs.copy()
            self._obs[info["env_id"]] = obs
            return self._obs, info
        if seed is not None and not (self._fresh and seed == self._seed):
            self._pool.close()
            self._pool, self._seed = self._build(seed), seed
        self._fresh = False
        self._obs, info = self._pool.reset()
        info.pop("players", None)
        return self._obs, info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """One step of every sub-env; the ones that finished are reset now (SAME_STEP)."""
        obs, reward, terminated, truncated, info = self._pool.step(np.asarray(actions))
        info.pop("players", None)
        done = terminated | truncated
        if done.any():
            info["final_obs"], info["_final_obs"] = obs, done
            finished = np.flatnonzero(done).astype(np.int32)
            reset_obs, *_, reset_info = self._pool.step(np.asarray(actions)[finished], finished)
            obs = obs.copy()
            obs[reset_info["env_id"]] = reset_obs
        self._obs = obs
        return obs, reward.astype(np.float64, copy=False), terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"EnvPoolVectorEnv({self.task_id}, num_envs={self.num_envs})"
