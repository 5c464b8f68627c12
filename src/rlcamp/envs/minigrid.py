"""MiniGrid (Chevalier-Boisvert et al. 2023): partially observed grid worlds with a ``Dict``
observation, for CPUs.

``minigrid`` (Apache-2.0) is an optional extra (``pip install -e '.[minigrid]'``); importing this
module registers its ``MiniGrid-*`` ids (``rlcamp.envs.factory`` imports it for such an id). Its
observation is ``Dict(direction: Discrete(4), image: uint8 [7, 7, 3], mission: Text)``: the image
holds each visible cell's object, colour and state indices; ``channels_first`` makes it
``uint8 [3, 7, 7]`` for rlcamp's CNN encoders, and ``network=minigrid_cnn`` reads the direction and
the image, leaving the mission text out (``network.obs_keys``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TransformObservation

from rlcamp.errors import EnvError


def register() -> None:
    """Import ``minigrid``, which registers its ids; a one-line error without the extra."""
    try:
        import minigrid  # noqa: F401
    except ImportError as err:
        raise EnvError(
            "MiniGrid ids need the minigrid package (Apache-2.0, optional): pip install -e '.[minigrid]'"
        ) from err


def channels_first(env: gym.Env) -> gym.Env:
    """The ``image`` key ``uint8 [H, W, C]`` → ``uint8 [C, H, W]``; the other keys as they are."""
    image = env.observation_space["image"]
    height, width, channels = image.shape
    spaces = dict(env.observation_space.spaces)
    spaces["image"] = gym.spaces.Box(0, int(image.high.max()), (channels, height, width), np.uint8)

    def transpose(obs: dict) -> dict:
        return {**obs, "image": np.ascontiguousarray(np.moveaxis(obs["image"], -1, 0))}

    return TransformObservation(env, transpose, gym.spaces.Dict(spaces))


register()
