"""``OnPolicyAlgorithm``: what every on-policy method shares, as a LightningModule.

Read top to bottom: hyperparameters, rollout, batch, loss, step, log. A subclass writes its loss
(``compute_loss``) and its hyperparameter checks (``validate_hparams``); one that builds its batch
differently overrides ``process_rollout``, one that steps differently (NPG/TRPO, ACKTR, PPO's early
stop) ``minibatch_step``. Full-batch methods pass ``update_epochs=1, n_minibatches=1``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from rlcamp.algos.losses import explained_variance, value_loss
from rlcamp.algos.update_log import Metrics, UpdateLog
from rlcamp.algos.variance import policy_gradient_metrics
from rlcamp.config_checks import AlgoSettings, check_memory, check_on_policy
from rlcamp.envs.factory import VecEnvFactory
from rlcamp.envs.normalize import RewardScaler
from rlcamp.errors import require
from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.recurrent import Sequences
from rlcamp.rollout import Batch, EpisodeStats, Rollout, RolloutCollector, RolloutDataset, gae_batch
from rlcamp.tree import Obs
from rlcamp.utils.checkpoint import load_run_state, save_run_state
from rlcamp.utils.distributed import all_ranks_episode_metrics, rank_seed, share_normalizers
from rlcamp.utils.summary import RunClock


def plain_hparams(hparams: MutableMapping[str, Any]) -> None:
    """Turn omegaconf lists and dicts among ``hparams`` into Python ones, in place: the checkpoint's
    ``hyper_parameters`` must be plain data for ``torch.load(weights_only=True)`` to read it."""
    for key, value in hparams.items():
        if OmegaConf.is_config(value):
            hparams[key] = OmegaConf.to_container(value, resolve=True)


class OnPolicyAlgorithm(pl.LightningModule, ABC):
    """Base of REINFORCE, A2C, PPO, NPG, TRPO: one Lightning epoch = one rollout + its update.

    Args:
        env, network, optimizer: the vector-env recipe (``conf/env``), ``partial(ActorCritic, ...)``
            (``conf/network``, called with the spaces), ``partial(torch.optim.X, lr=...)``.
        total_env_steps: budget in environment steps; training stops once it is reached.
        n_steps: steps per env per rollout (``T``); a rollout holds ``T × n_envs`` transitions.
        gamma, gae_lambda: discount and GAE's λ.
        update_epochs, n_minibatches: passes over the rollout and minibatches per pass.
        normalize_advantage: standardize advantages within each minibatch.
        max_grad_norm: global gradient-norm clip (None: off).
        anneal_lr: decay the learning rate linearly to 0 over the budget.
        seed: sub-env ``i`` of rank ``r`` is seeded ``seed + r·n_envs + i``.
        stats_window: episodes averaged in ``rollout/ep_return_mean``.
        grad_diagnostics: log the policy gradient's per-sample variance and SNR (``rlcamp.algos.variance``).
        run_config: the resolved run config, saved in checkpoints (``rlcamp.utils.build.build`` passes it).
    """

    # whether it trains a recurrent policy (network.memory); config_checks.RECURRENT_ALGOS says the same
    takes_memory: ClassVar[bool] = False

    # ----------------------------------------------------------------- hyperparameters
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
        run_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # with every subclass's arguments
        self.save_hyperparameters(ignore=["env", "network", "optimizer", "run_config"])
        plain_hparams(self.hparams)
        self.env_factory = env
        self.optimizer_factory = optimizer
        self.network_memory = str(getattr(network, "keywords", {}).get("memory", "none"))
        self.validate_hparams()
        observation_space, action_space = env.spaces()
        self.env_spaces = {"observation": str(observation_space), "action": str(action_space)}
        mask = {} if env.action_mask_key is None else {"action_mask_key": env.action_mask_key}
        self.policy = network(
            observation_space=observation_space,
            action_space=action_space,
            normalize_obs=env.normalize_obs,
            clip_obs=env.clip_obs,
            **mask,  # only where the env masks actions: a network of yours need not take the keyword
        )
        self.validate_network()
        self.reward_scaler = RewardScaler(gamma, env.clip_reward) if env.normalize_reward else None
        self.collector: RolloutCollector | None = None
        # run state, saved in checkpoints (rlcamp.utils.checkpoint.save_run_state)
        self.env_steps = 0
        self.episode_stats = EpisodeStats(window=stats_window)
        self.clock = RunClock()
        self.run_config = run_config
        self.update_log = UpdateLog()  # this rollout's metrics and NaN flags
        self.last_metrics: dict[str, float] = {}

    def validate_hparams(self) -> None:
        """Reject nonsense hyperparameters before any env is built; a subclass extends it (super first)
        with its own function of :mod:`rlcamp.config_checks`, which ``rlcamp-train`` runs on the
        config before importing torch (there, ``ALGO_CHECKS`` lists each class's)."""
        check_on_policy(self.algo_settings)
        check_memory(self.algo_settings, type(self).__name__, self.takes_memory)

    @property
    def algo_settings(self) -> AlgoSettings:
        """What the hyperparameter checks read: the hyperparameters, ``env.n_envs``, the learning rate
        and ``network.memory``."""
        lr = getattr(self.optimizer_factory, "keywords", {}).get("lr")
        return AlgoSettings(self.hparams, self.env_factory.n_envs, lr, self.network_memory)

    def validate_network(self) -> None:
        """Refuse, in one line, a network this algorithm cannot train (built, no env made yet); a
        subclass extends it (super first)."""
        require(
            not (self.hparams.grad_diagnostics and self.policy.image_obs),
            "algo.grad_diagnostics=true holds a per-sample gradient of every actor parameter (a "
            "[B, P] matrix, gigabytes for a CNN); set algo.grad_diagnostics=false for image envs",
        )
        require(
            not (self.hparams.grad_diagnostics and self.policy.dict_obs),
            "algo.grad_diagnostics=true takes flat or image observations, not a Dict; set "
            "algo.grad_diagnostics=false",
        )

    @property
    def rollout_size(self) -> int:
        """Transitions per rollout on one rank: ``n_steps × n_envs``."""
        return self.hparams.n_steps * self.env_factory.n_envs

    @property
    def world_size(self) -> int:
        return self.trainer.world_size if self._trainer is not None else 1

    def all_ranks_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over ranks (``tensor`` itself on one rank), the same on every rank.

        Every decision that changes what or how many optimizer steps a rank takes goes through it,
        so ranks never diverge nor wait on each other's collectives (Lightning #9851).
        """
        if self.world_size == 1:
            return tensor
        return self.trainer.strategy.reduce(tensor.detach().clone(), reduce_op="mean")

    @property
    def num_rollouts(self) -> int:
        """Rollouts needed to spend ``total_env_steps`` across all ranks."""
        return math.ceil(self.hparams.total_env_steps / (self.rollout_size * self.world_size))

    def annealing_factor(self, env_steps: int) -> float:
        """``1 - k / K`` with ``k = env_steps / (rollout_size · world_size)`` rollouts done of ``K``.

        Counted in env steps rather than Lightning epochs, so a run resumed on another world size
        continues the schedule where its budget stands (on one world size ``k`` is the epoch).
        """
        done = env_steps / (self.rollout_size * self.world_size)
        return max(1.0 - done / self.num_rollouts, 0.0)

    @property
    def progress_remaining(self) -> float:
        """The annealing factor of the rollout in progress, whose env steps are counted already."""
        return self.annealing_factor(max(self.env_steps - self.rollout_size * self.world_size, 0))

    # ----------------------------------------------------------------- rollout
    def setup(self, stage: str) -> None:
        if self.collector is not None:  # a resumed fit sets up once
            return
        if self.world_size > 1:  # normalizer statistics merged over ranks; rank r > 0 its own noise
            share_normalizers(self.trainer.strategy, *self.policy.running_statistics(), self.reward_scaler)
            if self.global_rank > 0:
                pl.seed_everything(rank_seed(self.hparams.seed, self.global_rank), verbose=False)
        seed = self.hparams.seed + self.global_rank * self.env_factory.n_envs
        self.collector = RolloutCollector(
            self.env_factory(seed=seed),
            n_steps=self.hparams.n_steps,
            seed=seed,
            device=self.device,
            reward_scaler=self.reward_scaler,
            stats=self.episode_stats,
            env_id=self.env_factory.id,
            nan_policy=self.env_factory.nan_policy,
            obs_dtype=self.policy.input_dtype,
        )

    def teardown(self, stage: str) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RolloutDataset(self.collect_rollout), batch_size=None, num_workers=0)

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
        self.update_log.rollout["train/explained_variance"] = explained_variance(batch.values, batch.returns)
        if self.hparams.grad_diagnostics:
            metrics = policy_gradient_metrics(self.policy, batch.obs, batch.actions, batch.advantages)
            self.update_log.rollout.update(metrics)
        return batch

    # ----------------------------------------------------------------- batch
    def process_rollout(self, rollout: Rollout) -> Batch:
        """GAE(λ) advantages and λ-returns from the policy's critic (``rollout.gae_batch``)."""
        hp = self.hparams
        return gae_batch(rollout, self.policy.evaluate_actions, self.policy.value, hp.gamma, hp.gae_lambda)

    def minibatches(self, batch: Batch) -> Iterator[Batch]:
        """The update's ``update_epochs`` shuffled passes of ``n_minibatches`` (``Batch.minibatches``)."""
        hp = self.hparams
        return batch.minibatches(hp.update_epochs, hp.n_minibatches, hp.normalize_advantage)

    # ----------------------------------------------------------------- loss
    @abstractmethod
    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """The algorithm: a scalar loss to minimize on ``batch`` and detached metrics to log."""

    # ----------------------------------------------------------------- step
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        """The rollout's whole update, so Lightning's per-step hooks (and DDP's per-step SIGTERM
        broadcast) run once per rollout rather than once per minibatch."""
        for minibatch in self.minibatches(batch):
            if not self.minibatch_step(minibatch):
                break

    def minibatch_step(self, batch: Batch) -> bool:
        """The update's step on one minibatch: here one optimizer step on ``compute_loss``.

        Returning False ends the rollout's update (PPO's ``target_kl``)."""
        loss, metrics = self.compute_loss(batch)
        self.gradient_step(loss)
        self.update_log.step(metrics)
        return True

    def gradient_step(self, loss: torch.Tensor) -> None:
        """``θ ← opt(θ, ∇loss)`` after clipping the global gradient norm (PPO detail #11).

        A NaN/inf loss or gradient norm is flagged without a device sync and raised once per rollout
        (``UpdateLog.check_finite``), before any checkpoint can store the weights it produced.
        """
        optimizer = self.optimizers(use_pl_optimizer=False)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_and_flag_gradients(loss)
        optimizer.step()

    def fit_value(self, batch: Batch, epochs: int, minibatches: int) -> torch.Tensor:
        """``epochs`` shuffled passes of ``minibatches`` optimizer steps on the critic's loss
        ``½(V_φ(s) - R)²`` alone; the mean loss. NPG/TRPO fit their critic so; REINFORCE adds these
        passes to its one step. A batch whose loss reads some rows of whole sequences
        (``Batch.loss_rows``, recurrent REINFORCE) is fitted whole in each pass.
        """
        if batch.loss_rows is None:
            passes: Iterable[Batch] = batch.minibatches(epochs, minibatches, False)
        else:
            passes = [batch] * epochs
        losses = []
        for minibatch in passes:
            values = self.critic_value(minibatch.obs, minibatch.sequences)
            if minibatch.loss_rows is not None:
                values = values[minibatch.loss_rows]
            loss = value_loss(values, minibatch.values, minibatch.returns)
            self.gradient_step(loss)
            losses.append(loss.detach())
        return torch.stack(losses).mean()

    def critic_value(self, obs: Obs, memory: Sequences | None = None) -> torch.Tensor:
        """``V_φ(s)`` as ``fit_value`` trains it."""
        return self.policy.value(obs, memory)

    def clip_and_flag_gradients(self, loss: torch.Tensor) -> None:
        """Clip the global gradient norm to ``max_grad_norm`` and flag a non-finite loss or norm."""
        max_norm = self.hparams.max_grad_norm if self.hparams.max_grad_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters(), max_norm, foreach=True)
        self.update_log.flag(loss, grad_norm)

    def leaves_parameters_out(self) -> bool:
        """Whether some backward of the update leaves parameters without a gradient (DDP must then
        look for them: ``find_unused_parameters``); a subclass whose losses do says so."""
        return False

    def optimized_parameters(self) -> list[torch.nn.Parameter]:
        """What the configured optimizer steps: every parameter (NPG/TRPO: the critic's only)."""
        return list(self.parameters())

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.optimized_parameters())
        if not self.hparams.anneal_lr:
            return optimizer
        # stepped after each rollout's env steps are counted: the factor of the next rollout
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda _: self.annealing_factor(self.env_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    # ----------------------------------------------------------------- log
    def on_train_start(self) -> None:
        self.clock.begin(self.env_steps)
        if self.collector is not None:  # a resumed run's env steps continue from the checkpoint's
            self.collector.steps_done = self.env_steps // self.world_size

    def on_train_epoch_end(self) -> None:
        """Step the LR schedule, log one row of metrics at ``env_steps``, stop at the budget."""
        metrics = self.rollout_metrics(self.optimizers(use_pl_optimizer=False).param_groups[0]["lr"])
        schedulers = self.lr_schedulers()
        if schedulers is not None:
            schedulers.step()
        self.last_metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.env_steps)
        # for callbacks that monitor it (ModelCheckpoint, EarlyStopping); not self.log, which costs
        # ~2.5 ms a call here (a torchmetrics .to per call): 8-13% of a CartPole run's time
        monitored = torch.tensor(metrics["rollout/ep_return_mean"])
        self.trainer.callback_metrics["rollout/ep_return_mean"] = monitored
        where = f"rollout {self.current_epoch + 1} (env step {self.env_steps})"
        self.update_log.check_finite(self.parameters(), where)  # before the checkpoint callback runs
        if self.env_steps >= self.hparams.total_env_steps:
            self.trainer.should_stop = True

    def rollout_metrics(self, lr: float) -> dict[str, float]:
        """Rollout statistics plus the update's metrics (``UpdateLog.row``), as Python floats."""
        stats = self.episode_stats
        metrics: dict[str, float] = {
            "env_steps": float(self.env_steps),
            "rollout/ep_return_mean": stats.return_mean,
            "rollout/ep_len_mean": stats.length_mean,
            "rollout/episodes": float(stats.episodes),
            "time/sps": self.clock.steps_per_second(self.env_steps),
            "train/lr": float(lr),
        }
        if self.world_size > 1:
            strategy, sps = self.trainer.strategy, metrics["time/sps"]
            metrics |= all_ranks_episode_metrics(strategy, self.episode_stats, sps)
        return metrics | self.update_log.row()

    # ----------------------------------------------------------------- run state and summary
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_run_state(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_run_state(self, checkpoint)

    def summary(self) -> dict[str, Any]:
        """The run's outcome, for ``summary.json`` and the end-of-run table."""
        wall = self.clock.wall_seconds
        return {
            "algo": type(self).__name__.lower(),
            "env_id": self.env_factory.id,
            "env_steps": self.env_steps,
            "episodes": int(self.last_metrics.get("rollout/episodes", self.episode_stats.episodes)),
            "ep_return_mean": self.last_metrics.get("rollout/ep_return_mean"),
            "eval_return_mean": self.last_metrics.get("eval/return_mean"),
            "wall_seconds": wall,
            "steps_per_second": self.env_steps / wall if wall > 0 else None,
        }
