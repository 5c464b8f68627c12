"""Partially observed tasks, where a policy must remember: classic control with velocities hidden
(rl-zoo's ``NoVel`` variants, ``hide_entries``) and POPGym's Repeat Previous (``RepeatPrevious``),
whose memoryless ceiling is known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlcamp.errors import ConfigError


def hide_entries(env: gym.Env, indices: Sequence[int]) -> gym.Env:
    """The env with the observation entries at ``indices`` removed (gymnasium's
    ``TransformObservation``): CartPole without its velocities hides 1 and 3, Pendulum 2."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"hide_entries takes a 1-D Box observation, not {space}; drop the wrapper")
    size = space.shape[0]
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise ConfigError(
            f"hide_entries indices {bad} are outside the {size} observation entries; pick from 0-{size - 1}"
        )
    keep = np.setdiff1d(np.arange(size), np.asarray(indices, dtype=np.int64))
    kept = gym.spaces.Box(space.low[keep], space.high[keep], dtype=space.dtype)
    return gym.wrappers.TransformObservation(env, lambda obs: obs[keep], kept)


class RepeatPrevious(gym.Env):
    """POPGym's Repeat Previous (Morad et al. 2023): each step shows one of ``n_cues`` cues (one-hot)
    and rewards naming the cue shown ``delay`` steps before, ``1/(length − delay)`` per correct
    answer, so an episode's return is the fraction named right (the first ``delay`` steps score 0).

    The cue to name is independent of what is on screen, so a memoryless policy's expected return is
    ``1/n_cues`` (0.25 by default), and a policy that remembers ``delay`` steps gets 1.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_cues: int = 4, delay: int = 2, length: int = 52) -> None:
        if not 0 < delay < length:
            raise ConfigError(f"RepeatPrevious delay={delay} must be in 1..length-1 ({length - 1}); lower it")
        self.n_cues, self.delay, self.length = n_cues, delay, length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n_cues,), np.float32)
        self.action_space = gym.spaces.Discrete(n_cues)
        self._cues = np.zeros(length, dtype=np.int64)
        self._t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_cues, dtype=np.float32)
        obs[self._cues[self._t]] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._cues = self.np_random.integers(self.n_cues, size=self.length)
        self._t = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        t = self._t
        right = t >= self.delay and int(action) == int(self._cues[t - self.delay])
        reward = 1.0 / (self.length - self.delay) if right else 0.0
        self._t += 1
        terminated = self._t == self.length
        if terminated:
            self._t -= 1  # the last observation repeats; the episode is over
        return self._obs(), reward, terminated, False, {}
