"""REINFORCE (Williams 1992): Monte-Carlo policy gradient, with an optional baseline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from rlcamp.algos.policy_gradient import PolicyGradient
from rlcamp.config_checks import check_reinforce
from rlcamp.rollout.advantages import discounted_returns
from rlcamp.rollout.buffer import Batch, Rollout
from rlcamp.tree import tree_rows


def complete_episode_mask(dones: torch.Tensor) -> torch.Tensor:
    """``[T, N]`` bool: True where the step's episode ends inside the rollout (at or after ``t``).

    Steps after an env's last episode end (its tail, cut by the rollout boundary) are False: their
    return is unknown. ``mask[t, n] = max_{t' ≥ t} dones[t', n]``.
    """
    return dones.bool().flip(0).cummax(0).values.flip(0)


def reward_to_go(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo return ``G_t = Σ_{k=0}^{T_ep - t - 1} γ^k r_{t+k}`` to the end of the episode.

    Exact where ``complete_episode_mask`` is True; elsewhere a partial sum to be masked out.
    """
    return discounted_returns(rewards, dones, torch.zeros_like(rewards[0]), gamma)


class REINFORCE(PolicyGradient):
    """``ĝ = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) (G_t - b(s_t))`` from complete episodes.

    **Episodes cut by the rollout boundary are left out.** ``G_t`` needs the rewards to the end of
    the episode, so a step enters the update only if its episode ends inside this rollout
    (``complete_episode_mask``): the tail after each env's last episode end is dropped, and its
    episode's remaining steps, collected in the next rollout, enter *that* update with their exact
    return (the reward-to-go of a step needs only its future). Choose ``n_steps`` well above the
    typical episode length, or most data is dropped; a rollout with no episode end skips its update
    (``train/skipped_update``) and ``train/valid_fraction`` reports the share kept.

    **A time-limit truncation ends the episode**: ``G_t`` sums the rewards up to the limit, the
    return of the time-limited task, without bootstrapping ``V(s_final)``; the Monte-Carlo return
    stays free of the critic.

    **The critic is fitted, not nudged.** With ``baseline=value`` the one step also regresses
    ``V_φ`` on ``G_t`` (weight ``vf_coef``), and ``value_epochs`` passes of ``value_minibatches``
    critic-only steps follow (``fit_value``). Monte-Carlo returns reach ~100 on CartPole: one step
    a rollout leaves ``V_φ ≈ 0`` (explained variance ≈ 0 for the whole run), so ``b = V_φ`` removes
    nothing but the mean that the standardization removed already (``docs/algorithms.md``).

    Args:
        baseline: ``none`` (``Ψ = G_t``), ``mean`` (``b`` = the rollout's mean return, a constant
            computed from the same batch: unbiased up to ``O(1/B)``) or ``value`` (``b = V_φ(s_t)``
            of the pre-update critic, itself regressed on ``G_t``).
        value_epochs, value_minibatches: the critic-only passes after the step, and the minibatches
            of each pass (0 passes: the critic learns only in the step, with the policy).
        normalize_advantage (base): divide ``Ψ`` by its standard deviation over the rollout, a
            per-rollout step size.
        center_advantage: also subtract ``Ψ``'s rollout mean. That is a mean baseline of its own:
            with it ``baseline=none`` and ``baseline=mean`` are the same estimator.
    """

    def __init__(
        self,
        *,
        baseline: str = "value",
        value_epochs: int = 10,
        value_minibatches: int = 4,
        center_advantage: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def validate_hparams(self) -> None:
        super().validate_hparams()
        check_reinforce(self.algo_settings)

    takes_memory = True

    def process_rollout(self, rollout: Rollout) -> Batch:
        """``Ψ_t = G_t − b`` on the steps of complete episodes. A recurrent policy reads the whole
        rollout as its sequences, and the loss only the rows kept (``Batch.loss_rows``)."""
        returns = reward_to_go(rollout.rewards, rollout.dones, self.hparams.gamma)
        keep = complete_episode_mask(rollout.dones).reshape(-1)
        memory = rows = None
        if rollout.memory is None:
            obs, actions = tree_rows(rollout.flat_obs, keep), rollout.flat_actions[keep]
            log_probs, _, values = self.policy.evaluate_actions(obs, actions)
        else:
            obs, actions, memory = rollout.flat_obs, rollout.flat_actions, rollout.batch_memory()
            log_probs, _, values = self.policy.evaluate_actions(obs, actions, rollout.sequences)
            rows = keep.nonzero().squeeze(1)
            log_probs, values = log_probs[rows], values[rows]
        returns = returns.reshape(-1)[keep]
        baseline = {
            "none": torch.zeros_like(returns),
            "mean": returns.mean().expand_as(returns),
            "value": values,
        }
        return Batch(
            obs=obs,
            actions=actions,
            log_probs=log_probs,
            values=values,
            advantages=returns - baseline[self.hparams.baseline],
            returns=returns,
            memory=memory,
            loss_rows=rows,
        )

    def minibatches(self, batch: Batch) -> Iterator[Batch]:
        """The whole batch, ``Ψ`` divided by its standard deviation (and centered only with
        ``center_advantage``)."""
        hp = self.hparams
        return batch.minibatches(1, 1, hp.normalize_advantage, center=hp.center_advantage)

    def minibatch_step(self, batch: Batch) -> bool:
        """The policy-gradient step, then ``value_epochs`` critic-only passes (``baseline=value``)."""
        stepped = super().minibatch_step(batch)
        hp = self.hparams
        if len(batch) > 0 and hp.baseline == "value" and hp.value_epochs > 0:
            fit_loss = self.fit_value(batch, hp.value_epochs, hp.value_minibatches)
            self.update_log.step({"train/value_fit_loss": fit_loss})
        return stepped

    def leaves_parameters_out(self) -> bool:
        """Without the value baseline the critic is in no loss."""
        return self.hparams.baseline != "value"

    def critic_loss(self, batch: Batch, values: torch.Tensor) -> torch.Tensor | None:
        return super().critic_loss(batch, values) if self.hparams.baseline == "value" else None

    def collect_rollout(self) -> Batch:
        batch = super().collect_rollout()
        self.update_log.rollout["train/valid_fraction"] = torch.tensor(len(batch) / self.rollout_size)
        return batch
