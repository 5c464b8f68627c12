"""Periodic evaluation of the training policy on separate envs, logged at ``env_steps``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl

from rlcamp.callbacks.checkpoint import pending_signal
from rlcamp.rollout.evaluation import DEFAULT_MAX_EPISODE_STEPS, evaluate_policy
from rlcamp.utils.wandb import log_video

log = logging.getLogger(__name__)


class PeriodicEval(pl.Callback):
    """Every ``every_env_steps`` env steps (and once at the end), play ``n_episodes`` episodes.

    The episodes run on a fresh single env built from the run's env recipe, apart from the
    training envs, seeded ``seed, seed + 1, ...`` at every evaluation so successive evaluations
    are comparable. Observations use the training policy's normalization statistics without
    updating them. Logs ``eval/return_mean``, ``eval/return_std`` and ``eval/ep_len_mean`` with
    ``env_steps`` to every logger; the final values also land in the module's ``last_metrics``
    (so ``optimized_metric=eval/return_mean`` works for sweeps). With ``video=true`` the first
    episode of each evaluation is written to ``<video_dir>/<env steps>/`` and sent to W&B.
    An episode of an env without a time limit ends after ``max_episode_steps`` steps; a
    pre-emption signal (``pending_signal``) ends an evaluation at once, unlogged.

    Args:
        every_env_steps: evaluation period in env steps; null turns the callback off.
    """

    def __init__(
        self,
        every_env_steps: int | None = None,
        n_episodes: int = 10,
        deterministic: bool = True,
        seed: int = 100_000,
        video: bool = False,
        video_dir: str | None = None,
        max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    ) -> None:
        if every_env_steps is not None and every_env_steps < 1:
            raise ValueError(
                f"callbacks.eval.every_env_steps={every_env_steps}: use a positive number or null (off)"
            )
        if max_episode_steps < 1:
            raise ValueError(f"callbacks.eval.max_episode_steps={max_episode_steps} must be >= 1")
        if video and not video_dir:
            raise ValueError("callbacks.eval.video=true needs callbacks.eval.video_dir")
        self.every_env_steps = every_env_steps
        self.n_episodes = n_episodes
        self.deterministic = deterministic
        self.seed = seed
        self.video = video
        self.video_dir = Path(video_dir) if video_dir else None
        self.max_episode_steps = max_episode_steps
        self._next_eval = every_env_steps or 0
        self._last_eval_steps: int | None = None
        self._last_metrics: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.every_env_steps is not None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled:
            self._next_eval = (pl_module.env_steps // self.every_env_steps + 1) * self.every_env_steps

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and pl_module.env_steps >= self._next_eval:
            self.evaluate(trainer, pl_module)
            while self._next_eval <= pl_module.env_steps:
                self._next_eval += self.every_env_steps

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.enabled:
            return
        if self._last_eval_steps != pl_module.env_steps:
            self.evaluate(trainer, pl_module)
        pl_module.last_metrics.update(self._last_metrics)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """Run one evaluation now and log it at the current ``env_steps`` (rank 0 only)."""
        self._last_eval_steps = steps = pl_module.env_steps
        if not trainer.is_global_zero:
            return {}
        video_dir = self.video_dir / f"{steps:09d}" if self.video else None
        result = evaluate_policy(
            pl_module.policy,
            pl_module.env_factory,
            n_episodes=self.n_episodes,
            deterministic=self.deterministic,
            seed=self.seed,
            video_dir=video_dir,
            video_episodes=1,
            max_episode_steps=self.max_episode_steps,
            should_stop=lambda: pending_signal(trainer) is not None,
        )
        if result.stopped:
            log.warning(
                "%s: evaluation at env step %d stopped, not logged", pending_signal(trainer).name, steps
            )
            return {}
        metrics = result.metrics()
        self._last_metrics = metrics
        for logger in trainer.loggers:
            logger.log_metrics({"env_steps": float(steps), **metrics}, step=steps)
        for video in result.videos:
            log_video(trainer.loggers, "eval/video", video, steps)
        return metrics
