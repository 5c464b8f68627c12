"""Compose the project's Hydra config in tests without running the Hydra app."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict

from rlcamp.utils.build import CONF_DIR, compose_config


def compose_train(overrides: list[str], output_dir: Path | str) -> DictConfig:
    """``conf/train.yaml`` + overrides, with outputs in ``output_dir`` and no progress bar."""
    return without_progress_bar(compose_config(overrides, output_dir))


def without_progress_bar(cfg: DictConfig) -> DictConfig:
    """``cfg`` with its progress-bar callback switched off (tests print nothing per rollout)."""
    with open_dict(cfg):
        if cfg.get("callbacks") and "progress" in cfg.callbacks:
            cfg.callbacks.progress = None
    return cfg


def compose_eval(overrides: list[str], output_dir: Path | str) -> DictConfig:
    """``conf/eval.yaml`` + overrides, as ``rlcamp-eval`` would run it, writing to ``output_dir``."""
    return compose_config(overrides, output_dir, config_name="eval")


def config_options(group: str) -> list[str]:
    """The selectable options of a config group (files starting with ``_`` are bases)."""
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml") if not p.stem.startswith("_"))
