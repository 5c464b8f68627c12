"""Invalid-action masks an env reports in ``info`` (``env.action_mask=info:<key>``), moved into the
observation: the network reads a mask from one place, a ``Dict`` observation key, whichever way the
env reports it (``docs/algorithms.md``, "Masking")."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlcamp.errors import EnvError

# the key a non-Dict observation gets in the Dict an info mask makes of it
OBS_KEY = "obs"


def mask_space(action_space: gym.Space) -> gym.spaces.MultiBinary:
    """One flag per logit: ``n`` for ``Discrete(n)``, ``Σ nvec`` for ``MultiDiscrete(nvec)``."""
    if isinstance(action_space, gym.spaces.Discrete):
        return gym.spaces.MultiBinary(int(action_space.n))
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return gym.spaces.MultiBinary(int(action_space.nvec.sum()))
    raise EnvError(
        f"env.action_mask masks Discrete or MultiDiscrete actions, not {type(action_space).__name__}; "
        "set env.action_mask=null"
    )


class InfoActionMask(gym.Wrapper):
    """``obs → {**obs, key: info[key]}`` (a non-Dict ``obs`` becomes the ``obs`` key), at ``reset`` and
    every ``step``: the mask the next action is sampled under travels with its observation."""

    def __init__(self, env: gym.Env, key: str) -> None:
        super().__init__(env)
        space = env.observation_space
        spaces = dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {OBS_KEY: space}
        if key in spaces:
            raise EnvError(
                f"env.action_mask=info:{key}: the observation already has a key {key!r}; "
                f"use env.action_mask=obs:{key}"
            )
        self.key = key
        self.dict_obs = isinstance(space, gym.spaces.Dict)
        self.observation_space = gym.spaces.Dict({**spaces, key: mask_space(env.action_space)})

    def _with_mask(self, obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        if self.key not in info:
            raise EnvError(
                f"env.action_mask=info:{self.key}: the env's info has no {self.key!r} entry "
                f"(it has {sorted(info)}); name the info key that holds the mask"
            )
        base = dict(obs) if self.dict_obs else {OBS_KEY: obs}
        return {**base, self.key: np.asarray(info[self.key], dtype=np.int8)}

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._with_mask(obs, info), info

    def step(self, action: Any) -> tuple[dict[str, Any], Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_mask(obs, info), reward, terminated, truncated, info
