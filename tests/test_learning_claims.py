"""The learning-test helper: its failure probability against scipy, and its k-of-n decision."""

from __future__ import annotations

import pytest
from scipy import stats

from tests.helpers.learning import LearningClaim, failure_probability, parse_seeds


@pytest.mark.parametrize(("passes", "measured", "n", "k"), [(20, 20, 5, 3), (17, 20, 6, 3), (9, 10, 4, 2)])
def test_failure_probability_is_the_beta_binomial_posterior_predictive(passes, measured, n, k):
    scores = [1.0] * passes + [0.0] * (measured - passes)
    expected = stats.betabinom.cdf(k - 1, n, passes + 1, measured - passes + 1)
    assert failure_probability(scores, 0.5, n, k) == pytest.approx(expected, rel=1e-12)


def test_failure_probability_of_all_passing_seeds_is_not_zero():
    """20 of 20 measured passes leave p uncertain: 5 of 5 required fails with probability 5/26."""
    assert failure_probability([1.0] * 20, 0.5, n=5, k=5) == pytest.approx(5 / 26)


def claim_with_scores(monkeypatch, scores: dict[int, float], min_passing: int) -> tuple[LearningClaim, list]:
    claim = LearningClaim(overrides=(), threshold=10.0, seeds=tuple(scores), min_passing=min_passing)
    trained: list[int] = []

    def fake_score(self, seed, output_dir):
        trained.append(seed)
        return scores[seed]

    monkeypatch.setattr(LearningClaim, "score", fake_score)
    return claim, trained


def test_claim_stops_once_k_seeds_passed(monkeypatch, tmp_path):
    claim, trained = claim_with_scores(monkeypatch, {1: 11.0, 2: 3.0, 3: 12.0, 4: 0.0}, min_passing=2)
    assert claim.check(tmp_path) == {1: 11.0, 2: 3.0, 3: 12.0}
    assert trained == [1, 2, 3]


def test_claim_fails_once_k_is_out_of_reach_and_names_the_scores(monkeypatch, tmp_path):
    claim, trained = claim_with_scores(monkeypatch, {1: 3.0, 2: 11.0, 3: 2.0, 4: 50.0}, min_passing=3)
    with pytest.raises(AssertionError, match=r"1 of the seeds .* 3 of 4 needed; scores by seed: \{1: 3.0"):
        claim.check(tmp_path)
    assert trained == [1, 2, 3]


def test_seed_ranges_parse():
    assert parse_seeds("101-104") == [101, 102, 103, 104]
    assert parse_seeds("1,5,9") == [1, 5, 9]


TINY_A2C = ("algo=a2c", "env.n_envs=2", "algo.n_steps=4", "total_env_steps=2048")


def test_a_claims_run_stops_once_past_its_threshold_and_not_before(tmp_path):
    """A bar a random CartPole policy reaches (≈ 22) ends the run early, past the bar, although the
    first rollouts (8 steps) end no episode and log a NaN return; ``stop=False`` spends the budget."""
    claim = LearningClaim(overrides=TINY_A2C, threshold=15.0, seeds=(1,), min_passing=1)
    stopped = claim.run(1, tmp_path / "stopped")
    assert stopped["status"] == "stopped" and 8 < stopped["env_steps"] < 2048
    assert stopped["ep_return_mean"] > 15.0
    whole = claim.run(1, tmp_path / "whole", stop=False)
    assert whole["status"] == "completed" and whole["env_steps"] == 2048


def test_only_the_threshold_stops_a_claims_run(tmp_path):
    """A bar out of reach: no improvement for hundreds of rollouts does not end the run early."""
    claim = LearningClaim(overrides=TINY_A2C, threshold=1e4, seeds=(1,), min_passing=1)
    summary = claim.run(1, tmp_path)
    assert summary["status"] == "completed" and summary["env_steps"] == 2048
