"""Build an algorithm module, and the list-like groups (loggers, callbacks), from a composed config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from rlcamp.utils.conf import CONF_DIR

# the config nodes ``build`` instantiates: all that rebuilding a checkpoint's module builds
MODULE_NODES = ("env", "network", "algo")


def compose_config(overrides: list[str], output_dir: str | Path, config_name: str = "train") -> DictConfig:
    """``conf/<config_name>.yaml`` + ``overrides`` composed outside a Hydra app (scripts, tests),
    writing to ``output_dir``: the config ``rlcamp-train`` (``config_name="eval"``: ``rlcamp-eval``)
    would run with those overrides."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def build(cfg: DictConfig) -> pl.LightningModule:
    """Instantiate the algorithm module (with its env recipe and policy network) from ``cfg``.

    The algo config is instantiated as a partial and then called, so the env recipe and the
    network factory reach the module as Python objects rather than being merged into the config;
    the module keeps the whole resolved config for its checkpoints.
    """
    env = hydra.utils.instantiate(cfg.env)
    network = hydra.utils.instantiate(cfg.network)
    algo = hydra.utils.instantiate(cfg.algo, _partial_=True)
    return algo(env=env, network=network, run_config=OmegaConf.to_container(cfg, resolve=True))


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group that has a ``_target_`` (nulls are skipped)."""
    if not group:
        return []
    return [hydra.utils.instantiate(entry) for entry in group.values() if entry and "_target_" in entry]
