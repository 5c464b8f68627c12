"""The fast head paths against torch.distributions, which define the policies."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, Normal, kl_divergence

from rlcamp.nn import ActorCritic, BernoulliHead, CategoricalHead, GaussianHead, MultiCategoricalHead
from rlcamp.nn.heads import mask_logits

NVEC = (3, 5, 2)  # uneven on purpose: the segments are padded to the widest


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
    "action_space",
    [
        gym.spaces.Discrete(3),
        gym.spaces.Box(-1, 1, (2,), np.float32),
        gym.spaces.MultiDiscrete(NVEC),
        gym.spaces.MultiBinary(4),
        gym.spaces.MultiBinary((2, 3)),
    ],
    ids=["discrete", "box", "multidiscrete", "multibinary", "multibinary-2d"],
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
    assert policy.sample(obs, policy.head.noise((32,))).shape == (32, *action_space.shape)
    assert policy.act(obs, deterministic=True)[0].shape == (32, *action_space.shape)


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


@pytest.fixture
def multicategorical():
    torch.manual_seed(0)
    head = MultiCategoricalHead(8, NVEC, init_gain=1.0)
    return head, head(torch.randn(64, 8))


@pytest.fixture(params=[(4,), (2, 3)], ids=["flat", "2d"])
def bernoulli(request):
    torch.manual_seed(0)
    head = BernoulliHead(8, request.param, init_gain=1.0)
    return head, head(torch.randn(64, 8))


def segment_categoricals(logits: torch.Tensor) -> list[Categorical]:
    """The MultiDiscrete policy written out: one ``Categorical`` per segment of the logits."""
    return [Categorical(logits=z) for z in torch.split(logits, NVEC, dim=-1)]


def bernoullis(head: BernoulliHead, logits: torch.Tensor) -> Independent:
    """The MultiBinary policy written out: ``Independent(Bernoulli(z))`` over the space's shape."""
    shaped = logits.reshape(*logits.shape[:-1], *head.action_shape)
    return Independent(Bernoulli(logits=shaped), len(head.action_shape))


def test_multicategorical_log_prob_and_entropy_match_a_product_of_categoricals(multicategorical):
    head, logits = multicategorical
    actions = torch.stack([torch.randint(0, n, (64,)) for n in NVEC], dim=-1)
    log_prob, entropy = head.log_prob_entropy(logits, actions)
    parts = segment_categoricals(logits)
    expected_log_prob = sum(d.log_prob(actions[:, j]) for j, d in enumerate(parts))
    expected_entropy = sum(d.entropy() for d in parts)
    torch.testing.assert_close(log_prob, expected_log_prob)
    torch.testing.assert_close(entropy, expected_entropy)
    torch.testing.assert_close(head.distribution(logits).log_prob(actions), expected_log_prob)
    torch.testing.assert_close(head.distribution(logits).entropy(), expected_entropy)


def test_bernoulli_log_prob_and_entropy_match_independent_bernoullis(bernoulli):
    head, logits = bernoulli
    actions = torch.randint(0, 2, (64, *head.action_shape), dtype=torch.int8)  # as the rollout stores them
    log_prob, entropy = head.log_prob_entropy(logits, actions)
    dist = bernoullis(head, logits)
    torch.testing.assert_close(log_prob, dist.log_prob(actions.float()))
    torch.testing.assert_close(entropy, dist.entropy())
    own = head.distribution(logits)
    torch.testing.assert_close(own.log_prob(actions.float()), dist.log_prob(actions.float()))


def random_kl_case(name: str) -> tuple[torch.nn.Module, tuple, tuple, torch.Tensor]:
    """A head, two random parameterizations of it and ``torch.distributions.kl_divergence`` between them."""
    torch.manual_seed(3)
    if name == "categorical":
        head, old, new = CategoricalHead(1, 5), torch.randn(64, 5), 2 * torch.randn(64, 5)
        return head, (old,), (new,), kl_divergence(Categorical(logits=old), Categorical(logits=new))
    if name == "gaussian":
        head = GaussianHead(1, 3)
        (old_mean, new_mean), (old_log_std, new_log_std) = torch.randn(2, 64, 3), torch.randn(2, 3)
        old_dist = Independent(Normal(old_mean, old_log_std.exp()), 1)
        expected = kl_divergence(old_dist, Independent(Normal(new_mean, new_log_std.exp()), 1))
        return head, (old_mean, old_log_std), (new_mean, new_log_std), expected
    if name == "multicategorical":
        head, old, new = MultiCategoricalHead(1, NVEC), torch.randn(64, 10), 2 * torch.randn(64, 10)
        pairs = zip(segment_categoricals(old), segment_categoricals(new), strict=True)
        return head, (old,), (new,), sum(kl_divergence(p, q) for p, q in pairs)
    head, old, new = BernoulliHead(1, (2, 3)), torch.randn(64, 6), 2 * torch.randn(64, 6)
    return head, (old,), (new,), kl_divergence(bernoullis(head, old), bernoullis(head, new))


@pytest.mark.parametrize("name", ["categorical", "gaussian", "multicategorical", "bernoulli"])
def test_every_head_kl_matches_torch_on_random_parameters(name):
    head, old, new, expected = random_kl_case(name)
    torch.testing.assert_close(head.kl(old, new), expected)
    torch.testing.assert_close(head.kl(old, old), torch.zeros(64), atol=1e-6, rtol=0)


def enumerate_actions(head: torch.nn.Module) -> torch.Tensor:
    """Every action of a small MultiDiscrete or MultiBinary head, ``[n_actions, *action_shape]``."""
    if isinstance(head, MultiCategoricalHead):
        return torch.tensor(list(itertools.product(*(range(n) for n in head.nvec))))
    return torch.tensor(list(itertools.product((0, 1), repeat=head.n))).reshape(-1, *head.action_shape)


@pytest.mark.parametrize(
    "make",
    [lambda: MultiCategoricalHead(1, NVEC), lambda: BernoulliHead(1, (2, 3))],
    ids=["multicategorical", "bernoulli"],
)
def test_kl_hessian_is_the_exact_fisher_of_the_logits(make):
    """What NPG/TRPO's Fisher-vector products rely on: the Hessian of ``KL(π_z₀ ‖ π_z)`` at
    ``z = z₀`` equals ``F = Σ_a π(a) ∇_z log π(a) ∇_z log π(a)ᵀ``, summed over every action. Both
    heads' ``fisher_diagonal`` is empty: all their parameters are a layer's, which K-FAC covers."""
    head = make()
    assert head.fisher_diagonal() == []
    torch.manual_seed(4)
    z0 = torch.randn(head.linear.out_features, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda z: head.kl((z0,), (z,)), z0)
    actions = enumerate_actions(head)
    scores = torch.autograd.functional.jacobian(
        lambda z: head.log_prob_entropy(z.expand(len(actions), -1), actions)[0], z0
    )
    probs = head.log_prob_entropy(z0.expand(len(actions), -1), actions)[0].exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(hessian, scores.T @ (probs[:, None] * scores))


def test_gumbel_max_per_segment_samples_each_softmax():
    """Per-segment action frequencies of 200k draws match ``softmax(z_j)``; each frequency's standard
    error is at most ``0.5/√200000 = 1.1e-3``, so 5e-3 is 4.5σ (seeded, so in fact exact every run)."""
    torch.manual_seed(1)
    head = MultiCategoricalHead(1, NVEC)
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5, -0.5, 0.0, 1.5, -2.0, 0.3])
    actions = head.sample(logits.expand(200_000, -1), head.noise((200_000,)))
    assert actions.dtype == torch.int64 and actions.shape == (200_000, 3)
    for j, z in enumerate(torch.split(logits, NVEC)):
        freq = torch.bincount(actions[:, j], minlength=NVEC[j]).double() / 200_000
        torch.testing.assert_close(freq, torch.softmax(z.double(), -1), atol=5e-3, rtol=0)


def test_logistic_noise_samples_each_bernoulli():
    """Frequencies of ones in 200k draws match ``σ(z)`` (standard error <= 1.1e-3, tolerance 4.5σ),
    and the entries are independent: one pair's joint frequency is the product of its marginals."""
    torch.manual_seed(2)
    head = BernoulliHead(1, (2, 3))
    logits = torch.tensor([-2.0, -0.5, 0.0, 0.4, 1.0, 3.0])
    actions = head.sample(logits.expand(200_000, -1), head.noise((200_000,)))
    assert actions.shape == (200_000, 2, 3)
    flat = actions.reshape(200_000, 6).double()
    torch.testing.assert_close(flat.mean(0), torch.sigmoid(logits.double()), atol=5e-3, rtol=0)
    p = torch.sigmoid(logits.double())
    torch.testing.assert_close((flat[:, 1] * flat[:, 4]).mean(), p[1] * p[4], atol=5e-3, rtol=0)


def test_modes_take_each_component_most_likely_value():
    torch.manual_seed(0)
    multi = MultiCategoricalHead(1, NVEC)
    logits = torch.randn(16, sum(NVEC))
    expected = torch.stack([z.argmax(-1) for z in torch.split(logits, NVEC, dim=-1)], dim=-1)
    torch.testing.assert_close(multi.mode(logits), expected)
    binary = BernoulliHead(1, (3,))
    # at p = 1/2 torch's Bernoulli.mode is NaN; the head plays 0
    torch.testing.assert_close(binary.mode(torch.tensor([[-1.0, 0.0, 2.0]])), torch.tensor([[0.0, 0.0, 1.0]]))


@pytest.mark.parametrize(
    "action_space",
    [gym.spaces.MultiDiscrete(NVEC), gym.spaces.MultiBinary(4)],
    ids=["multidiscrete", "multibinary"],
)
def test_multi_heads_act_through_torch_not_the_numpy_actor(action_space):
    """No numpy copy of these heads: the rollout samples through the trained torch policy itself."""
    policy = ActorCritic(gym.spaces.Box(-1, 1, (4,), np.float32), action_space)
    assert policy.numpy_actor() is None
    assert policy.action_shape == action_space.shape and policy.action_dtype == action_space.dtype


def random_mask(shape: tuple[int, ...], segments: tuple[int, ...]) -> torch.Tensor:
    """A random bool mask over ``Σ segments`` logits with at least one valid action per segment."""
    mask = torch.rand(*shape, sum(segments)) < 0.5
    start = 0
    for n in segments:
        first = torch.randint(0, n, shape)
        mask[..., start : start + n] |= torch.nn.functional.one_hot(first, n).bool()
        start += n
    return mask


def valid_categorical(logits: torch.Tensor, mask: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
    """``Categorical`` built on the valid actions only (renormalized) and their indices."""
    valid = torch.nonzero(mask).squeeze(-1)
    return Categorical(logits=logits[valid]), valid


def test_masked_categorical_is_the_softmax_over_the_valid_actions():
    """log π, H and KL of the masked head equal a ``Categorical`` built on the valid actions alone;
    invalid actions have probability exactly 0 and the valid ones sum to 1."""
    torch.manual_seed(0)
    head = CategoricalHead(8, 6, init_gain=1.0)
    logits, other = head(torch.randn(2, 32, 8))
    mask = random_mask((32,), (6,))
    masked, masked_other = mask_logits(logits, mask), mask_logits(other, mask)
    probs = torch.softmax(masked, -1)
    assert (probs[~mask] == 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(32))
    actions = torch.stack([torch.nonzero(row).squeeze(-1)[-1] for row in mask])
    log_prob, entropy = head.log_prob_entropy(masked, actions)
    kl = head.kl((masked,), (masked_other,))
    for i in range(32):
        dist, valid = valid_categorical(logits[i], mask[i])
        dist_other, _ = valid_categorical(other[i], mask[i])
        torch.testing.assert_close(log_prob[i], dist.log_prob(torch.tensor(len(valid) - 1)))
        torch.testing.assert_close(entropy[i], dist.entropy())
        torch.testing.assert_close(kl[i], kl_divergence(dist, dist_other))


def test_masked_multicategorical_is_each_segments_softmax_over_its_valid_actions():
    torch.manual_seed(0)
    head = MultiCategoricalHead(8, NVEC, init_gain=1.0)
    logits, other = head(torch.randn(2, 32, 8))
    mask = random_mask((32,), NVEC)
    masked, masked_other = mask_logits(logits, mask), mask_logits(other, mask)
    bounds = np.cumsum((0, *NVEC))
    actions = torch.stack(
        [
            torch.stack([torch.nonzero(row[a:b]).squeeze(-1)[0] for a, b in itertools.pairwise(bounds)])
            for row in mask
        ]
    )
    log_prob, entropy = head.log_prob_entropy(masked, actions)
    kl = head.kl((masked,), (masked_other,))
    for i in range(32):
        expected = torch.zeros(3)
        for a, b in itertools.pairwise(bounds):
            dist, _ = valid_categorical(logits[i, a:b], mask[i, a:b])
            dist_other, _ = valid_categorical(other[i, a:b], mask[i, a:b])
            expected += torch.stack(
                [dist.log_prob(torch.tensor(0)), dist.entropy(), kl_divergence(dist, dist_other)]
            )
        torch.testing.assert_close(torch.stack([log_prob[i], entropy[i], kl[i]]), expected)


@pytest.mark.parametrize(
    "make", [lambda: CategoricalHead(8, 6, 1.0), lambda: MultiCategoricalHead(8, NVEC, 1.0)]
)
def test_masked_heads_never_sample_nor_choose_an_invalid_action_and_keep_finite_gradients(make):
    """20000 Gumbel-max draws over 4 states and the mode: all valid; the entropy's and the KL's
    gradients through the masked logits are finite (the lowest float, not -inf)."""
    torch.manual_seed(0)
    head = make()
    segments = getattr(head, "nvec", (6,))
    mask = random_mask((4,), segments)
    logits = head(torch.randn(4, 8)).detach().requires_grad_()
    masked = mask_logits(logits, mask)
    draws = head.sample(masked.expand(5000, 4, -1), head.noise((5000, 4)))
    picks = [draws, head.mode(masked)[None]]
    offsets = torch.tensor(np.cumsum((0, *segments[:-1])))
    for actions in picks:
        columns = (actions if actions.dim() == 3 else actions[..., None]) + offsets
        assert mask.expand(len(actions), 4, -1).gather(-1, columns).all()
    _, entropy = head.log_prob_entropy(masked, head.mode(masked))
    (entropy.sum() + head.kl((masked.detach() + 0.1,), (masked,)).sum()).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[~mask] == 0).all()
