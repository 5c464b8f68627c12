"""Bias, variance and MSE of the policy-gradient estimators at one frozen policy (the variance study).

At a fixed policy ``π_θ`` every estimator of the family is, on a batch of ``K`` complete episodes,

    ĝ = 1/(K·L̄) Σ_{episodes} Σ_t ∇_θ log π_θ(a_t|s_t) Ψ_t,        L̄ = E[episode length],

an estimate of the per-step policy gradient with the undiscounted on-policy state weighting

    g = E_τ[Σ_t ∇_θ log π_θ(a_t|s_t) G_t] / E_τ[T],    G_t = Σ_{k≥0} γ^k r_{t+k} to the episode's end.

Dividing by the constant ``K·L̄`` instead of the batch's own length keeps ``E[ĝ]`` free of a ratio
bias, so ``E[ĝ] = g`` exactly for REINFORCE with any action-independent baseline. The weights
``Ψ`` are rlcamp's (``estimator_weights``). Over ``R`` independent batches and a reference
``g_ref`` from a much larger, independent sample (``reference_gradient``), ``error_statistics``
reports bias², variance, MSE and the cosine to ``g_ref``, each with a bootstrap interval.
Discrete action spaces only (the Q critic's expected-SARSA target sums over actions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vjp, vmap

from rlcamp.algos.actor_critic import expected_q, td0_targets
from rlcamp.algos.losses import explained_variance, value_loss
from rlcamp.algos.policy_gradient import policy_gradient_loss
from rlcamp.algos.reinforce import reward_to_go
from rlcamp.algos.variance import _LogProb
from rlcamp.envs.factory import VecEnvFactory, final_observations
from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.encoders import is_image_space
from rlcamp.nn.q_critic import QCritic
from rlcamp.nn.rollout_actor import rollout_actor
from rlcamp.rollout.advantages import gae

ValueFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Episodes:
    """Complete episodes, padded time-major: ``[T_max, n]`` (column ``j`` is episode ``j`` from its start).

    ``dones`` is 1 at each episode's last step and on the padding after it, ``truncated`` 1 at the
    last step of an episode a time limit cut, ``next_obs[t]`` is ``s_{t+1}`` (at the last step the
    episode's final observation), ``mask`` marks the real steps. Observations are network inputs.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    truncated: torch.Tensor
    next_obs: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor

    @property
    def n_episodes(self) -> int:
        return self.obs.shape[1]

    def columns(self, index: torch.Tensor | slice) -> Episodes:
        """The episodes ``index`` (trimmed to their longest)."""
        lengths = self.lengths[index]
        t_max = int(lengths.max())
        return Episodes(
            *(getattr(self, f.name)[:t_max, index] for f in fields(self) if f.name != "lengths"),
            lengths=lengths,
        )


def check_study_spaces(
    observation_space: gym.Space,
    action_space: gym.Space,
    action_mask: str | None = None,
    memory: str = "none",
) -> None:
    """Raise a one-line error unless the actions are Discrete, unmasked, the observations a flat
    vector and the policy feed-forward: the Q critic's expected-SARSA target sums over all actions,
    its MLP reads vectors, and every estimator reads steps one by one."""
    if memory != "none":
        raise ValueError(
            f"the variance study takes feed-forward policies (its estimators read steps one by one), not "
            f"network.memory={memory}; set network.memory=none"
        )
    if action_mask is not None:
        raise ValueError(
            "the variance study takes no action mask (its expected-SARSA target sums over every action); "
            "set env.action_mask=null"
        )
    images = is_image_space(observation_space)
    dict_obs = isinstance(observation_space, gym.spaces.Dict)
    if not isinstance(action_space, gym.spaces.Discrete) or images or dict_obs:
        observations = ", images" if images else ", Dict observations" if dict_obs else ""
        raise ValueError(
            "the variance study supports Discrete actions on flat observations only (this env: "
            f"{type(action_space).__name__} actions{observations}); pick such an env, e.g. env=cartpole"
        )


def sample_episodes(
    policy: ActorCritic, env_factory: VecEnvFactory, n_episodes: int, seed: int, n_envs: int = 64
) -> Episodes:
    """``n_episodes`` complete episodes of the frozen ``policy``, ``n_envs`` envs seeded ``seed, seed+1, …``.

    Each env keeps its first ``⌈n_episodes / n_envs⌉`` episodes from reset; they are ordered by env,
    then by time, and the first ``n_episodes`` are returned. The selection depends on counts only,
    not on lengths or returns, so the episodes are i.i.d. draws of ``π_θ``'s episode distribution.
    Actions come from the rollout's numpy actor with Gumbel noise from ``numpy.random.default_rng(seed)``.
    Not ``RolloutCollector``: its fixed-length segments hold complete episodes only up to the cut, and
    keeping those would favour short episodes.
    """
    check_study_spaces(policy.observation_space, policy.action_space, policy.action_mask_key)
    per_env = math.ceil(n_episodes / n_envs)
    env = env_factory(seed=seed, n_envs=n_envs)
    raw_obs, _ = env.reset(seed=seed)
    act = rollout_actor(policy)
    rng = np.random.default_rng(seed)
    n_actions = int(policy.action_space.n)
    finished = np.zeros(n_envs, dtype=np.int64)
    steps: list[tuple[np.ndarray, ...]] = []
    try:
        while (finished < per_env).any():
            obs, action = act(np.array(raw_obs, dtype=np.float32), rng.gumbel(size=(n_envs, n_actions)))
            raw_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated | truncated
            next_raw = np.array(raw_obs, dtype=np.float32)
            if done.any():
                next_raw[done] = final_observations(info, done)
            steps.append((obs, action, reward, done, truncated & ~terminated, next_raw, finished < per_env))
            finished += done & (finished < per_env)
    finally:
        env.close()
    obs, actions, rewards, dones, truncs, next_raw, active = (np.stack(x) for x in zip(*steps, strict=True))
    return _pad_episodes(policy, obs, actions, rewards, dones, truncs, next_raw, active, n_episodes)


def _pad_episodes(
    policy: ActorCritic,
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    dones: np.ndarray,
    truncs: np.ndarray,
    next_raw: np.ndarray,
    active: np.ndarray,
    n_episodes: int,
) -> Episodes:
    """Cut the ``[T, n_envs]`` streams into episodes (env-major order) and pad them into ``Episodes``."""
    starts, envs, lengths = [], [], []
    for e in range(obs.shape[1]):
        ends = np.flatnonzero(dones[:, e] & active[:, e])
        begins = np.concatenate([[0], ends[:-1] + 1])
        starts += begins.tolist()
        lengths += (ends - begins + 1).tolist()
        envs += [e] * len(ends)
    starts, envs, lengths = (np.array(x[:n_episodes]) for x in (starts, envs, lengths))
    t = np.arange(lengths.max())[:, None]
    valid = t < lengths[None]
    rows = np.where(valid, starts[None] + t, 0)

    def pad(x: np.ndarray, fill: float = 0.0) -> torch.Tensor:
        out = x[rows, envs[None]]
        out[~valid] = fill
        return torch.from_numpy(out)

    def network_input(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return policy.preprocess(pad(x))

    return Episodes(
        obs=pad(obs),
        actions=pad(actions.astype(np.int64)),
        rewards=pad(rewards.astype(np.float32)),
        dones=pad(dones.astype(np.float32), fill=1.0),
        truncated=pad(truncs.astype(np.float32)),
        next_obs=network_input(next_raw),
        mask=torch.from_numpy(valid),
        lengths=torch.from_numpy(lengths),
    )


# ---------------------------------------------------------------------------- critics
def fit_value(
    value: ValueFn,
    parameters: Sequence[nn.Parameter],
    obs: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    lr: float,
    minibatch: int,
    generator: torch.Generator,
) -> None:
    """``steps`` Adam steps on ``½(V(s) - y)²`` (``losses.value_loss``), minibatches of ``(obs, y)``."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    for _ in range(steps):
        idx = torch.randint(len(obs), (minibatch,), generator=generator)
        loss = value_loss(value(obs[idx]), targets[idx], targets[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def fit_q_td(
    q_critic: QCritic,
    policy: ActorCritic,
    episodes: Episodes,
    gamma: float,
    steps: int,
    lr: float,
    minibatch: int,
    generator: torch.Generator,
) -> None:
    """Expected-SARSA TD(0) on the sample, rlcamp's actor-critic critic, with a fixed budget of Adam steps.

    Each step regresses ``Q_φ(s, a)`` on ``y = r + γ(1 - d) Σ_a' π(a'|s') Q_φ(s', a')``
    (``actor_critic.td0_targets`` and ``expected_q``; ``d = 1`` at every episode end, a time limit
    included, so ``Q`` targets the time-limited return), ``y`` from the current ``Q_φ`` without
    gradient (semi-gradient).
    """
    m = episodes.mask
    obs, actions, rewards = episodes.obs[m], episodes.actions[m], episodes.rewards[m]
    next_obs, dones = episodes.next_obs[m], episodes.dones[m]
    optimizer = torch.optim.Adam(q_critic.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(len(obs), (minibatch,), generator=generator)
        with torch.no_grad():
            y = td0_targets(rewards[idx], expected_q(policy, q_critic, next_obs[idx]), dones[idx], gamma)
        loss = 0.5 * (q_critic(obs[idx], actions[idx]) - y).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


# ---------------------------------------------------------------------------- estimators
def segment_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
    n_step: int,
) -> torch.Tensor:
    """rlcamp's A2C advantage: GAE(λ=1) within ``n_step``-step segments, bootstrapped at each segment's end.

    ``[T, n]`` in, ``[T, n]`` out; segment ``k`` is steps ``k·n_step … k·n_step + n_step - 1`` of
    each column and is bootstrapped with ``next_values`` at its last step, as an A2C rollout of
    ``n_step`` steps is: ``Â_t = Σ_{k<m} γ^k r_{t+k} + γ^m V(s_{t+m}) - V(s_t)``,
    ``m = n_step - t mod n_step`` (fewer terms where the episode ends first).
    """
    t, n = rewards.shape
    pad = -t % n_step

    def segments(x: torch.Tensor, fill: float) -> torch.Tensor:
        x = torch.cat([x, x.new_full((pad, n), fill)])
        return x.reshape(-1, n_step, n).transpose(0, 1).reshape(n_step, -1)

    last = segments(next_values, 0.0)[-1]
    adv = gae(segments(rewards, 0.0), segments(values, 0.0), segments(dones, 1.0), last, gamma, 1.0)
    return adv.reshape(n_step, -1, n).transpose(0, 1).reshape(-1, n)[:t]


def estimator_names(lambdas: Sequence[float], n_step: int) -> list[str]:
    """The study's estimators, in the order ``estimator_weights`` returns them."""
    return [
        "REINFORCE",
        "REINFORCE + mean baseline",
        "REINFORCE + learned V",
        "Q actor-critic",
        "Q − V̂",
        f"A2C {n_step}-step",
        *(f"GAE λ={lam:g}" for lam in lambdas),
    ]


@torch.no_grad()
def estimator_weights(
    episodes: Episodes,
    batch_of: torch.Tensor,
    value: ValueFn,
    q_value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gamma: float,
    lambdas: Sequence[float],
    n_step: int,
) -> torch.Tensor:
    """``[T_max, n, E]``: each estimator's weight ``Ψ_t`` on every step, as rlcamp's algorithm forms it.

    REINFORCE ``G_t`` (a time limit ends the episode, ``reinforce.reward_to_go``); ``G_t - mean``
    (the mean of ``G`` over the step's batch, ``batch_of[j]`` = batch of episode ``j``); ``G_t - V̂(s_t)``;
    ``Q̂(s_t, a_t)``; ``Q̂(s_t, a_t) - V̂(s_t)``; A2C's ``segment_gae``; ``gae`` at each λ.
    **A time limit ends the episode for every estimator** (no ``γ V̂(s_final)`` bootstrap, unlike
    ``OnPolicyAlgorithm.bootstrap_truncations``), so all of them target the same ``g``, the
    time-limited task's, and what differs is the critic's error. Padding steps carry garbage; mask them.
    """
    m = episodes.mask.to(episodes.rewards.dtype)
    returns = reward_to_go(episodes.rewards, episodes.dones, gamma)
    n_batches = int(batch_of.max()) + 1
    per_step_batch = batch_of.expand_as(returns)
    sums = torch.zeros(n_batches).index_add_(0, per_step_batch.reshape(-1), (returns * m).reshape(-1))
    counts = torch.zeros(n_batches).index_add_(0, per_step_batch.reshape(-1), m.reshape(-1))
    batch_mean = (sums / counts)[batch_of].expand_as(returns)
    values, next_values = value(episodes.obs), value(episodes.next_obs)
    rewards = episodes.rewards
    q = q_value(episodes.obs, episodes.actions)
    last = torch.zeros_like(rewards[0])
    weights = [
        returns,
        returns - batch_mean,
        returns - values,
        q,
        q - values,
        segment_gae(rewards, values, episodes.dones, next_values, gamma, n_step),
        *(gae(rewards, values, episodes.dones, last, gamma, lam) for lam in lambdas),
    ]
    return torch.stack(weights, -1)


def batch_gradients(
    policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor, scale: float
) -> torch.Tensor:
    """``[E, P]``: ``scale · Σ_i ∇_θ log π_θ(a_i|s_i) Ψ_{i,e}`` for each of ``E`` weight columns ``[B, E]``.

    One forward pass and ``E`` vector-Jacobian products (``torch.func.vjp`` under ``vmap``) over the
    actor's ``P`` parameters, the same ones ``variance.per_sample_policy_gradients`` uses.
    """
    module = _LogProb(policy)
    params = module.actor_parameters()
    buffers = dict(module.named_buffers())
    _, pullback = vjp(
        lambda theta: functional_call(module, (theta, buffers), (obs, actions), strict=False), params
    )
    grads = vmap(pullback)(weights.T.contiguous())[0]
    return scale * torch.cat([g.reshape(weights.shape[1], -1) for g in grads.values()], dim=1)


def reference_gradient(
    policy: ActorCritic, episodes: Episodes, weights: torch.Tensor, mean_length: float, n_chunks: int
) -> tuple[torch.Tensor, float]:
    """``(g_ref, tr Cov[g_ref])``: the per-step gradient with weights ``[T_max, n]`` over all episodes.

    The episodes are split into ``n_chunks`` equal chunks (the remainder is dropped); ``g_ref`` is
    the mean of the chunk gradients ``1/(n_c·L̄) Σ ∇ log π Ψ`` and its variance is that of the
    chunk gradients over ``n_chunks``. Use an unbiased ``Ψ`` with a critic fitted on other data.
    """
    if n_chunks < 2:
        raise ValueError(f"n_chunks={n_chunks}: need at least 2 chunks to estimate the reference's variance")
    per_chunk = episodes.n_episodes // n_chunks
    chunks = []
    for c in range(n_chunks):
        part = episodes.columns(slice(c * per_chunk, (c + 1) * per_chunk))
        w = weights[: part.obs.shape[0], c * per_chunk : (c + 1) * per_chunk]
        m = part.mask
        chunks.append(
            batch_gradients(
                policy, part.obs[m], part.actions[m], w[m][:, None], 1.0 / (per_chunk * mean_length)
            )[0]
        )
    g = torch.stack(chunks).double()
    return g.mean(0), float((g - g.mean(0)).square().sum() / (n_chunks - 1) / n_chunks)


# ---------------------------------------------------------------------------- statistics
def error_statistics(
    estimates: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray,
    reference_var: float = 0.0,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float, float]]:
    """``{name: (estimate, low, high)}`` for bias², variance, MSE and cosine of ``R`` estimates ``[R, P]``.

        variance = 1/(R-1) Σ_r ‖ĝ_r - ḡ‖²                          (E‖ĝ - Eĝ‖²)
        bias²    = ‖ḡ - g_ref‖² - variance/R - reference_var        (‖Eĝ - g‖², noise of ḡ and g_ref removed)
        MSE      = 1/R Σ_r ‖ĝ_r - g_ref‖² - reference_var = bias² + variance   (E‖ĝ - g‖²)
        cosine   = 1/R Σ_r cos(ĝ_r, g_ref)

    The debiased bias² can come out negative when the bias is below the noise. Intervals:
    percentile bootstrap over the ``R`` batches (``n_boot`` resamples, the reference held fixed),
    written as resampling counts so that all four statistics of all resamples are a few matrix
    products on ``[R, P]`` (``scipy.stats.bootstrap`` would copy ``[R, P]`` per resample).
    """
    g = np.asarray(estimates, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    r = g.shape[0]
    if r < 2:
        raise ValueError(f"{r} estimates: need at least 2 batches for a variance")
    sq_norm = (g**2).sum(1)
    sq_err = ((g - ref) ** 2).sum(1)
    cos = g @ ref / np.maximum(np.sqrt(sq_norm * (ref @ ref)), 1e-300)

    def stats(w: np.ndarray) -> dict[str, np.ndarray]:
        """The four statistics under resampling weights ``w`` ``[k, R]`` (counts summing to ``R``)."""
        mean = w @ g / r
        variance = (w @ sq_norm - r * (mean**2).sum(1)) / (r - 1)
        mse = w @ sq_err / r - reference_var
        return {
            "bias2": ((mean - ref) ** 2).sum(1) - variance / r - reference_var,
            "variance": variance,
            "mse": mse,
            "cosine": w @ cos / r,
        }

    point = stats(np.ones((1, r)))
    boot = stats(
        np.random.default_rng(seed).multinomial(r, np.full(r, 1.0 / r), size=n_boot).astype(np.float64)
    )
    tail = 100 * (1 - level) / 2
    return {
        k: (
            float(point[k][0]),
            float(np.percentile(boot[k], tail)),
            float(np.percentile(boot[k], 100 - tail)),
        )
        for k in point
    }


# ---------------------------------------------------------------------------- the exact bandit
def bandit_exact_gradient(logits: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """``∇_z E_{a~softmax(z)}[μ_a] = π ⊙ (μ - π·μ)``: the softmax bandit's exact policy gradient."""
    probs = torch.softmax(logits, 0)
    return probs * (means - probs @ means)


def bandit_gradients(
    logits: torch.Tensor, means: torch.Tensor, baseline: str, n_batches: int, batch: int, seed: int
) -> torch.Tensor:
    """``[n_batches, arms]``: REINFORCE estimates ``-∇ policy_gradient_loss`` on batches of ``batch`` pulls.

    Rewards ``~ N(μ_a, 1)``; ``baseline``: ``none`` (b = 0), ``mean`` (the batch's mean reward, as
    ``algo.baseline=mean``) or ``value`` (the exact ``V = π·μ``, a constant).
    """
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(logits, 0)
    actions = torch.multinomial(probs.expand(n_batches, -1), batch, replacement=True, generator=g)
    rewards = means[actions] + torch.randn(n_batches, batch, generator=g, dtype=means.dtype)
    b = {
        "none": torch.zeros(n_batches, 1, dtype=means.dtype),
        "mean": rewards.mean(1, keepdim=True),
        "value": (probs @ means).expand(n_batches, 1),
    }[baseline]
    z = logits.expand(n_batches, -1).clone().requires_grad_()
    log_probs = torch.log_softmax(z, -1).gather(1, actions)
    (grad,) = torch.autograd.grad(n_batches * policy_gradient_loss(log_probs, rewards - b), z)
    return -grad


# ---------------------------------------------------------------------------- one snapshot's study
@dataclass
class StudySettings:
    """The study's knobs (``variance_study`` in ``conf/experiment/variance_study.yaml``), per snapshot.

    ``batch_env_steps`` sets ``K = round(batch_env_steps / L̄)`` episodes per batch, so every batch
    holds about that many steps whatever the episode length ``L̄``; ``seed`` seeds the samples
    (pilot, fit, reference, batches: ``seed``, ``seed + 10⁴``, ``+ 2·10⁴``, ``+ 3·10⁴``), the critics'
    minibatches and the bootstrap.
    """

    gamma: float = 0.99
    batches: int = 200
    batch_env_steps: int = 2000
    reference_env_steps: int = 1_000_000
    reference_chunks: int = 20
    fit_env_steps: int = 100_000
    critic_steps: int = 2000
    critic_lr: float = 1e-3
    critic_minibatch: int = 512
    lambdas: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 1.0)
    n_step: int = 5
    n_envs: int = 64
    n_boot: int = 2000
    seed: int = 0


def run_study(
    policy: ActorCritic, q_critic: QCritic, env_factory: VecEnvFactory, settings: StudySettings
) -> tuple[dict[str, float], list[dict[str, float | str]]]:
    """Fit ``policy``'s value head and ``q_critic`` on a fit sample, then measure every estimator.

    Returns ``(info, rows)``: ``info`` holds the snapshot's ``L̄``, ``K``, ``‖g_ref‖²``, the
    reference's variance and the critics' explained variance of ``G_t`` on the reference sample;
    ``rows`` one dict per estimator with ``error_statistics``' values (``bias2``, ``bias2_lo``, …).
    The policy's actor is left unchanged; its critic and ``q_critic`` are trained in place.
    """
    s = settings
    generator = torch.Generator().manual_seed(s.seed)
    pilot = sample_episodes(policy, env_factory, s.n_envs, s.seed, s.n_envs)
    pilot_length = float(pilot.lengths.float().mean())
    fit = sample_episodes(
        policy, env_factory, math.ceil(s.fit_env_steps / pilot_length), s.seed + 10_000, s.n_envs
    )
    fit_returns = reward_to_go(fit.rewards, fit.dones, s.gamma)
    critic_params = policy.critic_parameters()
    fit_value(
        policy.value, critic_params, fit.obs[fit.mask], fit_returns[fit.mask],
        s.critic_steps, s.critic_lr, s.critic_minibatch, generator,
    )  # fmt: skip
    fit_q_td(q_critic, policy, fit, s.gamma, s.critic_steps, s.critic_lr, s.critic_minibatch, generator)

    reference = sample_episodes(
        policy, env_factory, math.ceil(s.reference_env_steps / pilot_length), s.seed + 20_000, s.n_envs
    )
    mean_length = float(reference.lengths.float().mean())
    with torch.no_grad():
        ref_returns = reward_to_go(reference.rewards, reference.dones, s.gamma)
        ref_values = policy.value(reference.obs)
        ref_q = q_critic(reference.obs, reference.actions)
    g_ref, ref_var = reference_gradient(
        policy, reference, ref_returns - ref_values, mean_length, s.reference_chunks
    )
    m = reference.mask
    info = {
        "mean_length": mean_length,
        "episodes_per_batch": float(max(1, round(s.batch_env_steps / mean_length))),
        "truncated_fraction": float(reference.truncated.sum() / reference.n_episodes),
        "g_ref_sq": float(g_ref @ g_ref),
        "reference_var": ref_var,
        "value_explained_variance": float(explained_variance(ref_values[m], ref_returns[m])),
        "q_explained_variance": float(explained_variance(ref_q[m], ref_returns[m])),
    }

    k = int(info["episodes_per_batch"])
    batches = sample_episodes(policy, env_factory, s.batches * k, s.seed + 30_000, s.n_envs)
    batch_of = torch.arange(batches.n_episodes) // k
    weights = estimator_weights(batches, batch_of, policy.value, q_critic, s.gamma, s.lambdas, s.n_step)
    estimates = []
    for r in range(s.batches):
        part = batches.columns(slice(r * k, (r + 1) * k))
        w = weights[: part.obs.shape[0], r * k : (r + 1) * k][part.mask]
        estimates.append(
            batch_gradients(policy, part.obs[part.mask], part.actions[part.mask], w, 1 / (k * mean_length))
        )
    estimates = torch.stack(estimates)  # [R, E, P]
    rows = []
    for e, name in enumerate(estimator_names(s.lambdas, s.n_step)):
        stats = error_statistics(estimates[:, e], g_ref, ref_var, s.n_boot, s.seed + e)
        row: dict[str, float | str] = {"estimator": name}
        for key, (value, low, high) in stats.items():
            row.update({key: value, f"{key}_lo": low, f"{key}_hi": high})
        rows.append(row)
    return info, rows
