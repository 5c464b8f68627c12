"""A2C: synchronous advantage actor-critic (Mnih et al. 2016) with GAE(λ) (Schulman et al. 2016)."""

from __future__ import annotations

from rlcamp.algos.reinforce import PolicyGradient


class A2C(PolicyGradient):
    """``ĝ = (1/B) Σ_t ∇_θ log π_θ(a_t|s_t) Â_t`` over ``N`` envs × ``n_steps``, one step per rollout.

    ``Â_t`` is ``OnPolicyAlgorithm.process_rollout``'s GAE(λ) (``rlcamp.rollout.advantages.gae``):
    ``λ = 1`` is the A2C paper's n-step return ``Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n}) - V(s_t)``
    bootstrapped at the rollout's end (``n = n_steps - t``), ``λ = 0`` the one-step TD error
    ``δ_t = r_t + γV(s_{t+1}) - V(s_t)``. The critic regresses ``V_φ(s_t)`` on the λ-return
    ``Â_t + V(s_t)``; the loss is ``-log π·Â + c_v·½(V - R)² - c_e·H``, and the gradient is clipped
    to ``max_grad_norm``. Time-limit truncations bootstrap ``γV(s_final)``.
    """
