"""The Q actor-critic: critic shapes, expected-SARSA TD(0) targets against brute force, the
truncation bootstrap, and short runs on Discrete and Box actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.algos.actor_critic import expected_q, td0_targets
from rlcamp.errors import ConfigError
from rlcamp.nn import QCritic
from rlcamp.rollout.buffer import Rollout
from rlcamp.train import build
from tests.helpers.learning import LearningClaim

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def test_td0_targets_match_brute_force():
    g = torch.Generator().manual_seed(0)
    rewards, next_values = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    dones = torch.zeros(6, 2)
    dones[2, 0] = dones[5, 1] = 1.0
    expected = torch.tensor(
        [
            [
                float(rewards[t, n]) + (0.0 if dones[t, n] else 0.9 * float(next_values[t, n]))
                for n in range(2)
            ]
            for t in range(6)
        ]
    )
    torch.testing.assert_close(td0_targets(rewards, next_values, dones, 0.9), expected)


def test_discrete_critic_gathers_the_taken_action_and_expected_q_sums_over_the_policy(make_cfg):
    module = build(make_cfg("algo=actor_critic"))
    critic, policy = module.q_critic, module.policy
    obs, actions = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    q_all = critic.all_actions(obs)
    torch.testing.assert_close(critic(obs, actions), q_all[torch.arange(5), actions])
    probs = policy.distribution(obs).probs
    torch.testing.assert_close(expected_q(policy, critic, obs), (probs * q_all).sum(-1))


def test_box_critic_takes_the_action_as_input():
    critic = QCritic(OBS, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), (16,), "tanh")
    assert critic.body[0].in_features == 3 + 2
    obs, a = torch.randn(4, 3), torch.randn(4, 2)
    assert critic(obs, a).shape == (4,)
    assert not torch.allclose(critic(obs, a), critic(obs, a + 1.0))


def test_targets_bootstrap_truncations_not_terminations(make_cfg):
    module = build(make_cfg("algo=actor_critic", "env.n_envs=2", "algo.n_steps=2", "algo.gamma=0.5"))
    obs = torch.randn(2, 2, 4)
    rollout = Rollout(
        obs=obs,
        actions=torch.zeros(2, 2, dtype=torch.long),
        rewards=torch.ones(2, 2),
        dones=torch.tensor([[1.0, 1.0], [0.0, 0.0]]),
        next_obs=torch.randn(2, 4),
        final_obs=torch.randn(1, 4),
        final_index=torch.tensor([[0, 1]]),
    )  # env 1 truncated at t=0
    with torch.no_grad():
        batch = module.process_rollout(rollout)
        v = lambda x: expected_q(module.policy, module.q_critic, x)  # noqa: E731
        expected = torch.tensor(
            [
                1.0,
                1.0 + 0.5 * float(v(rollout.final_obs)[0]),
                1.0 + 0.5 * float(v(rollout.next_obs)[0]),
                1.0 + 0.5 * float(v(rollout.next_obs)[1]),
            ]
        )
    torch.testing.assert_close(batch.returns, expected)
    torch.testing.assert_close(batch.advantages, module.q_critic(batch.obs, batch.actions).detach())


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_one_update_lowers_the_td_loss_of_the_q_critic(make_cfg, env):
    """Discrete and Box: the step on ``-log π·Q - c_e·H + c_v·½(Q - y)²`` moves ``Q_φ`` toward its
    TD(0) targets (``Q_φ`` has its own parameters, so only the critic term moves it)."""
    module = build(make_cfg("algo=actor_critic", f"env={env}", "algo.optimizer.lr=1e-3"))
    module.setup("fit")
    try:
        batch = next(module.minibatches(module.collect_rollout()))
        with torch.no_grad():
            before = float(module.critic_loss(batch, batch.values))
            q_before = module.q_critic(batch.obs, batch.actions)
        optimizer = module.optimizer_factory(params=module.parameters())
        loss, metrics = module.compute_loss(batch)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            after = float(module.critic_loss(batch, batch.values))
        assert metrics["train/value_loss"] == pytest.approx(before)
        assert after < before
        assert not torch.equal(module.q_critic(batch.obs, batch.actions).detach(), q_before)
    finally:
        module.teardown("fit")


def test_advantage_weight_is_q_minus_its_policy_average(make_cfg):
    module = build(make_cfg("algo=actor_critic", "algo.weight=advantage"))
    obs, actions = torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0])
    with torch.no_grad():
        q_all = module.q_critic.all_actions(obs)
        probs = module.policy.distribution(obs).probs
        expected = q_all[torch.arange(6), actions] - (probs * q_all).sum(-1)
        torch.testing.assert_close(module.policy_weights(obs, actions), expected)


def test_critic_steps_fit_q_to_fixed_targets_before_the_policy_step(make_cfg, monkeypatch):
    """``critic_steps=3``: three critic-only steps lower the TD loss on the rollout's targets, then
    the policy step weights by the fitted critic's ``Ψ`` (not the one the rollout was scored with)."""
    from rlcamp.algos.actor_critic import QActorCritic
    from rlcamp.train import train

    seen: dict[str, list] = {"steps": [], "psi": [], "fitted": [], "td": []}
    gradient_step, compute_loss = QActorCritic.gradient_step, QActorCritic.compute_loss

    def spy_step(self, loss):
        seen["steps"].append(float(loss.detach()))
        gradient_step(self, loss)

    def spy_loss(self, batch):
        with torch.no_grad():
            seen["psi"].append(batch.advantages.clone())
            seen["fitted"].append(self.policy_weights(batch.obs, batch.actions))
            seen["td"].append(float(self.critic_loss(batch, batch.values)))
        return compute_loss(self, batch)

    monkeypatch.setattr(QActorCritic, "gradient_step", spy_step)
    monkeypatch.setattr(QActorCritic, "compute_loss", spy_loss)
    cfg = make_cfg(
        "algo=actor_critic", "algo.critic_steps=3", "algo.optimizer.lr=1e-2", "total_env_steps=128"
    )
    train(cfg)
    critic_losses, joint = seen["steps"][:3], seen["steps"][3]
    assert len(seen["steps"]) == 4 and len(seen["psi"]) == 1  # one rollout: 3 critic steps + 1 joint
    assert critic_losses[2] < critic_losses[0] and seen["td"][0] < critic_losses[0]
    torch.testing.assert_close(seen["psi"][0], seen["fitted"][0])
    assert joint != critic_losses[2]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algo.critic_steps=-1", r"algo.critic_steps=-1 must be >= 0"),
        ("algo.weight=v", r"algo.weight='v' is not a weight: use q or advantage"),
    ],
)
def test_nonsense_actor_critic_settings_are_rejected(make_cfg, override, message):
    from rlcamp.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        build(make_cfg("algo=actor_critic", override))


ACTOR_CRITIC_CARTPOLE = LearningClaim(
    overrides=("algo=actor_critic", "total_env_steps=100000"),
    threshold=300,
    seeds=tuple(range(201, 207)),
    min_passing=2,
)
ACTOR_CRITIC_ADVANTAGE_CARTPOLE = LearningClaim(
    overrides=(
        "algo=actor_critic",
        "algo.weight=advantage",
        "algo.normalize_advantage=true",
        "total_env_steps=100000",
    ),
    threshold=475,
    seeds=(201, 202, 203),
    min_passing=1,
)


@pytest.mark.slow
def test_q_weighted_actor_critic_learns_cartpole(tmp_path):
    """The lecture's estimator (``Ψ = Q_φ``, 20 critic steps per rollout, Adam 1e-3) on CartPole-v1
    within 100k steps: at least 2 of 6 seeds reach a 20-episode mean return >= 300 (random ≈ 22;
    the old one-joint-step default ended at 9-66 on seeds 101-104).

    Measured on seeds 101-120: 17 of 20 reach 300, at env steps (sorted) 23.3k, 24.3k, 26.1k, 30.0k,
    31.6k, 32.0k, 32.9k, 33.5k, 36.6k, 38.7k, 41.6k, 49.3k, 51.3k, 53.4k, 57.9k, 68.4k, 70.5k; seeds
    111, 114 and 115 end the budget at 141.3, 169.3 and 147.6. P(fewer than 2 of 6 pass) = 0.37%.
    The bar was 120 (2 of 4) when a run spent its whole budget; once runs stopped at the bar, all 20
    reached 120 by 9.3k-23.3k steps (median 13.6k), too early to tell a slowed learner. At the end
    of the whole budget the same seeds ended at (sorted) 126, 141, 148, 169, 199, 232, 272, 282,
    299, 313, 320, 368, 469, 471, 472, 485, 486, 500, 500, 500.
    """
    ACTOR_CRITIC_CARTPOLE.check(tmp_path)


@pytest.mark.slow
def test_advantage_weighted_actor_critic_solves_cartpole(tmp_path):
    """Its advantage form (``Ψ = Q_φ − Σ_a π Q_φ``, standardized) within 100k steps: at least 1 of 3
    seeds reaches a 20-episode mean return >= 475.

    Measured on seeds 101-120: 20 of 20 reach 475, at env steps (sorted) 28.9k, 41.0k, 41.6k, 42.2k,
    42.8k, 43.0k, 43.6k, 45.8k, 47.9k, 49.8k, 50.3k, 50.8k, 51.6k, 52.6k, 54.3k, 55.0k, 56.3k,
    58.2k, 64.5k, 66.7k. P(none of 3 passes) = 0.05% (2 of 4 seeds: 0.17%, at about twice the runs).
    At the end of the whole budget: 345 on one, 500 on 19.
    """
    ACTOR_CRITIC_ADVANTAGE_CARTPOLE.check(tmp_path)


@pytest.mark.parametrize("env", ["MultiDiscreteTargetEnv", "MultiBinaryTargetEnv"])
def test_multi_action_spaces_are_refused_in_one_line_naming_the_fix(make_cfg, env):
    message = r"Q critic takes Discrete or Box actions, not Multi.*; use algo=a2c or algo=ppo"
    with pytest.raises(ConfigError, match=message) as err:
        build(make_cfg("algo=actor_critic", f"env.id=tests.helpers.envs:{env}"))
    assert "\n" not in str(err.value)
