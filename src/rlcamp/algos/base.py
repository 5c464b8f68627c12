"""``OnPolicyAlgorithm``: what every on-policy method shares, as a LightningModule.

A subclass writes its loss (``compute_loss``); the base owns the rollout dataloader, the env-step
budget, the advantage estimate, the optimizer and LR schedule, and per-rollout logging. Methods
that update differently (NPG/TRPO's full-batch natural step) override ``training_step`` or
``update_batches``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from rlcamp.algos.losses import explained_variance, normalize
from rlcamp.algos.variance import policy_gradient_metrics
from rlcamp.envs.factory import VecEnvFactory
from rlcamp.envs.normalize import RewardScaler
from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.rollout.advantages import gae
from rlcamp.rollout.buffer import Batch, Rollout
from rlcamp.rollout.collector import RolloutCollector
from rlcamp.rollout.dataset import RolloutDataset
from rlcamp.utils.rng import rng_state, set_rng_state

Metrics = dict[str, torch.Tensor]


class ConfigError(ValueError):
    """A one-line error naming the offending config key and the fix."""


class NonFiniteUpdateError(FloatingPointError):
    """A NaN/inf loss, gradient or weight: the run stops before any checkpoint takes the bad weights."""


class OnPolicyAlgorithm(pl.LightningModule, ABC):
    """Base of REINFORCE, A2C, PPO, NPG, TRPO: one Lightning epoch = one rollout + its update.

    Args:
        env: the vector-env recipe (``conf/env``).
        network: ``partial(ActorCritic, ...)`` from ``conf/network``, called with the spaces.
        optimizer: ``partial(torch.optim.X, lr=...)`` from ``conf/algo``.
        total_env_steps: budget in environment steps; training stops once it is reached.
        n_steps: steps per env per rollout (``T``); a rollout holds ``T × n_envs`` transitions.
        gamma, gae_lambda: discount and GAE's λ.
        update_epochs, n_minibatches: passes over the rollout and minibatches per pass.
        normalize_advantage: standardize advantages within each minibatch.
        max_grad_norm: global gradient-norm clip (None: off).
        anneal_lr: decay the learning rate linearly to 0 over the budget.
        seed: sub-env ``i`` of rank ``r`` is seeded ``seed + r·n_envs + i``.
        grad_diagnostics: log the policy-gradient estimator's per-sample variance and SNR on each
            rollout (``train/grad_var``, ``train/grad_snr``; see ``rlcamp.algos.variance``).
    """

    def __init__(
        self,
        env: VecEnvFactory,
        network: Callable[..., ActorCritic],
        optimizer: Callable[..., torch.optim.Optimizer],
        total_env_steps: int = 100_000,
        n_steps: int = 128,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        update_epochs: int = 4,
        n_minibatches: int = 4,
        normalize_advantage: bool = True,
        max_grad_norm: float | None = 0.5,
        anneal_lr: bool = True,
        seed: int = 1,
        stats_window: int = 20,
        grad_diagnostics: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["env", "network", "optimizer"])
        self.env_factory = env
        self.optimizer_factory = optimizer
        self.validate_hparams()
        observation_space, action_space = env.spaces()
        self.env_spaces = {"observation": str(observation_space), "action": str(action_space)}
        self.policy = network(
            observation_space=observation_space,
            action_space=action_space,
            normalize_obs=env.normalize_obs,
            clip_obs=env.clip_obs,
        )
        self.reward_scaler = RewardScaler(gamma, env.clip_reward) if env.normalize_reward else None
        self.collector: RolloutCollector | None = None
        self.env_steps = 0
        self._restored_stats: dict[str, Any] | None = None
        self._nonfinite_update: torch.Tensor | None = None  # [loss, grad] flags of this rollout's steps
        self.wall_seconds_before = 0.0  # training time of the run before this (resumed) fit
        self._train_metrics: list[Metrics] = []
        self._rollout_metrics: Metrics = {}
        self.last_metrics: dict[str, float] = {}
        self.run_config: dict[str, Any] | None = None  # the resolved run config, saved in checkpoints
        self._fit_start_time = 0.0
        self._fit_start_steps = 0

    # ----------------------------------------------------------------- config checks
    def validate_hparams(self) -> None:
        """Reject nonsense hyperparameters before any env is built (one line each)."""
        hp = self.hparams
        checks = [
            (0.0 < hp.gamma <= 1.0, f"algo.gamma={hp.gamma} must be in (0, 1]"),
            (0.0 <= hp.gae_lambda <= 1.0, f"algo.gae_lambda={hp.gae_lambda} must be in [0, 1]"),
            (hp.n_steps >= 1, f"algo.n_steps={hp.n_steps} must be >= 1"),
            (hp.update_epochs >= 1, f"algo.update_epochs={hp.update_epochs} must be >= 1"),
            (hp.n_minibatches >= 1, f"algo.n_minibatches={hp.n_minibatches} must be >= 1"),
            (
                self.rollout_size % hp.n_minibatches == 0,
                f"rollout of {hp.n_steps} steps x {self.env_factory.n_envs} envs = {self.rollout_size} "
                f"transitions does not split into algo.n_minibatches={hp.n_minibatches}; pick a divisor",
            ),
            (
                hp.total_env_steps >= self.rollout_size,
                f"total_env_steps={hp.total_env_steps} is smaller than one rollout "
                f"({self.rollout_size}); raise it",
            ),
            (
                hp.max_grad_norm is None or hp.max_grad_norm > 0,
                f"algo.max_grad_norm={hp.max_grad_norm} must be > 0 or null",
            ),
        ]
        lr = getattr(self.optimizer_factory, "keywords", {}).get("lr")
        if lr is not None:
            checks.append((lr > 0, f"algo.optimizer.lr={lr} must be > 0"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    # ----------------------------------------------------------------- sizes and budget
    @property
    def rollout_size(self) -> int:
        """Transitions per rollout on one rank: ``n_steps × n_envs``."""
        return self.hparams.n_steps * self.env_factory.n_envs

    @property
    def world_size(self) -> int:
        return self.trainer.world_size if self._trainer is not None else 1

    @property
    def num_rollouts(self) -> int:
        """Rollouts needed to spend ``total_env_steps`` across all ranks."""
        return math.ceil(self.hparams.total_env_steps / (self.rollout_size * self.world_size))

    @property
    def progress_remaining(self) -> float:
        """``1 - k / K`` at rollout ``k`` of ``K``: the linear annealing factor."""
        return max(1.0 - self.current_epoch / self.num_rollouts, 0.0)

    @property
    def batches_per_rollout(self) -> int:
        return self.hparams.update_epochs * self.hparams.n_minibatches

    # ----------------------------------------------------------------- data
    def setup(self, stage: str) -> None:
        if self.collector is not None:
            return
        rank = self.global_rank
        seed = self.hparams.seed + rank * self.env_factory.n_envs
        self.collector = RolloutCollector(
            self.env_factory(seed=seed),
            n_steps=self.hparams.n_steps,
            seed=seed,
            device=self.device,
            reward_scaler=self.reward_scaler,
            stats_window=self.hparams.stats_window,
            env_id=self.env_factory.id,
            nan_policy=self.env_factory.nan_policy,
        )
        self._apply_restored_stats()

    def teardown(self, stage: str) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RolloutDataset(self), batch_size=None, num_workers=0)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Rollouts are collected on the module's device already."""
        return batch

    def collect_rollout(self) -> Batch:
        """Collect with the current policy (eval mode, no grad) and turn it into training data."""
        self.collector.device = self.device
        self.policy.eval()
        rollout = self.collector.collect(self.policy)
        self.policy.train()
        self.env_steps += rollout.n_steps * rollout.n_envs * self.world_size
        with torch.no_grad():
            batch = self.process_rollout(rollout)
        self._rollout_metrics = {"train/explained_variance": explained_variance(batch.values, batch.returns)}
        if self.hparams.grad_diagnostics:
            self._rollout_metrics.update(
                policy_gradient_metrics(self.policy, batch.obs, batch.actions, batch.advantages)
            )
        return batch

    def bootstrap_truncations(
        self, rollout: Rollout, value: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Rewards with ``γ·V(s_final)`` added where a time limit cut the episode (not on termination).

        ``value`` estimates ``V(s_final)``; by default the policy's critic ``V_φ``.
        """
        rewards = rollout.rewards
        if len(rollout.final_index):
            rewards = rewards.clone()
            t, env = rollout.final_index.unbind(1)
            rewards[t, env] += self.hparams.gamma * (value or self.policy.value)(rollout.final_obs)
        return rewards

    def process_rollout(self, rollout: Rollout) -> Batch:
        """Old log-probs and values in one batched pass, then GAE(λ) advantages and λ-returns."""
        T, N = rollout.n_steps, rollout.n_envs
        flat_obs, flat_actions = rollout.flat_obs, rollout.flat_actions
        log_probs, _, values = self.policy.evaluate_actions(flat_obs, flat_actions)
        values = values.reshape(T, N)
        last_value = self.policy.value(rollout.next_obs)
        rewards = self.bootstrap_truncations(rollout)
        advantages = gae(
            rewards, values, rollout.dones, last_value, self.hparams.gamma, self.hparams.gae_lambda
        )
        return Batch(
            obs=flat_obs,
            actions=flat_actions,
            log_probs=log_probs,
            values=values.reshape(-1),
            advantages=advantages.reshape(-1),
            returns=(advantages + values).reshape(-1),
        )

    def update_batches(self, batch: Batch) -> Iterator[Batch]:
        """``update_epochs`` shuffled passes of ``n_minibatches`` minibatches.

        Each pass gathers the shuffled rollout once and standardizes advantages per minibatch in
        one vectorized op; the minibatches are then views of that gathered copy.
        """
        n_mb = self.hparams.n_minibatches
        for _ in range(self.hparams.update_epochs):
            shuffled = batch.index(torch.randperm(len(batch), device=batch.obs.device))
            if self.hparams.normalize_advantage and len(batch) // n_mb > 1:
                shuffled.advantages = normalize(shuffled.advantages.view(n_mb, -1)).view(-1)
            yield from shuffled.split(n_mb)

    # ----------------------------------------------------------------- update
    @abstractmethod
    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """The algorithm: a scalar loss to minimize on ``batch`` and detached metrics to log."""

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        loss, metrics = self.compute_loss(batch)
        self.gradient_step(loss)
        self._train_metrics.append(metrics)

    def gradient_step(self, loss: torch.Tensor) -> None:
        """``θ ← opt(θ, ∇loss)`` after clipping the global gradient norm (PPO detail #11).

        A NaN/inf loss or gradient norm is flagged without a device sync and raised once per rollout
        by :meth:`check_finite_update`, before any checkpoint can store the weights it produced.
        """
        optimizer = self.optimizers(use_pl_optimizer=False)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        max_norm = self.hparams.max_grad_norm if self.hparams.max_grad_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters(), max_norm, foreach=True)
        nonfinite = ~torch.isfinite(torch.stack([loss.detach().float(), grad_norm.float()]))
        first = self._nonfinite_update  # keep the flags of the first bad step: it names the cause
        self._nonfinite_update = nonfinite if first is None else torch.where(first.any(), first, nonfinite)
        optimizer.step()

    def optimized_parameters(self) -> list[torch.nn.Parameter]:
        """What the configured optimizer steps: every parameter (NPG/TRPO: the critic's only)."""
        return list(self.parameters())

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.optimized_parameters())
        if not self.hparams.anneal_lr:
            return optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda k: max(1.0 - k / self.num_rollouts, 0.0)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    # ----------------------------------------------------------------- per-rollout bookkeeping
    def on_train_start(self) -> None:
        self._fit_start_time = time.perf_counter()
        self._fit_start_steps = self.env_steps

    def on_train_epoch_end(self) -> None:
        """Step the LR schedule, log one row of metrics at ``env_steps``, stop at the budget."""
        optimizer = self.optimizers(use_pl_optimizer=False)
        metrics = self.rollout_metrics(optimizer.param_groups[0]["lr"])
        self._train_metrics = []
        schedulers = self.lr_schedulers()
        if schedulers is not None:
            schedulers.step()
        self.last_metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.env_steps)
        self.log("rollout/ep_return_mean", metrics["rollout/ep_return_mean"], logger=False, prog_bar=False)
        self.check_finite_update()
        if self.env_steps >= self.hparams.total_env_steps:
            self.trainer.should_stop = True

    def check_finite_update(self) -> None:
        """Raise ``NonFiniteUpdateError`` if this rollout's update met a NaN/inf loss, gradient or weight.

        It runs in ``on_train_epoch_end`` before the checkpoint callback, so the last checkpoint
        on disk keeps the last finite weights.
        """
        flags, self._nonfinite_update = self._nonfinite_update, None
        bad_loss, bad_grad = flags.tolist() if flags is not None else (False, False)
        bad_weights = not bool(torch.stack([torch.isfinite(p).all() for p in self.parameters()]).all())
        if not (bad_loss or bad_grad or bad_weights):
            return
        what = "loss" if bad_loss else "gradient" if bad_grad else "weights"
        raise NonFiniteUpdateError(
            f"non-finite {what} in the update of rollout {self.current_epoch + 1} "
            f"(env step {self.env_steps}); "
            "stopped without checkpointing these weights: lower algo.optimizer.lr, set algo.max_grad_norm "
            "or env.normalize_reward=true, then resume from the last checkpoint or restart"
        )

    def rollout_metrics(self, lr: float) -> dict[str, float]:
        """Means of the minibatch metrics plus rollout statistics, as Python floats."""
        stats = self.collector.stats
        elapsed = max(time.perf_counter() - self._fit_start_time, 1e-9)
        metrics: dict[str, float] = {
            "env_steps": float(self.env_steps),
            "rollout/ep_return_mean": stats.return_mean,
            "rollout/ep_len_mean": stats.length_mean,
            "rollout/episodes": float(stats.episodes),
            "time/sps": (self.env_steps - self._fit_start_steps) / elapsed,
            "train/lr": float(lr),
        }
        if self._train_metrics:
            keys = dict.fromkeys(k for m in self._train_metrics for k in m)
            for key in keys:
                values = torch.stack([m[key] for m in self._train_metrics if key in m])
                metrics[key] = float(values.float().mean())
        metrics.update({k: float(v) for k, v in self._rollout_metrics.items()})
        return metrics

    # ----------------------------------------------------------------- checkpoint state
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Besides Lightning's weights, optimizer, LR schedule and loop state: rlcamp's run state.

        The resolved config, the spaces (checked on resume), env-step and episode counters, the
        episode-statistics window, the training time so far and the Python/NumPy/torch RNG states.
        """
        stats = self.collector.stats if self.collector is not None else None
        checkpoint["rlcamp"] = {
            "config": self.run_config,
            "spaces": self.env_spaces,
            "rng": rng_state(),
            "wall_seconds": self.wall_seconds_before + time.perf_counter() - self._fit_start_time,
            "env_steps": self.env_steps,
            "episodes": stats.episodes if stats else 0,
            "episode_window": {
                "returns": list(stats.returns) if stats else [],
                "lengths": list(stats.lengths) if stats else [],
            },
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rlcamp", {})
        self.env_steps = int(state.get("env_steps", 0))
        self.wall_seconds_before = float(state.get("wall_seconds", 0.0))
        if state.get("rng") is not None and self._trainer is not None:
            # a resumed fit continues the random streams before Lightning's first dataloader iter();
            # load_run (no trainer) leaves the caller's random state alone
            set_rng_state(state["rng"])
        window = state.get("episode_window", {"returns": [], "lengths": []})
        self._restored_stats = {
            "episodes": int(state.get("episodes", 0)),
            "episode_window": {
                "returns": torch.tensor(window["returns"]).numpy(),
                "lengths": torch.tensor(window["lengths"], dtype=torch.long).numpy(),
            },
        }
        self._apply_restored_stats()

    def _apply_restored_stats(self) -> None:
        """Put a checkpoint's episode counter and window into the collector once it exists.

        Lightning calls ``setup`` before ``on_load_checkpoint`` when resuming, and ``load_run``
        loads before any ``setup``; both paths end here.
        """
        if self.collector is None or self._restored_stats is None:
            return
        self.collector.stats.add(**self._restored_stats["episode_window"])
        self.collector.stats.episodes = self._restored_stats["episodes"]
        self._restored_stats = None


class FullBatchUpdate:
    """Mixin for methods that update once per rollout on all of it (REINFORCE, A2C, NPG, TRPO).

    Put it before ``OnPolicyAlgorithm`` in the bases: the dataloader then yields the whole
    rollout as a single batch, its advantages standardized over it when ``normalize_advantage``.
    """

    batches_per_rollout = 1

    def update_batches(self, batch: Batch) -> Iterator[Batch]:
        if self.hparams.normalize_advantage and len(batch) > 1:
            batch.advantages = normalize(batch.advantages)
        yield batch
