"""Partially observed tasks: what they hide, and Repeat Previous's memoryless ceiling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlcamp.envs.memory_tasks import RepeatPrevious, hide_entries
from rlcamp.errors import ConfigError


def test_cartpole_without_velocities_shows_position_and_angle_only():
    """The wrapped observation is the full state's entries 0 and 2, step after step."""
    env = hide_entries(gym.make("CartPole-v1"), [1, 3])
    assert env.observation_space.shape == (2,)
    obs, _ = env.reset(seed=3)
    for _ in range(20):
        state = np.asarray(env.unwrapped.state, dtype=np.float32)
        np.testing.assert_array_equal(obs, state[[0, 2]])
        obs, _, terminated, _, _ = env.step(env.action_space.sample())
        if terminated:
            break


def test_hiding_an_entry_that_does_not_exist_names_the_range():
    with pytest.raises(
        ConfigError, match=r"indices \[4\] are outside the 4 observation entries; pick from 0-3"
    ):
        hide_entries(gym.make("CartPole-v1"), [1, 4])


def play(env: RepeatPrevious, policy, seed: int) -> float:
    """One episode's return; ``policy(history)`` sees every observation so far."""
    obs, _ = env.reset(seed=seed)
    history, total, done = [obs], 0.0, False
    while not done:
        obs, reward, done, _, _ = env.step(policy(history))
        history.append(obs)
        total += reward
    return total


def test_repeat_previous_pays_memory_and_caps_a_memoryless_policy_at_one_over_n_cues():
    """Naming the cue ``delay`` steps back scores 1 every episode. A function of the current
    observation alone answers a cue drawn independently of the one asked for, so it scores 1/4 per
    step: over 40 episodes of 50 scored steps, 0.25 ± 0.05 (5 standard errors) for each tried."""
    env = RepeatPrevious(n_cues=4, delay=2, length=52)
    remember = lambda history: int(np.argmax(history[-3])) if len(history) > 2 else 0  # noqa: E731
    assert all(play(env, remember, seed) == pytest.approx(1.0) for seed in range(5))
    for table in [(0, 0, 0, 0), (0, 1, 2, 3), (1, 2, 3, 0), (3, 3, 1, 1)]:
        memoryless = lambda history, table=table: table[int(np.argmax(history[-1]))]  # noqa: E731
        assert np.mean([play(env, memoryless, seed) for seed in range(40)]) == pytest.approx(0.25, abs=0.05)


def test_a_delay_as_long_as_the_episode_is_refused():
    with pytest.raises(ConfigError, match="delay=52 must be in 1..length-1"):
        RepeatPrevious(delay=52, length=52)
