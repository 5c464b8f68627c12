"""``rlcamp-train``: compose the Hydra config, build env → policy → algorithm, fit, summarize.

    rlcamp-train algo=ppo env=hopper seed=3
    rlcamp-train -m algo.optimizer.lr=1e-3,3e-4 seed=1,2,3
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from dotenv import load_dotenv
from omegaconf import DictConfig, OmegaConf

from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.utils.build import build
from rlcamp.utils.instantiate import instantiate_group
from rlcamp.utils.summary import write_summary

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
log = logging.getLogger(__name__)


def quiet_libraries() -> None:
    """Silence start-up chatter that says nothing about the run."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning_fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__` defined.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MUJOCO_GL", "egl")


def train(cfg: DictConfig) -> tuple[dict[str, Any], OnPolicyAlgorithm]:
    """Train one run and write ``summary.json``; returns (summary, module)."""
    quiet_libraries()
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)

    module = build(cfg)
    module.run_config = OmegaConf.to_container(cfg, resolve=True)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    start = time.perf_counter()
    trainer.fit(module, ckpt_path=cfg.get("ckpt_path"))
    wall = time.perf_counter() - start

    stats = module.collector.stats if module.collector else None
    summary = {
        "status": "completed",
        "algo": type(module).__name__.lower(),
        "env_id": module.env_factory.id,
        "seed": cfg.seed,
        "env_steps": module.env_steps,
        "episodes": stats.episodes if stats else module.last_metrics.get("rollout/episodes"),
        "ep_return_mean": module.last_metrics.get("rollout/ep_return_mean"),
        "wall_seconds": wall,
        "steps_per_second": module.env_steps / wall if wall > 0 else None,
        "output_dir": str(output_dir),
    }
    write_summary(output_dir, summary)
    log.info("summary: %s", summary)
    return summary, module


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    """One Hydra job; returns ``cfg.optimized_metric`` for sweepers (Optuna)."""
    summary, module = train(cfg)
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    value = module.last_metrics.get(metric, summary.get(metric))
    return float(value) if value is not None else None


def main() -> None:
    """``rlcamp-train``: load ``.env`` (secrets stay in the environment), then run Hydra."""
    load_dotenv(override=False)
    hydra_main()


if __name__ == "__main__":
    main()
