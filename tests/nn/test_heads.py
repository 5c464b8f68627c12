"""The fast head paths against torch.distributions, which define the policies."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.nn import ActorCritic, CategoricalHead, GaussianHead


@pytest.fixture
def categorical():
    torch.manual_seed(0)
    head = CategoricalHead(8, 5, init_gain=1.0)
    return head, head(torch.randn(64, 8))


@pytest.fixture
def gaussian():
    torch.manual_seed(0)
    head = GaussianHead(8, 3, log_std_init=-0.3, init_gain=1.0)
    with torch.no_grad():
        head.log_std.copy_(torch.tensor([-0.5, 0.0, 0.7]))
    return head, head(torch.randn(64, 8))


def test_categorical_log_prob_and_entropy_match_torch(categorical):
    head, logits = categorical
    actions = torch.randint(0, 5, (64,))
    log_prob, entropy = head.log_prob_entropy(logits, actions)
    dist = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(log_prob, dist.log_prob(actions))
    torch.testing.assert_close(entropy, dist.entropy())


def test_gaussian_log_prob_and_entropy_match_torch(gaussian):
    head, mean = gaussian
    actions = torch.randn(64, 3)
    log_prob, entropy = head.log_prob_entropy(mean, actions)
    dist = torch.distributions.Independent(torch.distributions.Normal(mean, head.log_std.exp()), 1)
    torch.testing.assert_close(log_prob, dist.log_prob(actions))
    torch.testing.assert_close(entropy, dist.entropy())
    torch.testing.assert_close(head.distribution(mean).log_prob(actions), dist.log_prob(actions))


def test_gumbel_max_samples_the_softmax():
    """Empirical action frequencies of Gumbel-max match softmax(z) (chi-square-sized tolerance)."""
    torch.manual_seed(1)
    head = CategoricalHead(1, 4)
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0]]).expand(200_000, 4)
    actions = head.sample(logits, head.noise((200_000,)))
    freq = torch.bincount(actions, minlength=4).double() / 200_000
    torch.testing.assert_close(freq, torch.softmax(logits[0].double(), -1), atol=4e-3, rtol=0)


def test_gaussian_samples_have_the_policy_moments(gaussian):
    head, mean = gaussian
    torch.manual_seed(2)
    m = mean[:1].detach().expand(100_000, 3)
    with torch.no_grad():
        samples = head.sample(m, head.noise((100_000,)))
    torch.testing.assert_close(samples.mean(0), m[0], atol=0.03, rtol=0)
    torch.testing.assert_close(samples.std(0), head.log_std.exp().detach(), atol=0.03, rtol=0)


@pytest.mark.parametrize(
    "action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,), np.float32)], ids=["discrete", "box"]
)
@pytest.mark.parametrize("shared", [False, True], ids=["separate", "shared"])
def test_actor_critic_fast_paths_agree_with_distribution(action_space, shared):
    torch.manual_seed(0)
    policy = ActorCritic(gym.spaces.Box(-1, 1, (4,), np.float32), action_space, shared=shared)
    obs = torch.randn(32, 4)
    actions, log_prob, value = policy.act(obs)
    fast_log_prob, entropy, fast_value = policy.evaluate_actions(obs, actions)
    torch.testing.assert_close(fast_log_prob, log_prob)
    torch.testing.assert_close(entropy, policy.distribution(obs).entropy())
    torch.testing.assert_close(fast_value, value)
    expected_shape = (32,) if isinstance(action_space, gym.spaces.Discrete) else (32, 2)
    assert policy.sample(obs, policy.head.noise((32,))).shape == expected_shape


def test_shared_network_shares_the_body():
    policy = ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), shared=True)
    assert policy.actor_body is policy.critic_body
    separate = ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    n_shared = sum(p.numel() for p in policy.parameters())
    assert n_shared < sum(p.numel() for p in separate.parameters())


def test_orthogonal_init_gains():
    policy = ActorCritic(gym.spaces.Box(-1, 1, (64,)), gym.spaces.Discrete(64), hidden_sizes=(64, 64))
    w = policy.actor_body[2].weight.detach()
    torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(64), atol=1e-4, rtol=0)  # gain √2
    head_w = policy.head.linear.weight.detach()
    torch.testing.assert_close(head_w @ head_w.T, 1e-4 * torch.eye(64), atol=1e-7, rtol=0)  # gain 0.01
