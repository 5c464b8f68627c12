"""The fixed-policy bias/variance study: its statistics on hand-made estimates, the exact bandit,
the reference gradient's convergence, the estimators' weights against brute-force sums, the
episode sampler, the critics' fits, and one tiny end-to-end study."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.algos.bias_variance import (
    Episodes,
    StudySettings,
    bandit_exact_gradient,
    bandit_gradients,
    batch_gradients,
    check_study_spaces,
    error_statistics,
    estimator_names,
    estimator_weights,
    fit_q_td,
    fit_value,
    reference_gradient,
    run_study,
    sample_episodes,
)
from rlcamp.algos.reinforce import reward_to_go
from rlcamp.algos.variance import per_sample_policy_gradients
from rlcamp.envs.factory import VecEnvFactory
from rlcamp.nn import ActorCritic
from rlcamp.nn.q_critic import QCritic

CARTPOLE = VecEnvFactory(id="CartPole-v1")
LOGITS = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
MEANS = torch.tensor([10.0, 11.0, 12.5], dtype=torch.float64)


def cartpole_policy(seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    return ActorCritic(*CARTPOLE.spaces(), hidden_sizes=(16,))


# ---------------------------------------------------------------------------- statistics
def test_error_statistics_on_a_hand_computed_pair():
    """ĝ ∈ {(1, 0), (3, 0)}, g = (1, 0): ḡ = (2, 0), variance = (1 + 1)/1 = 2,
    bias² = ‖ḡ - g‖² - variance/R = 1 - 1 = 0, MSE = (0 + 4)/2 = 2, cosine 1."""
    stats = error_statistics(np.array([[1.0, 0.0], [3.0, 0.0]]), np.array([1.0, 0.0]), n_boot=10)
    assert stats["variance"][0] == pytest.approx(2.0)
    assert stats["bias2"][0] == pytest.approx(0.0)
    assert stats["mse"][0] == pytest.approx(2.0)
    assert stats["cosine"][0] == pytest.approx(1.0)
    stats = error_statistics(np.array([[1.0, 0.0], [3.0, 0.0]]), np.zeros(2), reference_var=0.5, n_boot=10)
    assert stats["bias2"][0] == pytest.approx(4.0 - 1.0 - 0.5)
    assert stats["mse"][0] == pytest.approx(5.0 - 0.5)


def test_error_statistics_recover_a_known_mean_and_covariance_and_mse_is_their_sum():
    """Gaussian estimates ĝ ~ N(μ, Σ): bias² → ‖μ - g‖², variance → tr Σ, MSE = bias² + variance."""
    rng = np.random.default_rng(0)
    mu, g = np.array([1.0, -2.0, 0.5]), np.array([0.5, -2.0, 1.0])
    a = rng.normal(size=(3, 3))
    cov = a @ a.T
    estimates = rng.multivariate_normal(mu, cov, size=4000)
    stats = error_statistics(estimates, g, n_boot=500)
    for key, truth in (("bias2", float((mu - g) @ (mu - g))), ("variance", float(np.trace(cov)))):
        value, low, high = stats[key]
        assert low <= truth <= high and value == pytest.approx(truth, rel=0.1), (key, stats[key], truth)
    assert stats["mse"][0] == pytest.approx(stats["bias2"][0] + stats["variance"][0], rel=1e-12)


def test_bandit_reinforce_is_unbiased_a_constant_baseline_cuts_variance_a_batch_mean_is_biased():
    """Against the exact gradient ``π ⊙ (μ - π·μ)``: plain REINFORCE and ``b = V^π`` (a constant) have a
    bias² interval that holds 0, the constant baseline cuts the variance by over 10×, and the batch's
    own mean reward as ``b`` is biased (it contains ``r_i``, so ``E[∇ log π(a_i) b] ≠ 0``)."""
    exact = bandit_exact_gradient(LOGITS, MEANS)
    stats = {
        b: error_statistics(bandit_gradients(LOGITS, MEANS, b, 4000, 8, seed=1), exact, n_boot=500)
        for b in ("none", "value", "mean")
    }
    for b in ("none", "value"):
        assert stats[b]["bias2"][1] <= 0.0 <= stats[b]["bias2"][2], (b, stats[b]["bias2"])
    assert stats["value"]["variance"][2] < 0.1 * stats["none"]["variance"][1]
    assert stats["mean"]["bias2"][1] > 0.0


# ---------------------------------------------------------------------------- gradients
def test_batch_gradients_are_per_sample_gradients_times_the_weights():
    policy = cartpole_policy()
    obs = torch.randn(7, 4)
    actions = torch.randint(0, 2, (7,))
    weights = torch.randn(7, 3)
    expected = per_sample_policy_gradients(policy, obs, actions, torch.ones(7)).T @ weights
    torch.testing.assert_close(batch_gradients(policy, obs, actions, weights, 0.5), 0.5 * expected.T)


def test_two_independent_reference_gradients_agree_within_their_noise():
    policy = cartpole_policy()
    refs = []
    for seed in (1, 1001):
        episodes = sample_episodes(policy, CARTPOLE, 800, seed, n_envs=32)
        returns = reward_to_go(episodes.rewards, episodes.dones, 0.99)
        refs.append(reference_gradient(policy, episodes, returns, float(episodes.lengths.float().mean()), 10))
    (g1, v1), (g2, v2) = refs
    gap = float((g1 - g2).square().sum())
    assert 0.25 <= gap / (v1 + v2) <= 4.0, (gap, v1, v2)
    assert float(g1 @ g2 / (g1.norm() * g2.norm())) > 0.9


# ---------------------------------------------------------------------------- estimators
def hand_episodes() -> Episodes:
    """Two episodes, lengths 3 and 2, observations ``[t + 10·j]`` (episode ``j``), padded to 3 steps."""
    obs = torch.tensor([[[0.0], [10.0]], [[1.0], [11.0]], [[2.0], [0.0]]])
    next_obs = torch.tensor([[[1.0], [11.0]], [[2.0], [12.0]], [[3.0], [0.0]]])
    return Episodes(
        obs=obs,
        actions=torch.tensor([[0, 1], [1, 0], [1, 0]]),
        rewards=torch.tensor([[1.0, 2.0], [-1.0, 3.0], [4.0, 0.0]]),
        dones=torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        truncated=torch.zeros(3, 2),
        next_obs=next_obs,
        mask=torch.tensor([[True, True], [True, True], [True, False]]),
        lengths=torch.tensor([3, 2]),
    )


def test_estimator_weights_match_brute_force_sums():
    episodes, gamma, n_step, lambdas = hand_episodes(), 0.9, 2, (0.0, 0.5, 1.0)

    def value(o):
        return 0.1 * o[..., 0] + 1.0

    def q_value(o, a):
        return value(o) + a.float()

    weights = estimator_weights(episodes, torch.tensor([0, 1]), value, q_value, gamma, lambdas, n_step)
    assert weights.shape[-1] == len(estimator_names(lambdas, n_step))
    for j, length in enumerate(episodes.lengths.tolist()):
        r = episodes.rewards[:length, j].tolist()
        v = [float(value(episodes.obs[t, j])) for t in range(length)] + [0.0]  # V after the end: 0
        returns = [sum(gamma**k * r[t + k] for k in range(length - t)) for t in range(length)]
        deltas = [r[t] + gamma * v[t + 1] - v[t] for t in range(length)]
        mean_return = sum(returns) / length  # one episode per batch here
        for t in range(length):
            m = min(n_step - t % n_step, length - t)
            a2c = sum(gamma**k * r[t + k] for k in range(m)) + gamma**m * v[t + m] - v[t]
            q = v[t] + float(episodes.actions[t, j])
            expected = [returns[t], returns[t] - mean_return, returns[t] - v[t], q, q - v[t], a2c]
            expected += [
                sum((gamma * lam) ** k * deltas[t + k] for k in range(length - t)) for lam in lambdas
            ]
            torch.testing.assert_close(weights[t, j], torch.tensor(expected), msg=f"episode {j}, step {t}")


# ---------------------------------------------------------------------------- sampling and critics
def test_sample_episodes_are_complete_seeded_and_flag_time_limits():
    policy = cartpole_policy()
    limited = VecEnvFactory(id="CartPole-v1", max_episode_steps=12)
    episodes = sample_episodes(policy, limited, 10, seed=3, n_envs=4)
    again = sample_episodes(policy, limited, 10, seed=3, n_envs=4)
    assert episodes.n_episodes == 10 and torch.equal(episodes.obs, again.obs)
    for j, length in enumerate(episodes.lengths.tolist()):
        assert episodes.mask[:, j].sum() == length and episodes.dones[length - 1, j] == 1
        assert episodes.dones[: length - 1, j].sum() == 0
        torch.testing.assert_close(episodes.next_obs[: length - 1, j], episodes.obs[1:length, j])
        assert episodes.truncated[:, j].sum() == (episodes.truncated[length - 1, j] == 1) <= (length == 12)
    assert episodes.truncated.sum() > 0
    with pytest.raises(ValueError, match="Discrete actions on flat observations only"):
        box = ActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)))
        sample_episodes(box, VecEnvFactory(id="Pendulum-v1"), 1, seed=0)
    with pytest.raises(
        ValueError, match=r"flat observations only \(this env: Discrete actions, Dict observations\)"
    ):
        dict_env = VecEnvFactory(id="tests.helpers.envs:DictCountingEnv")
        sample_episodes(ActorCritic(*dict_env.spaces(), obs_keys=["count"]), dict_env, 1, seed=0)


def test_the_study_refuses_multidiscrete_in_one_line_before_building_an_env():
    factory = VecEnvFactory(id="tests.helpers.envs:MultiDiscreteTargetEnv")
    policy = ActorCritic(*factory.spaces())
    message = r"flat observations only \(this env: MultiDiscrete actions\); pick such an env"
    with pytest.raises(ValueError, match=message) as err:
        sample_episodes(policy, VecEnvFactory(id="no-such-env"), 1, seed=0)
    assert "\n" not in str(err.value)


def test_fit_value_regresses_on_its_targets():
    torch.manual_seed(0)
    critic = ActorCritic(*CARTPOLE.spaces(), hidden_sizes=(32,))
    obs = torch.randn(2000, 4)
    targets = obs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 5.0
    params = [*critic.critic_body.parameters(), *critic.value_head.parameters()]
    fit_value(critic.value, params, obs, targets, 500, 1e-2, 256, torch.Generator().manual_seed(0))
    with torch.no_grad():
        residual = (critic.value(obs) - targets).var() / targets.var()
    assert residual < 0.05


def test_fit_q_td_solves_a_deterministic_chain():
    """Five steps of reward 1, then the end; one-hot observations of ``t`` (tabular, so TD's fixed
    point is exact): ``Q(s_t, a) = Σ_{k<5-t} γ^k`` for both actions."""
    torch.manual_seed(0)
    space, actions = gym.spaces.Box(0.0, 1.0, (6,), np.float32), gym.spaces.Discrete(2)
    policy = ActorCritic(space, actions, hidden_sizes=(16,))
    q = QCritic(space, actions, (32,), "tanh")
    onehot = torch.eye(6)
    n = 40
    episodes = Episodes(
        obs=onehot[:5, None].expand(5, n, 6),
        actions=torch.randint(0, 2, (5, n)),
        rewards=torch.ones(5, n),
        dones=(torch.arange(5) == 4).float()[:, None].expand(5, n),
        truncated=torch.zeros(5, n),
        next_obs=onehot[1:, None].expand(5, n, 6),
        mask=torch.ones(5, n, dtype=torch.bool),
        lengths=torch.full((n,), 5),
    )
    gamma = 0.5
    fit_q_td(q, policy, episodes, gamma, 1000, 3e-3, 200, torch.Generator().manual_seed(0))
    expected = torch.tensor([sum(gamma**k for k in range(5 - s)) for s in range(5)])
    with torch.no_grad():
        fitted = q.all_actions(onehot[:5])
    torch.testing.assert_close(fitted, expected[:, None].expand(5, 2), atol=0.02, rtol=0.0)


def test_a_tiny_study_runs_end_to_end():
    settings = StudySettings(
        batches=4,
        batch_env_steps=200,
        reference_env_steps=3000,
        reference_chunks=4,
        fit_env_steps=1000,
        critic_steps=20,
        critic_minibatch=64,
        n_envs=16,
        n_boot=20,
    )
    policy = cartpole_policy()
    q = QCritic(*CARTPOLE.spaces(), (16,), "tanh")
    info, rows = run_study(policy, q, CARTPOLE, settings)
    assert [row["estimator"] for row in rows] == estimator_names(settings.lambdas, settings.n_step)
    assert info["g_ref_sq"] > 0 and info["episodes_per_batch"] >= 1
    for row in rows:
        assert row["mse"] == pytest.approx(row["bias2"] + row["variance"])
        assert row["variance_lo"] <= row["variance"] <= row["variance_hi"]


def test_the_study_refuses_a_recurrent_policy_in_one_line():
    with pytest.raises(ValueError, match="takes feed-forward policies .* set network.memory=none"):
        check_study_spaces(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2), None, "lstm")
