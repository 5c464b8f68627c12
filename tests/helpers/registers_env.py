"""A module that only registers an env on import, as ale_py and other env packages do."""

from __future__ import annotations

import gymnasium as gym

if "RegisteredOnImport-v0" not in gym.registry:
    gym.register(
        id="RegisteredOnImport-v0", entry_point="tests.helpers.envs:CountingEnv", max_episode_steps=5
    )
