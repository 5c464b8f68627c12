"""How noisy is the policy-gradient estimate? Per-sample gradients, their variance and SNR.

The estimator every algorithm of the family follows on a rollout of ``B`` transitions is

    ĝ = (1/B) Σ_i g_i,    g_i = ∇_θ log π_θ(a_i|s_i) · Ψ_i

with ``Ψ_i`` the algorithm's weight: the return ``G_t`` (REINFORCE), ``G_t - b(s_t)`` (with a
baseline), ``Q_φ(s_t, a_t)`` (actor-critic) or the advantage ``Â_t`` (A2C, GAE(λ)). Opt in with
``algo.grad_diagnostics=true``; ``OnPolicyAlgorithm.collect_rollout`` then computes, once per
rollout and before the update, every ``g_i`` over the actor's parameters (``torch.func``: ``vmap``
of ``grad``), and logs

    train/grad_var = tr Cov[g_i] ≈ 1/(B-1) Σ_i ‖g_i - ĝ‖²        (variance of one sample)
    train/grad_snr = (‖ĝ‖² - grad_var / B) / grad_var             (‖E g‖² / tr Cov[g], per sample)

In one line each: ``grad_var`` is how far one transition's term ``g_i`` scatters around this
rollout's mean, at the current policy; ``grad_snr`` is this rollout's ``‖E g‖² / tr Cov[g_i]`` with
``E g`` the estimator's own mean (bias-corrected for ``‖ĝ‖²``'s ``tr Cov / B``), so it can come out
negative. Neither measures bias, and both move with the policy (``∇ log π → 0`` as it turns
deterministic), so along a training run they track the policy as much as the estimator: compare
estimators at a fixed policy with ``rlcamp.algos.bias_variance`` (the variance study). The
weights are the rollout's, before any per-minibatch normalization.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from rlcamp.nn.actor_critic import ActorCritic


class _LogProb(nn.Module):
    """``log π_θ(a|s)`` as a module call, so ``functional_call`` can swap in ``θ``."""

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.policy.log_prob_entropy(obs, actions)[0]

    def actor_parameters(self) -> dict[str, torch.Tensor]:
        """The actor's parameters (body and head, not the critic), detached, named for ``functional_call``."""
        actor = {id(p) for p in self.policy.actor_parameters()}
        return {name: p.detach() for name, p in self.named_parameters() if id(p) in actor}


def per_sample_policy_gradients(
    policy: ActorCritic,
    obs: torch.Tensor,
    actions: torch.Tensor,
    weights: torch.Tensor,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``[B, P]``: row ``i`` is ``g_i = ∇_θ log π_θ(a_i|s_i) · Ψ_i`` over the actor's ``P`` parameters."""
    module = _LogProb(policy)
    params = module.actor_parameters()
    buffers = dict(module.named_buffers())

    def weighted_log_prob(
        theta: dict[str, torch.Tensor], s: torch.Tensor, a: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        return (
            functional_call(module, (theta, buffers), (s.unsqueeze(0), a.unsqueeze(0)), strict=False).squeeze(
                0
            )
            * w
        )

    grads = vmap(grad(weighted_log_prob), in_dims=(None, 0, 0, 0), chunk_size=chunk_size)(
        params, obs, actions, weights
    )
    return torch.cat([g.reshape(len(obs), -1) for g in grads.values()], dim=1)


def gradient_statistics(per_sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tr Cov[g_i], (‖ḡ‖² - tr Cov/B) / tr Cov)`` of the rows ``g_i`` of ``per_sample`` ``[B, P]``."""
    n = per_sample.shape[0]
    mean = per_sample.mean(0)
    variance = (per_sample - mean).square().sum() / (n - 1)
    snr = (mean.square().sum() - variance / n) / variance
    return variance, snr


def policy_gradient_metrics(
    policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``train/grad_var`` and ``train/grad_snr`` of the estimator ``ĝ`` on one rollout."""
    if len(obs) < 2:
        return {}
    variance, snr = gradient_statistics(per_sample_policy_gradients(policy, obs, actions, weights))
    return {"train/grad_var": variance, "train/grad_snr": snr}
