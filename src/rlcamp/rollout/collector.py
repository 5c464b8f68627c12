"""Step a vector env with the current policy and record a ``Rollout``."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcamp.envs.factory import final_observations
from rlcamp.envs.normalize import RewardScaler
from rlcamp.errors import NonFiniteEnvError
from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.rollout_actor import recurrent_actor, rollout_actor
from rlcamp.rollout.buffer import Rollout, RolloutMemory
from rlcamp.tree import tree_concat, tree_leaves, tree_map, tree_rows, tree_set

log = logging.getLogger(__name__)


@dataclass
class EpisodeStats:
    """Returns and lengths of the last ``window`` finished episodes (raw rewards, before any
    scaling) and the count of all. The algorithm owns it (it is run state, saved in checkpoints);
    the collector fills it."""

    window: int = 20
    returns: deque[float] = field(default_factory=deque)
    lengths: deque[int] = field(default_factory=deque)
    episodes: int = 0

    def __post_init__(self) -> None:
        self.returns = deque(self.returns, maxlen=self.window)
        self.lengths = deque(self.lengths, maxlen=self.window)

    def add(self, returns: np.ndarray, lengths: np.ndarray) -> None:
        self.returns.extend(returns.tolist())
        self.lengths.extend(lengths.tolist())
        self.episodes += len(returns)

    def state(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return {"episodes": self.episodes, "returns": list(self.returns), "lengths": list(self.lengths)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the window and the count by a checkpoint's ``state()``."""
        self.returns.clear()
        self.lengths.clear()
        self.add(np.asarray(state["returns"], dtype=np.float64), np.asarray(state["lengths"], dtype=np.int64))
        self.episodes = int(state["episodes"])

    @property
    def return_mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def length_mean(self) -> float:
        return float(np.mean(self.lengths)) if self.lengths else float("nan")


class RolloutCollector:
    """Owns the vector env and its current observation between rollouts.

    Stepping follows gymnasium's SAME_STEP autoreset: when a sub-env ends an episode, the
    observation returned is already the next episode's first one, so no step is wasted or masked.
    Per step only the actor runs (``rollout_actor``: ``ActorCritic.preprocess`` and
    ``ActorCritic.sample`` in numpy); values and log-probs of the whole rollout are computed
    afterwards in one batched pass by the algorithm. A ``Dict`` observation is a dict of arrays
    throughout, each key in the dtype ``obs_dtype`` gives it (the keys it holds are the ones kept).

    A recurrent policy (``ActorCritic.recurrent``) steps in torch (``recurrent_actor``); its state is
    carried from rollout to rollout with the episode starts that reset it, and recorded per step
    (``RolloutMemory``). A new collector (a new run, a resume) starts from the zero state, as its
    envs start from ``reset``.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        n_steps: int,
        seed: int,
        device: torch.device,
        reward_scaler: RewardScaler | None = None,
        stats: EpisodeStats | None = None,
        env_id: str = "env",
        nan_policy: str = "raise",
        obs_dtype: np.dtype | type | dict[str, np.dtype] = np.float32,
    ) -> None:
        self.env = env
        # raw observations are kept as this (uint8 images), per key for a Dict space
        self.obs_dtype = tree_map(np.dtype, obs_dtype)
        self.n_steps = n_steps
        self.device = device
        self.reward_scaler = reward_scaler
        self.stats = stats if stats is not None else EpisodeStats()
        self.env_id = env_id
        self.nan_policy = nan_policy
        self.steps_done = 0  # this collector's env steps so far (the module sets it on a resume)
        self.nan_resets = 0  # sub-envs reset by nan_policy=terminate
        raw_obs, _ = env.reset(seed=seed)
        self._raw_obs = self._check_reset(self._as_raw(raw_obs))
        self._discounted_return = np.zeros(env.num_envs, dtype=np.float32)
        self._state: torch.Tensor | None = None  # a recurrent policy's, [N, S], after the last step
        self._starts = np.ones(
            env.num_envs, dtype=np.float32
        )  # 1 where the next rollout's first step starts one

    def _as_raw(self, obs: Any) -> Any:
        """A copy of the env's observations in ``obs_dtype`` (the env reuses its buffer), keys selected."""
        return tree_map(lambda dtype, array: np.array(array, dtype=dtype), self.obs_dtype, obs)

    def _env_step(self, t: int, i: int) -> int:
        """The env step (all sub-envs' steps from the run's start) of sub-env ``i``'s step ``t``."""
        return self.steps_done + t * self.env.num_envs + i + 1

    def _check_finite(self, obs: Any, reward: np.ndarray, step: int) -> np.ndarray:
        """Raise (or, with ``nan_policy="terminate"``, flag) sub-envs that returned NaN/inf (integer
        observations, images, cannot be)."""
        bad = ~np.isfinite(reward)
        for leaf in tree_leaves(obs):
            if np.issubdtype(leaf.dtype, np.floating):
                bad |= ~finite_rows(leaf)
        if bad.any() and self.nan_policy == "raise":
            i = int(np.flatnonzero(bad)[0])
            raise NonFiniteEnvError(
                f"{self.env_id} sub-env {i} returned a non-finite observation or reward at env step "
                f"{self._env_step(step, i)}; fix the env or set env.nan_policy=terminate to end such episodes"
            )
        return bad

    def _check_reset(self, obs: Any, mask: np.ndarray | None = None) -> Any:
        """Raise if ``reset()`` returned a NaN/inf observation (for the sub-envs in ``mask``, else
        all), under either ``nan_policy``: there is no episode to end; return ``obs``."""
        bad = ~np.logical_and.reduce([finite_rows(leaf) for leaf in tree_leaves(obs)])
        if mask is not None:
            bad &= mask
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NonFiniteEnvError(
                f"{self.env_id} sub-env {i} returned a non-finite observation from reset() after env step "
                f"{self.steps_done}; fix the env's reset (env.nan_policy=terminate cannot end a reset)"
            )
        return obs

    def _check_final_obs(self, final: Any, envs: np.ndarray, step: int) -> np.ndarray:
        """Which truncated episodes' final observations (``info["final_obs"]``) are finite; raise under
        ``nan_policy="raise"`` (under ``terminate`` those steps are not bootstrapped: terminal)."""
        finite = np.logical_and.reduce([finite_rows(leaf) for leaf in tree_leaves(final)])
        if not finite.all() and self.nan_policy == "raise":
            i = int(envs[np.flatnonzero(~finite)[0]])
            raise NonFiniteEnvError(
                f"{self.env_id} sub-env {i} returned a non-finite final observation of a truncated "
                f"episode at env step {self._env_step(step, i)}; fix the env or set "
                "env.nan_policy=terminate to end such episodes"
            )
        return finite

    def _reset_sub_envs(self, mask: np.ndarray) -> Any:
        """Reset the sub-envs in ``mask`` (gymnasium's ``reset_mask``) and return the new observations.

        gymnasium 1.4's vector ``RecordEpisodeStatistics`` misses the mask (the vector env pops it
        first), so its running return and length of those sub-envs are zeroed here.
        """
        obs, _ = self.env.reset(options={"reset_mask": mask.copy()})
        for name in ("episode_returns", "episode_lengths"):
            counters = getattr(self.env, name, None)
            if counters is not None:
                counters[mask] = 0
        self.nan_resets += int(mask.sum())
        return self._check_reset(self._as_raw(obs), mask)

    @torch.no_grad()
    def collect(self, policy: ActorCritic) -> Rollout:
        """Run ``n_steps`` steps of all envs and return the recorded ``Rollout``.

        The actor runs per step through a numpy snapshot of the policy (``rollout_actor``) and
        everything is written into preallocated numpy buffers, moved to the policy's device once at
        the end. Normalization statistics stay fixed during the rollout and are updated from it at
        the end: observation statistics from the raw observations, reward scaling from the
        discounted returns ``G_t = γ·G_{t-1} + r_t`` accumulated here.
        """
        T, N, device = self.n_steps, self.env.num_envs, self.device
        act = rollout_actor(policy)
        recurrent_step = recurrent_actor(policy) if policy.recurrent else None
        states = self._state_buffer(policy) if recurrent_step is not None else None
        final_states: list[torch.Tensor] = []
        noise = policy.noise((T, N)).numpy()
        obs_buf = tree_map(
            lambda shape, dtype: np.empty((T, N, *shape), dtype), policy.input_shape, policy.input_dtype
        )
        raw_buf = None
        if policy.normalizes_obs:
            raw = policy.statistics_inputs(self._raw_obs)
            raw_buf = tree_map(lambda leaf: np.empty((T, *leaf.shape), np.float32), raw)
        actions = np.empty((T, N, *policy.action_shape), dtype=policy.action_dtype)
        rewards = np.empty((T, N), dtype=np.float32)
        dones = np.empty((T, N), dtype=np.float32)
        returns = np.empty((T, N), dtype=np.float32) if self.reward_scaler else None
        final_obs: list[Any] = []
        final_index: list[tuple[int, int]] = []
        resets_before = self.nan_resets
        for t in range(T):
            if recurrent_step is None:
                net_obs, actions[t] = act(self._raw_obs, noise[t])
            else:  # an episode starts where the previous step ended one
                states[t] = self._state
                starts = self._starts if t == 0 else dones[t - 1]
                net_obs, actions[t], self._state = recurrent_step(
                    self._raw_obs, noise[t], self._state, starts
                )
            tree_set(obs_buf, t, net_obs)
            if raw_buf is not None:
                tree_set(raw_buf, t, policy.statistics_inputs(self._raw_obs))
            raw_obs, reward, terminated, truncated, info = self.env.step(actions[t])
            raw_obs = self._as_raw(raw_obs)
            bad = self._check_finite(raw_obs, reward, t)
            if bad.any():  # nan_policy=terminate: end those episodes with zero reward, reset those envs
                reward = np.where(bad, 0.0, reward)
                terminated = terminated | bad
                tree_set(raw_obs, bad, tree_rows(self._reset_sub_envs(bad), bad))
            done = terminated | truncated
            rewards[t] = reward
            dones[t] = done
            if returns is not None:
                self._discounted_return = self._discounted_return * self.reward_scaler.gamma + reward
                returns[t] = self._discounted_return
                self._discounted_return[done] = 0.0
            bootstrap = truncated & ~terminated
            if bootstrap.any():
                envs = np.flatnonzero(bootstrap)
                final = self._as_raw(final_observations(info, bootstrap))
                finite = self._check_final_obs(final, envs, t)
                if finite.any():
                    final_obs.append(tree_rows(final, finite))
                    final_index.extend((t, int(i)) for i in envs[finite])
                    if states is not None:
                        final_states.append(
                            self._state[torch.from_numpy(envs[finite]).to(self._state.device)]
                        )
            if "_episode" in info:
                finished = info["_episode"]
                self.stats.add(info["episode"]["r"][finished], info["episode"]["l"][finished])
            self._raw_obs = raw_obs
        self.steps_done += T * N
        if self.nan_resets > resets_before:
            log.warning(
                "%s: nan_policy=terminate reset %d sub-env(s) with non-finite values in this rollout "
                "(%d in this run)",
                self.env_id,
                self.nan_resets - resets_before,
                self.nan_resets,
            )

        def to_device(array: Any) -> Any:
            return tree_map(lambda leaf: torch.from_numpy(leaf).to(device), array)

        next_obs = policy.preprocess(to_device(self._raw_obs))
        final = (
            policy.preprocess(to_device(tree_concat(final_obs)))
            if final_obs
            else tree_rows(next_obs, slice(0))
        )
        rewards_t = to_device(rewards)
        if self.reward_scaler is not None:
            rewards_t = self.reward_scaler(rewards_t, to_device(returns))
        if raw_buf is not None:
            policy.update_obs_statistics(to_device(raw_buf))
        memory = None
        if states is not None:
            starts = np.concatenate([self._starts[None], dones[:-1]])
            truncated = torch.cat(final_states) if final_states else self._state[:0]
            memory = RolloutMemory(
                states.to(device),
                to_device(starts),
                self._state.to(device),
                to_device(dones[-1]),
                truncated.to(device),
            )
            self._starts = dones[-1].copy()
        return Rollout(
            obs=to_device(obs_buf),
            actions=to_device(actions),
            rewards=rewards_t,
            dones=to_device(dones),
            next_obs=next_obs,
            final_obs=final,
            final_index=torch.tensor(final_index, dtype=torch.long, device=device).reshape(-1, 2),
            memory=memory,
        )

    def _state_buffer(self, policy: ActorCritic) -> torch.Tensor:
        """An empty ``[T, N, S]`` buffer for the state before each step, on the policy's device (a
        new collector's state starts at zero there)."""
        T, N = self.n_steps, self.env.num_envs
        policy_device = next(policy.parameters()).device
        if self._state is None:
            self._state = policy.initial_state(N, policy_device)
        return torch.empty((T, N, policy.state_size), device=policy_device)

    def close(self) -> None:
        self.env.close()


def finite_rows(obs: np.ndarray) -> np.ndarray:
    """``[N]`` bool: the rows of ``obs`` (``[N, ...]``) whose every entry is finite."""
    return np.isfinite(obs.reshape(obs.shape[0], -1)).all(axis=1)
