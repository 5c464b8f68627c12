"""Play a policy for whole episodes on a fresh env: the return ``rlcamp-eval`` and the periodic
evaluation callback report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rlcamp.envs.factory import VecEnvFactory
from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.recurrent import Sequences
from rlcamp.tree import tree_map

log = logging.getLogger(__name__)

# the episode cap of an env without a time limit of its own (evaluation must end)
DEFAULT_MAX_EPISODE_STEPS = 10_000


@dataclass
class EvalResult:
    """Undiscounted returns and lengths of the evaluation episodes, and the videos written;
    ``stopped``: ``should_stop`` ended it early, so the episodes are fewer than asked (maybe none)."""

    returns: list[float]
    lengths: list[int]
    videos: list[str] = field(default_factory=list)
    stopped: bool = False

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """``return_mean``, ``return_std`` (population), ``len_mean``, under ``prefix``."""
        returns = np.asarray(self.returns, dtype=np.float64)
        return {
            f"{prefix}return_mean": float(returns.mean()),
            f"{prefix}return_std": float(returns.std()),
            f"{prefix}ep_len_mean": float(np.mean(self.lengths)),
        }


@torch.no_grad()
def evaluate_policy(
    policy: ActorCritic,
    env_factory: VecEnvFactory,
    n_episodes: int,
    deterministic: bool = True,
    seed: int = 0,
    video_dir: str | Path | None = None,
    video_episodes: int = 1,
    name_prefix: str = "eval",
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    should_stop: Callable[[], bool] | None = None,
) -> EvalResult:
    """Play ``n_episodes`` on one fresh env (episode ``i`` reset with ``seed + i``).

    Observations (a ``Dict``'s keys the policy reads, in its dtypes) go through
    ``policy.preprocess``, which applies the running statistics without updating them. With
    ``video_dir``, the first ``video_episodes`` episodes are written as mp4.
    An env without a time limit of its own is truncated at ``max_episode_steps``, so an episode
    that never terminates still ends; ``should_stop`` (asked every step, e.g. "a pre-emption
    signal arrived") ends the evaluation early. A recurrent policy carries its state from step to
    step and starts each episode from the zero state.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes={n_episodes}: evaluate at least 1 episode")
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps={max_episode_steps}: cap episodes at 1 step or more")
    env = env_factory.env_fn(render_mode="rgb_array" if video_dir else None)()
    capped = env.spec is None or env.spec.max_episode_steps is None
    if capped:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    if isinstance(env.action_space, gym.spaces.Box):
        env = gym.wrappers.ClipAction(env)
    if video_dir:
        env = gym.wrappers.RecordVideo(
            env,
            str(video_dir),
            episode_trigger=lambda episode: episode < video_episodes,
            name_prefix=name_prefix,
        )
    device = next(policy.parameters()).device

    def one_row(dtype: np.dtype, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=dtype), device=device)[None]

    no_reset = torch.zeros(1, device=device)  # a recurrent state starts at zero with each episode
    was_training = policy.training
    policy.eval()
    returns: list[float] = []
    lengths: list[int] = []
    stopped = False
    try:
        for episode in range(n_episodes):
            obs, _ = env.reset(seed=seed + episode)
            state = policy.initial_state(1, device)  # None: feed-forward
            total, length, done = 0.0, 0, False
            while not done:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                net_obs = policy.preprocess(tree_map(one_row, policy.input_dtype, obs))
                if state is None:
                    action = policy.act(net_obs, deterministic=deterministic)[0]
                else:
                    noise = None if deterministic else policy.noise((1,), device)
                    action, state = policy.step(net_obs, Sequences.one_step(state, no_reset), noise)
                action = action[0].cpu().numpy()
                action = action.astype(policy.action_dtype)  # as the rollout stores it (int8 MultiBinary)
                if policy.is_discrete:
                    action = int(action)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            if stopped:
                break
            if capped and truncated and length == max_episode_steps:
                log.warning(
                    "evaluation episode %d ended at the cap of %d steps (%s has no time limit); "
                    "set env.max_episode_steps or the evaluation's max_episode_steps",
                    episode,
                    max_episode_steps,
                    env_factory.id,
                )
            returns.append(total)
            lengths.append(length)
    finally:
        env.close()
        policy.train(was_training)
    videos = sorted(str(p) for p in Path(video_dir).glob(f"{name_prefix}-episode-*.mp4")) if video_dir else []
    return EvalResult(returns, lengths, videos, stopped)
