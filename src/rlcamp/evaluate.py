"""``rlcamp-eval``: run a trained policy for N episodes, report its return, record videos.

    rlcamp-eval ckpt_path=logs/train/runs/<ts>/checkpoints/last.ckpt n_episodes=20 video=true

The policy is rebuilt from the checkpoint's own resolved config with its weights and its
observation-normalization statistics, which stay frozen. Outputs go to ``logs/eval/runs/<ts>/``:
``eval.json`` and ``videos/*.mp4`` (gymnasium's ``RecordVideo``; headless rendering needs
``SDL_VIDEODRIVER=dummy`` for classic control and ``MUJOCO_GL=egl`` for MuJoCo, both set here).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import hydra
import torch
from dotenv import find_dotenv, load_dotenv
from omegaconf import DictConfig, OmegaConf

from rlcamp.rollout.evaluation import evaluate_policy
from rlcamp.utils.build import CONF_DIR

log = logging.getLogger(__name__)


def check_eval(cfg: DictConfig) -> None:
    """``ckpt_path`` given, ``n_episodes`` and ``max_episode_steps`` integers >= 1, ``device`` one
    that torch can use."""
    from rlcamp.errors import ConfigError

    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise ConfigError("ckpt_path is required: rlcamp-eval ckpt_path=<run dir>/checkpoints/last.ckpt")
    n = cfg.n_episodes
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n_episodes={n!r}: evaluate at least 1 episode (an integer, e.g. n_episodes=20)")
    cap = cfg.max_episode_steps
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise ConfigError(
            f"max_episode_steps={cap!r}: cap episodes at 1 step or more "
            "(an integer, e.g. max_episode_steps=10000)"
        )
    try:
        device = torch.device(str(cfg.device))
    except RuntimeError:
        raise ConfigError(
            f"device={cfg.device!r} is not a torch device; use device=cpu or device=cuda"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={cfg.device} but torch {torch.__version__} sees no CUDA device; use device=cpu"
        )


def check_finite_weights(module: torch.nn.Module, path: str | Path) -> None:
    """A checkpoint with NaN/inf weights would report a meaningless return: refuse it."""
    from rlcamp.errors import CheckpointError

    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not tensor.isfinite().all():
            raise CheckpointError(
                f"{path} holds non-finite weights ({name}); evaluate an earlier checkpoint of that run"
            )


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    """Load ``cfg.ckpt_path``, evaluate, write ``eval.json`` (and videos); returns its content."""
    from rlcamp.envs.checks import check_renders_frames
    from rlcamp.train import quiet_libraries
    from rlcamp.utils.build import instantiate_group
    from rlcamp.utils.checkpoint import load_run
    from rlcamp.utils.conf import algo_name
    from rlcamp.utils.wandb import (
        define_env_step_axis,
        finish_wandb,
        log_summary,
        log_video,
        run_name,
        setup_wandb,
    )

    quiet_libraries()
    check_eval(cfg)
    output_dir = Path(cfg.paths.output_dir)
    module, run_cfg = load_run(cfg.ckpt_path, trusted=cfg.get("trusted_targets") or ())
    check_finite_weights(module, cfg.ckpt_path)
    if cfg.video:
        check_renders_frames(module.env_factory.id, "video")
    module.to(cfg.device)
    video_dir = output_dir / "videos" if cfg.video else None
    result = evaluate_policy(
        module.policy,
        module.env_factory,
        n_episodes=cfg.n_episodes,
        deterministic=cfg.deterministic,
        seed=cfg.seed,
        video_dir=video_dir,
        video_episodes=cfg.video_episodes,
        max_episode_steps=cfg.max_episode_steps,
    )
    metrics = result.metrics()
    report = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "env_id": module.env_factory.id,
        "algo": algo_name(str(run_cfg.algo._target_)),
        "train_seed": run_cfg.get("seed"),
        "train_env_steps": module.env_steps,
        "n_episodes": cfg.n_episodes,
        "deterministic": cfg.deterministic,
        "seed": cfg.seed,
        "return_mean": metrics["eval/return_mean"],
        "return_std": metrics["eval/return_std"],
        "return_min": min(result.returns),
        "return_max": max(result.returns),
        "ep_len_mean": metrics["eval/ep_len_mean"],
        "returns": result.returns,
        "lengths": result.lengths,
        "videos": result.videos,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")

    setup_wandb(
        cfg,
        name=f"{run_name(run_cfg)}-eval",
        group=OmegaConf.select(run_cfg, "logger.wandb.group"),
        job_type="eval",
    )
    loggers = instantiate_group(cfg.get("logger"))
    define_env_step_axis(loggers)
    for logger in loggers:
        logger.log_hyperparams(
            {"eval": OmegaConf.to_container(cfg, resolve=True), "run": OmegaConf.to_container(run_cfg)}
        )
        logger.log_metrics({"env_steps": module.env_steps, **metrics}, step=module.env_steps)
        logger.save()
    for video in result.videos:
        log_video(loggers, "eval/video", video, module.env_steps)
    log_summary(loggers, metrics)
    finish_wandb()

    mode = "deterministic" if cfg.deterministic else "stochastic"
    print(
        f"{report['env_id']}: return {report['return_mean']:.2f} ± {report['return_std']:.2f} "
        f"over {cfg.n_episodes} {mode} episodes "
        f"(min {report['return_min']:.2f}, max {report['return_max']:.2f})"
    )
    print(
        f"wrote {output_dir / 'eval.json'}"
        + (f" and {len(result.videos)} video(s) in {video_dir}" if video_dir else "")
    )
    return report


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    from rlcamp.errors import VALIDATION_ERRORS

    try:
        run_eval(cfg)
    except VALIDATION_ERRORS as err:
        raise SystemExit(f"rlcamp-eval: {err}") from None


def main() -> None:
    """``rlcamp-eval``: load ``.env``, set headless rendering defaults, run Hydra."""
    load_dotenv(find_dotenv(usecwd=True), override=False)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MUJOCO_GL", "egl")
    hydra_main()


if __name__ == "__main__":
    main()
