"""GAE and discounted returns against brute-force sums of their definitions."""

from __future__ import annotations

import pytest
import torch

from rlcamp.rollout.advantages import discounted_returns, gae


def brute_force_gae(rewards, values, dones, last_value, gamma, lam):
    """``A_t = Σ_l (γλ)^l δ_{t+l}`` summed term by term, stopping at the episode's end."""
    T, N = rewards.shape
    next_values = torch.cat([values[1:], last_value[None]])
    out = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, coef = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if dones[k, n] else gamma * float(next_values[k, n])
                total += coef * (float(rewards[k, n]) + bootstrap - float(values[k, n]))
                if dones[k, n]:
                    break
                coef *= gamma * lam
            out[t, n] = total
    return out


def brute_force_returns(rewards, dones, last_value, gamma):
    """``R_t = Σ_k γ^k r_{t+k}`` to the episode's end, plus ``γ^{T-t} V(s_T)`` if it runs past T."""
    T, N = rewards.shape
    out = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, coef, ended = 0.0, 1.0, False
            for k in range(t, T):
                total += coef * float(rewards[k, n])
                coef *= gamma
                if dones[k, n]:
                    ended = True
                    break
            out[t, n] = total + (0.0 if ended else coef * float(last_value[n]))
    return out


@pytest.fixture
def rollout():
    g = torch.Generator().manual_seed(0)
    T, N = 17, 3
    rewards = torch.randn(T, N, generator=g, dtype=torch.float64)
    values = torch.randn(T, N, generator=g, dtype=torch.float64)
    last_value = torch.randn(N, generator=g, dtype=torch.float64)
    dones = torch.zeros(T, N, dtype=torch.float64)
    dones[4, 0] = dones[5, 0] = dones[16, 1] = dones[9, 2] = 1.0  # mid-rollout ends, back-to-back, last step
    return rewards, values, dones, last_value


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.0), (0.97, 1.0), (1.0, 0.5)])
def test_gae_matches_brute_force(rollout, gamma, lam):
    rewards, values, dones, last_value = rollout
    expected = brute_force_gae(rewards, values, dones, last_value, gamma, lam)
    torch.testing.assert_close(gae(rewards, values, dones, last_value, gamma, lam), expected)


def test_gae_lambda_zero_is_td_error(rollout):
    rewards, values, dones, last_value = rollout
    next_values = torch.cat([values[1:], last_value[None]])
    td = rewards + 0.9 * (1 - dones) * next_values - values
    torch.testing.assert_close(gae(rewards, values, dones, last_value, 0.9, 0.0), td)


def test_gae_lambda_one_is_return_minus_value(rollout):
    rewards, values, dones, last_value = rollout
    returns = discounted_returns(rewards, dones, last_value, 0.95)
    torch.testing.assert_close(gae(rewards, values, dones, last_value, 0.95, 1.0), returns - values)


@pytest.mark.parametrize("gamma", [0.5, 0.99, 1.0])
def test_discounted_returns_match_brute_force(rollout, gamma):
    rewards, _, dones, last_value = rollout
    expected = brute_force_returns(rewards, dones, last_value, gamma)
    torch.testing.assert_close(discounted_returns(rewards, dones, last_value, gamma), expected)


def test_returns_hand_solved():
    """Rewards 1, 2, 3 then the episode ends: R = [1 + .5·2 + .25·3, 2 + .5·3, 3]."""
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    dones = torch.tensor([[0.0], [0.0], [1.0]])
    out = discounted_returns(rewards, dones, torch.tensor([100.0]), 0.5)
    torch.testing.assert_close(out, torch.tensor([[2.75], [3.5], [3.0]]))
