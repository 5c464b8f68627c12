"""Build an algorithm module from a composed config (shared by train, eval and resume)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

if TYPE_CHECKING:
    from rlcamp.algos.base import OnPolicyAlgorithm


def build(cfg: DictConfig) -> OnPolicyAlgorithm:
    """Instantiate the algorithm module (with its env recipe and policy network) from ``cfg``.

    The algo config is instantiated as a partial and then called, so the env recipe and the
    network factory reach the module as Python objects rather than being merged into the config.
    """
    env = hydra.utils.instantiate(cfg.env)
    network = hydra.utils.instantiate(cfg.network)
    algo = hydra.utils.instantiate(cfg.algo, _partial_=True)
    return algo(env=env, network=network)
