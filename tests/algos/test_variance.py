"""The gradient-variance diagnostic: per-sample gradients against a loop of autograd calls, the
statistics against their formulas, opt-in wiring, and the variance-study experiment and script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from rlcamp.algos.variance import gradient_statistics, per_sample_policy_gradients
from rlcamp.nn import ActorCritic
from rlcamp.train import build, train
from tests.helpers.config import compose_train

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ROOT = Path(__file__).resolve().parents[2]


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


def test_every_study_variant_composes_and_builds(tmp_path):
    study = compose_train(["experiment=variance_study"], tmp_path).variance_study
    assert len(study.variants) == 8
    for overrides in study.variants.values():
        cfg = compose_train(["experiment=variance_study", *overrides], tmp_path)
        assert cfg.env.id == "CartPole-v1" and cfg.algo.grad_diagnostics and not cfg.algo.normalize_advantage
        build(cfg)


def test_study_script_draws_the_figure_and_the_table(tmp_path):
    spec = importlib.util.spec_from_file_location("variance_study", ROOT / "scripts" / "variance_study.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    steps = np.arange(1, 21) * 100.0
    frame = lambda scale: pd.DataFrame(
        {
            "env_steps": steps,
            "rollout/ep_return_mean": steps / 10,  # noqa: E731
            "train/grad_var": np.full(20, scale),
            "train/grad_snr": np.full(20, 0.01),
        }
    )
    runs = {"A": [frame(100.0), frame(100.0)], "B": [frame(1.0)]}
    script.plot(runs, 2000, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    lines = script.table(runs).splitlines()
    assert lines[2].startswith("| A | 2 | 195.0 ± 0.0 | 105.0 ± 0.0 | 100 |")
    assert lines[3].startswith("| B | 1 |") and "| 1 |" in lines[3]
