"""Compose the project's Hydra config in tests without running the Hydra app."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from rlcamp.train import CONF_DIR


def compose_train(overrides: list[str], output_dir: Path | str) -> DictConfig:
    """``conf/train.yaml`` + overrides, with outputs in ``output_dir`` and no progress bar."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        if cfg.get("callbacks") and "progress" in cfg.callbacks:
            cfg.callbacks.progress = None
    return cfg


def config_options(group: str) -> list[str]:
    """The selectable options of a config group (files starting with ``_`` are bases)."""
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml") if not p.stem.startswith("_"))
