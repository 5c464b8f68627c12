"""Return and advantage estimates through the real training loop against hand-solved answers
(what SB3's tests/test_gae.py checks): GAE on episodes with one terminal reward, and the
time-limit bootstrap of an endless task, whose value is ``1/(1-γ)``."""

from __future__ import annotations

import pytest
import torch

from rlcamp.algos import base
from rlcamp.train import train

HORIZON, GAMMA, LAM, V = 4, 0.9, 0.8, 0.5


def hand_solved_gae(horizon: int, gamma: float, lam: float, v: float) -> torch.Tensor:
    """``A_k`` at step ``k`` of an episode with ``V ≡ v`` and reward 1 on its last step only:
    ``δ = γv - v`` before the last step, ``δ = 1 - v`` on it (terminal: no bootstrap), and
    ``A_k = Σ_j (γλ)^j δ_{k+j}`` to the end of the episode."""
    deltas = [gamma * v - v] * (horizon - 1) + [1.0 - v]
    return torch.tensor(
        [sum((gamma * lam) ** j * deltas[k + j] for j in range(horizon - k)) for k in range(horizon)]
    )


def test_gae_of_a_terminal_reward_matches_the_hand_solution(make_cfg, monkeypatch):
    """PPO's first update batch (one full-batch pass, no normalization) with the critic held at
    ``V ≡ 0.5`` during the first collection: two whole episodes per env, GAE(λ) by hand."""
    batches, collect = [], base.OnPolicyAlgorithm.collect_rollout

    def collect_with_constant_critic(self):
        if not batches:
            with torch.no_grad():
                self.policy.value_head.weight.zero_()
                self.policy.value_head.bias.fill_(V)
        batches.append(collect(self))
        return batches[-1]

    monkeypatch.setattr(base.OnPolicyAlgorithm, "collect_rollout", collect_with_constant_critic)
    cfg = make_cfg(
        "debug=default",
        "env.id=tests.helpers.envs:TerminalRewardEnv",
        f"+env.kwargs.horizon={HORIZON}",
        "env.n_envs=3",
        f"algo.n_steps={2 * HORIZON}",
        f"algo.gamma={GAMMA}",
        f"algo.gae_lambda={LAM}",
        "algo.update_epochs=1",
        "algo.n_minibatches=1",
        "algo.normalize_advantage=false",
        f"total_env_steps={2 * HORIZON * 3}",
    )
    train(cfg)
    batch = batches[0]
    expected = hand_solved_gae(HORIZON, GAMMA, LAM, V).repeat(2)  # [T]: two episodes per env
    torch.testing.assert_close(batch.advantages.view(2 * HORIZON, 3), expected[:, None].expand(-1, 3))
    torch.testing.assert_close(batch.returns, batch.advantages + V)
    torch.testing.assert_close(batch.values, torch.full_like(batch.values, V))


def test_hand_solution_is_the_discounted_return_at_lambda_one():
    """λ = 1, v = 0: ``A_k`` is the Monte-Carlo return ``γ^{H-1-k}`` of the terminal reward."""
    torch.testing.assert_close(hand_solved_gae(4, 0.9, 1.0, 0.0), torch.tensor([0.9**3, 0.9**2, 0.9, 1.0]))


@pytest.mark.parametrize("max_episode_steps", [3, 8])
def test_bootstrapping_critic_learns_the_infinite_horizon_value(make_cfg, max_episode_steps):
    """Reward 1 per step until a time limit: a critic bootstrapping ``γV(s_final)`` on truncation
    learns ``V = 1/(1-γ) = 2`` for γ = 0.5, whatever the limit. Treating the limit as a terminal
    state would give ``Σ_{k<H} γ^k`` averaged over the episode (≈1.6 for H = 3)."""
    _, module = train(
        make_cfg(
            "debug=default",
            "env.id=tests.helpers.envs:EndlessRewardEnv",
            f"env.max_episode_steps={max_episode_steps}",
            "env.n_envs=4",
            "algo.n_steps=16",
            "algo.gamma=0.5",
            "algo.gae_lambda=0.95",
            "algo.update_epochs=10",
            "algo.n_minibatches=1",
            "algo.clip_range_vf=null",
            "algo.anneal_lr=false",
            "algo.optimizer.lr=0.01",
            "total_env_steps=3200",
        )
    )
    with torch.no_grad():
        value = float(module.policy.value(torch.zeros(1, 1)))
    assert value == pytest.approx(2.0, abs=0.05)
