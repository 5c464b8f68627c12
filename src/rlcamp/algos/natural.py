"""The natural-gradient toolbox of NPG and TRPO, as pure tensor functions.

The KL-constrained policy update (Kakade 2001; Schulman et al. 2015, TRPO eqs. 12-14)

    maximize_Δ  gᵀΔ    subject to  ½ ΔᵀFΔ ≤ δ,

with ``g = ∇_θ L(θ_old)`` the surrogate's gradient and ``F`` the Fisher information matrix of the
policy (the Hessian of the mean KL at ``θ_old``), has the solution

    Δ = sqrt(2δ / xᵀFx) · x,   x = F⁻¹g,

found without forming ``F``: conjugate gradient (``conjugate_gradient``) solves ``Fx = g`` from
Fisher-vector products (``fisher_vector_product``, double backprop through the mean KL).
TRPO then backtracks along ``Δ`` (``backtracking_line_search``) until the measured KL is within
δ and the surrogate improves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rlcamp.nn.actor_critic import ActorCritic


# ----------------------------------------------------------------------------- flat parameters
def flat_params(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate ``params`` into one detached vector ``θ``."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Write the vector ``flat`` back into ``params`` in place (inverse of ``flat_params``)."""
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def flat_grad(
    output: torch.Tensor,
    params: Sequence[torch.Tensor],
    create_graph: bool = False,
    retain_graph: bool = False,
) -> torch.Tensor:
    """``∇_θ output`` as one vector (zeros for parameters ``output`` does not depend on)."""
    grads = torch.autograd.grad(
        output,
        params,
        retain_graph=retain_graph or create_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads, strict=True)]
    )


# ----------------------------------------------------------------------------- KL and Fisher
PolicySnapshot = tuple[torch.Tensor, ...]
"""The old policy's distribution parameters on a batch of states, detached copies (the head's
``distribution_params``: logits, or the Gaussian mean and ``log σ``)."""


def snapshot(policy: ActorCritic, obs: torch.Tensor) -> PolicySnapshot:
    """``π_old(·|s)`` for every state of ``obs``, frozen for the KL of the update."""
    with torch.no_grad():
        return tuple(t.detach().clone() for t in policy.distribution_params(obs))


def mean_kl(policy: ActorCritic, obs: torch.Tensor, old: PolicySnapshot) -> torch.Tensor:
    """``D̄_KL(θ_old, θ) = E_s[KL(π_old(·|s) ‖ π_θ(·|s))]``, differentiable in the policy's θ
    (the head's ``kl``: ``categorical_kl`` or ``gaussian_kl``)."""
    return policy.kl(old, obs).mean()


def fisher_vector_product(
    kl: torch.Tensor, params: Sequence[torch.Tensor], damping: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v ↦ (F + λI)v`` by double backprop: ``F v = ∇_θ((∇_θ D̄_KL)ᵀ v)`` at ``θ = θ_old``.

    ``kl`` is the mean KL from the frozen old policy to the current one, built with a graph; at
    ``θ = θ_old`` its Hessian is the Fisher matrix ``F = E_s E_{a~π}[∇log π ∇log πᵀ]``, so each
    product costs one backward pass through ``∇D̄_KL`` (computed once here, with its graph) and
    never forms ``F``. ``λ`` (damping) keeps CG stable where ``F`` is near-singular.
    """
    grad_kl = flat_grad(kl, params, create_graph=True)

    def product(vector: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl @ vector, params, retain_graph=True) + damping * vector

    return product


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iters: int = 10,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Solve ``Ax = b`` for symmetric positive-definite ``A`` given only ``v ↦ Av``.

    Hestenes-Stiefel CG from ``x₀ = 0``: ``α = rᵀr / pᵀAp``, ``x ← x + αp``, ``r ← r - αAp``,
    ``p ← r + (r'ᵀr' / rᵀr) p``; exact after ``n`` steps in exact arithmetic, and a good
    approximation after ``iters ≪ n`` when ``A``'s spectrum is clustered.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr <= residual_tol:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def natural_step(
    grad: torch.Tensor, fvp: Callable[[torch.Tensor], torch.Tensor], max_kl: float, cg_iters: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """The step ``Δ = sqrt(2δ / xᵀFx) · x`` with ``x ≈ F⁻¹g`` by CG, and its predicted gain ``gᵀΔ``.

    The scale makes the quadratic KL model ``½ΔᵀFΔ`` equal ``δ = max_kl``. A zero gradient (or a
    non-positive curvature from too few CG steps) gives the zero step.
    """
    x = conjugate_gradient(fvp, grad, cg_iters)
    shs = x @ fvp(x)
    if not torch.isfinite(shs) or shs <= 0:
        return torch.zeros_like(grad), torch.zeros((), dtype=grad.dtype)
    step = torch.sqrt(2.0 * max_kl / shs) * x
    return step, grad @ step


@dataclass
class LineSearchResult:
    """What the backtracking line search did: ``fraction`` of the full step taken (0: rejected),
    the surrogate gain and the mean KL measured at the accepted point, backtracks tried."""

    accepted: bool
    fraction: float
    surrogate_gain: float
    kl: float
    backtracks: int


def backtracking_line_search(
    params: Sequence[nn.Parameter],
    full_step: torch.Tensor,
    evaluate: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    max_kl: float,
    shrink: float = 0.8,
    max_backtracks: int = 10,
) -> LineSearchResult:
    """TRPO's line search (Schulman et al. 2015, appendix C): try ``θ_old + βᵏΔ`` for
    ``k = 0, 1, …`` and accept the first point with ``D̄_KL ≤ δ`` and ``L(θ) > L(θ_old)``.

    ``evaluate()`` returns ``(L(θ), D̄_KL(θ_old, θ))`` at the parameters' current values. The
    parameters are left at the accepted point, or restored to ``θ_old`` when every trial fails.
    """
    theta_old = flat_params(params)
    with torch.no_grad():
        surrogate_old, _ = evaluate()
        for k in range(max_backtracks):
            fraction = shrink**k
            set_flat_params(params, theta_old + fraction * full_step)
            surrogate, kl = evaluate()
            gain = surrogate - surrogate_old
            if torch.isfinite(kl) and kl <= max_kl and gain > 0:
                return LineSearchResult(True, fraction, float(gain), float(kl), k + 1)
        set_flat_params(params, theta_old)
    return LineSearchResult(False, 0.0, 0.0, 0.0, max_backtracks)
