"""scripts/peer_equivalence.py: its statistics on hand-made scores, its SB3 schedule and settings.

Nothing here trains or needs stable-baselines3; the probability-of-improvement tests need rliable.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch

from rlcamp.algos.losses import value_loss
from tests.helpers.config import compose_train

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("peer_equivalence", ROOT / "scripts" / "peer_equivalence.py")
peer = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = peer  # dataclasses look their module up there
spec.loader.exec_module(peer)


def brute_force_improvement(x: list[float], y: list[float]) -> float:
    """``P(X > Y)`` by counting every pair, a tie counting ½."""
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(x, y)]
    return sum(wins) / len(wins)


@pytest.fixture
def rliable():
    return pytest.importorskip("rliable", reason="rliable is needed for the probability of improvement")


def test_dominating_scores_improve_with_probability_one(rliable):
    y = [float(v) for v in range(10)]
    x = [v + 100.0 for v in y]
    result = peer.compare(x, y, reps=200)
    assert result["prob_improvement"] == 1.0
    assert result["prob_improvement_ci95"] == [1.0, 1.0]
    # exact two-sided p of complete separation at n = m = 10: 2 / C(20, 10)
    assert result["p_value"] == pytest.approx(2 / math.comb(20, 10), rel=1e-6)


def test_identical_scores_are_a_coin_flip(rliable):
    x = [88.0, 323.0, 442.0, 263.0, 481.0, 314.0, 443.0, 97.0, 120.0, 350.0]
    result = peer.compare(x, list(x), reps=500)
    assert result["prob_improvement"] == 0.5
    assert result["p_value"] == pytest.approx(1.0)
    low, high = result["prob_improvement_ci95"]
    assert low < 0.5 < high


def test_all_tied_scores_give_p_one_and_a_point_interval(rliable):
    result = peer.compare([500.0] * 10, [500.0] * 10, reps=200)
    assert result["p_value"] == 1.0
    assert result["prob_improvement"] == 0.5
    assert result["prob_improvement_ci95"] == [0.5, 0.5]


def test_interleaved_samples_of_one_distribution_are_not_told_apart(rliable):
    x = [float(v) for v in range(0, 20, 2)]
    y = [float(v) for v in range(1, 20, 2)]
    result = peer.compare(x, y, reps=200)
    assert result["p_value"] > 0.5
    assert result["prob_improvement"] == pytest.approx(brute_force_improvement(x, y))


def test_probability_of_improvement_counts_pairs_with_ties_as_half(rliable):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, size=12).astype(float).tolist()
    y = rng.integers(0, 6, size=9).astype(float).tolist()
    result = peer.compare(x, y, reps=200)
    assert result["prob_improvement"] == pytest.approx(brute_force_improvement(x, y))
    assert (result["n_x"], result["n_y"]) == (12, 9)


def test_two_runs_each_cannot_reach_80_percent_power():
    # the smallest two-sided exact p with n = m = 2 is 1/3: no shift is ever significant at 5%
    assert peer.detectable_shift([1.0, 2.0], [1.5, 2.5]) == math.inf


def t_test_detectable_effect(n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """Cohen's d a two-sided two-sample t-test (n per group) detects with ``power``: the
    noncentral-t power equation solved for d (the reference of power tables, ≈ 1.32 at n = 10)."""
    df, critical = 2 * n - 2, scipy.stats.t.ppf(1 - alpha / 2, 2 * n - 2)

    def t_power(d: float) -> float:
        nc = d * math.sqrt(n / 2)
        return scipy.stats.nct.sf(critical, df, nc) + scipy.stats.nct.cdf(-critical, df, nc)

    return scipy.optimize.brentq(lambda d: t_power(d) - power, 0.1, 3.0)


def test_detectable_shift_of_ten_normal_runs_is_about_one_and_a_third_sigma():
    quantiles = [
        float(v) for v in np.sqrt(2) * np.array([-1.5, -1.0, -0.7, -0.4, -0.1, 0.1, 0.4, 0.7, 1.0, 1.5])
    ]
    sigma = float(np.std(quantiles, ddof=1))
    shift = peer.detectable_shift(quantiles, quantiles)
    # On normal data no test beats the t-test, so the U test needs at least its d; asymptotically
    # it needs d·√(π/3) (Pitman efficiency 3/π), and an exact test on 10 discrete scores a bit more.
    d_t = t_test_detectable_effect(10)
    assert d_t * sigma < shift < 1.25 * d_t * math.sqrt(math.pi / 3) * sigma
    # independent of the bisection: fresh draws shifted by it are rejected at least ~80% of the time
    # (the rate steps up across the gaps of 10 discrete scores), shifted by 0.6 of it clearly less often
    rng = np.random.default_rng(12345)
    centred = np.asarray(quantiles) - np.median(quantiles)

    def power_at(delta: float) -> float:
        x, y = rng.choice(centred, size=(4000, 10)), rng.choice(centred, size=(4000, 10))
        return float(np.mean(scipy.stats.mannwhitneyu(x + delta, y, axis=1).pvalue < 0.05))

    assert power_at(shift) > 0.78
    assert power_at(0.6 * shift) < 0.7


def test_shifted_linear_matches_rlcamp_annealing():
    """SB3 sees ``p = 1 - (k+1)/K`` at rollout k's update; rlcamp's factor there is ``1 - k/K``."""
    n_rollouts, batch = 391, 256
    schedule = peer.ShiftedLinear(2e-3, n_rollouts)
    for k in range(n_rollouts):
        progress = 1.0 - (k + 1) * batch / (n_rollouts * batch)
        assert schedule(progress) == pytest.approx(2e-3 * (1.0 - k / n_rollouts))
    assert schedule(1.0) == 2e-3  # SB3 builds its optimizer with the schedule at p = 1


def test_first_solved_counts_the_budget_when_never_reached():
    assert peer.first_solved([256, 512, 768], [400.0, 475.0, 500.0], 1000) == 512
    assert peer.first_solved([256, 512], [400.0, 474.9], 1000) == 1000


def test_parse_seeds_reads_ranges_and_lists():
    assert peer.parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert peer.parse_seeds("5") == [5]


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_sb3_kwargs_follow_the_composed_config(algo, tmp_path):
    cfg = compose_train([f"algo={algo}", "env=cartpole"], tmp_path)
    kw = peer.sb3_kwargs(cfg)
    assert (kw["n_steps"], kw["gamma"], kw["gae_lambda"]) == (
        cfg.algo.n_steps,
        cfg.algo.gamma,
        cfg.algo.gae_lambda,
    )
    assert kw["normalize_advantage"] == cfg.algo.normalize_advantage
    assert kw["policy_kwargs"]["optimizer_class"].__name__ == cfg.algo.optimizer._target_.rsplit(".", 1)[-1]
    assert kw["policy_kwargs"]["net_arch"]["pi"] == list(cfg.network.hidden_sizes)
    if algo == "ppo":
        assert kw["batch_size"] * cfg.algo.n_minibatches == cfg.algo.n_steps * cfg.env.n_envs


def test_sb3_value_coefficient_gives_rlcamps_value_loss(tmp_path):
    """SB3 minimizes ``vf_coef·mean((R - V)²)``; rlcamp ``c_v·½·mean((V - R)²)``."""
    cfg = compose_train(["algo=a2c", "env=cartpole"], tmp_path)
    values, returns = torch.randn(40), torch.randn(40)
    ours = cfg.algo.vf_coef * value_loss(values, values, returns)
    sb3 = peer.sb3_kwargs(cfg)["vf_coef"] * torch.nn.functional.mse_loss(returns, values)
    assert sb3.item() == pytest.approx(ours.item())


def test_settings_without_an_sb3_equivalent_are_refused(tmp_path):
    cfg = compose_train(["algo=ppo", "env=cartpole", "network=mlp_shared"], tmp_path)
    with pytest.raises(ValueError, match="network.shared"):
        peer.sb3_kwargs(cfg)


def test_bootstrap_interval_is_reproducible_and_leaves_numpys_rng_alone(rliable):
    x, y = [1.0, 4.0, 2.0, 8.0, 5.0], [3.0, 6.0, 7.0, 0.0, 9.0]
    np.random.seed(123)
    expected_draw = np.random.rand()
    np.random.seed(123)
    first = peer.compare(x, y, reps=300)
    assert np.random.rand() == expected_draw
    assert peer.compare(x, y, reps=300) == first
