"""The gradient-variance diagnostic: per-sample gradients against a loop of autograd calls, the
statistics against their formulas, and its opt-in wiring."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.algos.variance import gradient_statistics, per_sample_policy_gradients
from rlcamp.nn import ActorCritic
from rlcamp.train import train

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


@pytest.mark.parametrize(
    ("action_space", "shared"),
    [
        (gym.spaces.Discrete(3), False),
        (gym.spaces.Discrete(3), True),
        (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), False),
    ],
)
def test_per_sample_gradients_match_one_backward_per_sample(action_space, shared):
    torch.manual_seed(0)
    policy = ActorCritic(OBS, action_space, hidden_sizes=(8,), shared=shared)
    obs = torch.randn(6, 3)
    actions, _, _ = policy.act(obs)
    weights = torch.randn(6)
    actor = [p for name, p in policy.named_parameters() if name.startswith(("actor_body.", "head."))]
    expected = []
    for i in range(6):
        log_prob = policy.evaluate_actions(obs[i : i + 1], actions[i : i + 1])[0]
        grads = torch.autograd.grad((log_prob * weights[i]).sum(), actor)
        expected.append(torch.cat([g.reshape(-1) for g in grads]))
    torch.testing.assert_close(
        per_sample_policy_gradients(policy, obs, actions, weights), torch.stack(expected)
    )


def test_gradient_statistics_match_their_formulas():
    g = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0], [2.0, 5.0]], dtype=torch.float64)
    mean = g.mean(0)
    var = sum(float((row - mean).square().sum()) for row in g) / 3
    var_hat, snr = gradient_statistics(g)
    assert float(var_hat) == pytest.approx(var)
    assert float(snr) == pytest.approx((float(mean.square().sum()) - var / 4) / var)


def test_diagnostic_is_off_by_default_and_costs_nothing(make_cfg, monkeypatch):
    monkeypatch.setattr(
        "rlcamp.algos.base.policy_gradient_metrics", lambda *a: pytest.fail("computed while off")
    )
    _, module = train(make_cfg("algo=a2c", "debug=default", "total_env_steps=80"))
    assert "train/grad_var" not in module.last_metrics


def test_diagnostic_logs_variance_and_snr_when_on(make_cfg):
    _, module = train(
        make_cfg(
            "algo=reinforce",
            "debug=default",
            "total_env_steps=2000",
            "algo.grad_diagnostics=true",
        )
    )
    assert module.last_metrics["train/grad_var"] > 0 and np.isfinite(module.last_metrics["train/grad_snr"])
