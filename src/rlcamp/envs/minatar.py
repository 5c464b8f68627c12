"""MinAtar (Young & Tian 2019): five Atari games on a 10×10 grid of 0/1 channels, for CPUs.

``minatar`` (GPL-3.0) is an optional extra (``pip install -e '.[minatar]'``). Its gymnasium ids
(``MinAtar/<Game>-v1``: the minimal action set, rlcamp's configs; ``-v0``: all 6 actions, as the
paper) register only through a setuptools entry point that gymnasium ≥ 1.0 no longer loads, so
importing this module registers them (``rlcamp.envs.factory`` imports it for a ``MinAtar/`` id). The game's
defaults are the paper's: sticky actions 0.1, difficulty ramping, no frame skip, no time limit
(Freeway ends itself after 2500 frames). ``channels_first`` turns its ``bool [10, 10, C]``
observations into the ``uint8 [C, 10, 10]`` images rlcamp's CNN encoders take.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TransformObservation

from rlcamp.errors import EnvError

GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")


def register() -> None:
    """Register ``MinAtar/<Game>-v0/v1`` with gymnasium (once); a one-line error without the extra."""
    if "MinAtar/Breakout-v1" in gym.registry:
        return
    try:
        import minatar.gym
    except ImportError as err:
        raise EnvError(
            "MinAtar ids need the minatar package (GPL-3.0, optional): pip install -e '.[minatar]'"
        ) from err
    minatar.gym.register_envs()


def channels_first(env: gym.Env) -> gym.Env:
    """``bool [H, W, C]`` → ``uint8 [C, H, W]`` (gymnasium's ``TransformObservation``)."""
    height, width, channels = env.observation_space.shape
    space = gym.spaces.Box(0, 1, (channels, height, width), np.uint8)
    return TransformObservation(
        env, lambda obs: np.ascontiguousarray(np.moveaxis(obs, -1, 0), np.uint8), space
    )


register()
