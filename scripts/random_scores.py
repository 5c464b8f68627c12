"""Measure the random-policy column of ``rlcamp.stats.NORMALIZATION``: uniform random actions.

    .venv/bin/python scripts/random_scores.py                 # every env of the table, 100 episodes
    .venv/bin/python scripts/random_scores.py --episodes 20 CartPole-v1

Episode ``i`` is reset with ``seed=i`` and its actions come from ``action_space.sample()`` seeded
with ``i``, so the printed means are reproducible on one machine.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from rlcamp.stats import NORMALIZATION


def random_returns(env_id: str, episodes: int) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes of uniform random actions."""
    env = gym.make(env_id)
    returns = np.zeros(episodes)
    for i in range(episodes):
        env.reset(seed=i)
        env.action_space.seed(i)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            returns[i] += float(reward)
            done = terminated or truncated
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("envs", nargs="*", default=sorted(NORMALIZATION))
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()
    print("| env | random mean ± std | episodes | table |")
    print("|---|---:|---:|---:|")
    for env_id in args.envs:
        returns = random_returns(env_id, args.episodes)
        table = NORMALIZATION[env_id].random if env_id in NORMALIZATION else float("nan")
        print(
            f"| {env_id} | {returns.mean():.1f} ± {returns.std(ddof=1):.1f} | {args.episodes} | {table:.1f} |"
        )


if __name__ == "__main__":
    main()
