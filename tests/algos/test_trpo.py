"""TRPO's step on real rollouts (KL bound, surrogate gain, rejection) and learning on fixed seeds."""

from __future__ import annotations

import pytest
import torch

from rlcamp.algos import TRPO, ConfigError
from rlcamp.algos.natural import flat_params, mean_kl, snapshot
from rlcamp.algos.npg import held_out_gains, importance_surrogate
from rlcamp.train import build
from tests.helpers.learning import LearningClaim


def rollout_batch(make_cfg, *overrides):
    """A TRPO module and one processed rollout of it (full batch, advantages normalized), its step
    taken without the held-out test (``algo.signal_z=null``): these tests check the step itself."""
    module = build(make_cfg("algo=trpo", "algo.signal_z=null", *overrides))
    module.setup("fit")
    batch = next(module.minibatches(module.collect_rollout()))
    return module, batch


def surrogate(module, batch):
    with torch.no_grad():
        log_prob, _, _ = module.policy.evaluate_actions(batch.obs, batch.actions)
        return importance_surrogate(log_prob, batch.log_probs, batch.advantages)


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_trpo_step_respects_the_kl_bound_and_improves_the_surrogate(make_cfg, env):
    module, batch = rollout_batch(make_cfg, f"env={env}", "algo.max_kl=0.01")
    try:
        old = snapshot(module.policy, batch.obs)
        before = surrogate(module, batch)
        theta_old = flat_params(module.actor_parameters())
        critic_old = flat_params(module.critic_parameters())
        metrics = module.policy_update(batch)
        with torch.no_grad():
            kl = mean_kl(module.policy, batch.obs, old)
        assert metrics["train/step_fraction"] > 0
        assert not torch.equal(flat_params(module.actor_parameters()), theta_old)
        assert torch.equal(flat_params(module.critic_parameters()), critic_old)
        assert kl <= 0.01
        torch.testing.assert_close(kl, metrics["train/approx_kl"].to(kl.dtype))
        assert surrogate(module, batch) > before
        # a same-sized policy step must move KL close to the bound, not be vanishingly small
        assert kl > 0.001
    finally:
        module.teardown("fit")


def test_trpo_rejects_a_descent_direction_and_leaves_the_policy_unchanged(make_cfg):
    module, batch = rollout_batch(make_cfg, "env=cartpole")
    try:
        module.policy_update(batch)  # one real step so the policy is not at its symmetric init
        theta = flat_params(module.actor_parameters())
        old = snapshot(module.policy, batch.obs)
        loss, _ = module.compute_loss(batch)
        grad = torch.autograd.grad(-loss, module.actor_parameters())
        descent = -torch.cat([g.reshape(-1) for g in grad])
        metrics = module.apply_step(batch, old, 1e-2 * descent / descent.norm())
        assert metrics["train/step_fraction"] == 0 and metrics["train/step_accepted"] == 0
        assert torch.equal(flat_params(module.actor_parameters()), theta)
    finally:
        module.teardown("fit")


def test_held_out_gains_sum_to_the_surrogate_gain():
    """``mean((π/π_old − 1)·Â) = L(θ) − L(θ_old)``, with ``L(θ_old) = mean(Â)`` (ratios of 1)."""
    log_prob, old_log_prob, advantages = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    gain = importance_surrogate(log_prob, old_log_prob, advantages) - advantages.mean()
    torch.testing.assert_close(held_out_gains(log_prob, old_log_prob, advantages).mean(), gain)


@pytest.mark.parametrize(("signal_z", "moves"), [(-1e9, True), (1e9, False)])
def test_signal_z_takes_or_skips_the_whole_step(make_cfg, signal_z, moves):
    """A bar every z passes gives exactly the step without the test; one none passes leaves θ."""
    module, batch = rollout_batch(make_cfg, "env=cartpole")
    try:
        theta = flat_params(module.actor_parameters())
        module.policy_update(batch)
        plain = flat_params(module.actor_parameters())
        module.hparams.signal_z = signal_z
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(theta, module.actor_parameters())
        metrics = module.policy_update(batch)
        assert metrics["train/step_skipped"] == float(not moves)
        assert torch.equal(flat_params(module.actor_parameters()), plain if moves else theta)
    finally:
        module.teardown("fit")


def test_held_out_z_tells_a_signal_from_noise(make_cfg):
    """Advantages that favour one action give a held-out z in the thousands; advantages drawn
    independently of the actions (what a solved time-limited task leaves) give z ~ N(0, 1): the
    mean over 20 noise draws stays within ±1.2 (about 5 standard errors; seeds 0-4 of the rollout:
    single-draw standard deviations 0.65-0.90)."""
    module, batch = rollout_batch(make_cfg, "env=cartpole")
    try:
        torch.manual_seed(0)
        batch.advantages = torch.where(batch.actions == 0, 1.0, -1.0)
        assert module.held_out_z(batch) > 100
        zs = []
        for seed in range(20):
            noise = torch.randn(len(batch), generator=torch.Generator().manual_seed(seed))
            batch.advantages = (noise - noise.mean()) / noise.std()
            zs.append(module.held_out_z(batch))
        assert torch.stack(zs).mean().abs() < 1.2
    finally:
        module.teardown("fit")


def test_shared_body_belongs_to_the_actor(make_cfg):
    """With ``network=mlp_shared`` the value fit trains only the value head: its loss sends no
    gradient into the shared body (the features are detached), only into the head."""
    module, batch = rollout_batch(make_cfg, "env=cartpole", "network=mlp_shared")
    try:
        assert not set(map(id, module.critic_parameters())) & set(map(id, module.actor_parameters()))
        module.critic_value(batch.obs).square().mean().backward()
        assert all(p.grad is None for p in module.policy.actor_body.parameters())
        assert all(
            p.grad is not None and p.grad.abs().sum() > 0 for p in module.policy.value_head.parameters()
        )
        module.zero_grad()
        module.policy.value(batch.obs).square().mean().backward()  # the undetached value would move it
        assert any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in module.policy.actor_body.parameters()
        )
    finally:
        module.teardown("fit")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algo.max_kl=0", r"algo.max_kl=0 must be > 0"),
        ("algo.line_search_shrink=1.5", r"algo.line_search_shrink=1.5 must be in \(0, 1\)"),
        ("algo.cg_iters=0", r"algo.cg_iters=0 must be >= 1"),
    ],
)
def test_nonsense_trpo_settings_are_rejected(make_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        build(make_cfg("algo=trpo", override))


def test_trpo_config_builds_trpo(make_cfg):
    assert isinstance(build(make_cfg("algo=trpo")), TRPO)


TRPO_CARTPOLE = LearningClaim(
    overrides=("algo=trpo", "total_env_steps=100000"),
    threshold=400,
    seeds=tuple(range(201, 205)),
    min_passing=2,
)
TRPO_INVERTED_PENDULUM = LearningClaim(
    overrides=("algo=trpo", "env=inverted_pendulum", "total_env_steps=50000"),
    threshold=900,
    seeds=(201, 202, 203),
    min_passing=1,
)


@pytest.mark.slow
def test_trpo_solves_cartpole_within_100k_steps(tmp_path):
    """rl-zoo's TRPO settings on CartPole-v1 within 100k steps: at least 2 of 4 seeds reach a
    20-episode mean return >= 400.

    With the held-out test (``algo.signal_z=2``, the default), measured on seeds 101-120: 20 of 20
    reach 400, at env steps (sorted) 33.8k, 38.9k, 47.1k, 51.2k, 55.3k, 57.3k, 57.3k, 60.4k, 60.4k,
    61.4k, 62.5k, 64.5k, 68.6k, 69.6k, 71.7k, 73.7k, 73.7k, 75.8k, 82.9k, 98.3k. P(fewer than 2 of 4
    pass) = 0.17%. At the end of the whole budget (sorted): 407, 454, 474, 480, 483, 485, 486, 487,
    496, 499, 500 (×10). (Without the test, seeds 101-140 at the end: 38 of 40 >= 400.)
    """
    TRPO_CARTPOLE.check(tmp_path)


@pytest.mark.slow
def test_trpo_balances_inverted_pendulum_within_50k_steps(tmp_path):
    """The PPO-paper protocol (2048-step batches) on InvertedPendulum-v5 within 50k steps: at least
    1 of 3 seeds reaches a 20-episode mean return >= 900 (max 1000).

    With the held-out test (``algo.signal_z=2``, the default), at the end of the budget, seeds
    101-120 (sorted): 806, 985, 989, 1000 (×17) — 19 of 20 >= 900. P(none of 3 passes) <= 0.20% (2
    of 4 seeds: 0.67%, at about twice the runs). (Without it: 1000 on all 20.)
    """
    TRPO_INVERTED_PENDULUM.check(tmp_path)


TRPO_MULTIDISCRETE = LearningClaim(
    overrides=("algo=trpo", "env.id=tests.helpers.envs:MultiDiscreteTargetEnv", "total_env_steps=16384"),
    threshold=2.7,
    seeds=tuple(range(201, 203)),
    min_passing=1,
)


@pytest.mark.slow
def test_trpo_learns_the_multidiscrete_target_env(tmp_path):
    """TRPO with the CartPole tuning (NPG tuning: 2 envs x 512 steps, δ = 0.01, GAE λ 0.98; backtracking
    line search) on the MultiDiscrete([3, 4, 2]) target env (reward: the fraction of components matching
    the target shown, 4 steps an episode; uniform ≈ 1.44, perfect 4) within 16384 env steps: at least 1
    of 2 seeds reach a 20-episode mean return >= 2.7.

    At the end of the budget, with ``algo.signal_z=2``, seeds 101-120 (sorted): 2.92, 2.93, 2.93,
    2.95, 2.95, 2.97, 2.98, 3.00, 3.03, 3.05, 3.07, 3.07, 3.08, 3.08, 3.10, 3.15, 3.15, 3.15, 3.18,
    3.18 — 20 of 20 >= 2.7. P(fewer than 1 of 2 pass) <= 0.40%
    (``tests.helpers.learning.failure_probability``).
    """
    TRPO_MULTIDISCRETE.check(tmp_path)
