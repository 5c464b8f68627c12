"""K-FAC: the Kronecker-factored natural gradient of ACKTR (Martens & Grosse 2015; Wu et al. 2017).

For a Linear layer ``s = W a + b`` write ``Ŵ = [W | b]`` (shape ``[out, in+1]``) and ``ā = [a; 1]``.
A per-sample loss ``ℓ_n`` has ``∇_Ŵ ℓ_n = g_n ā_nᵀ`` with ``g_n = ∂ℓ_n/∂s_n``, so with column-stacking
``vec`` the layer's Fisher block is

    F = E[vec(g āᵀ) vec(g āᵀ)ᵀ] = E[(ā āᵀ) ⊗ (g gᵀ)] ≈ E[ā āᵀ] ⊗ E[g gᵀ] = A ⊗ G,

and ``(A ⊗ G)⁻¹ vec(∇Ŵ) = vec(G⁻¹ ∇Ŵ A⁻¹)``: two small inverses per layer instead of one of size
``(out·(in+1))²``. Blocks of different layers are treated as independent (block-diagonal ``F``).

A Conv2d layer (KFC, Grosse & Martens 2016) is the same with ``ā_{n,t}`` the input patch at output
position ``t`` (``F.unfold``, the weight flattened to ``[out, in·kh·kw]``) and ``g_{n,t}`` the
pre-activation gradient there: ``∇Ŵ ℓ_n = Σ_t g_{n,t} ā_{n,t}ᵀ``, and with spatially uncorrelated,
homogeneous derivatives the block is ``Ω ⊗ Γ`` with ``Ω = E_n[Σ_t ā ā ᵀ]`` (summed over the ``T``
positions) and ``Γ = E_n[(1/T) Σ_t g gᵀ]`` (averaged over them).

Conventions of this module:

- The expectation is taken over the sampled Fisher: ``g`` is the gradient of ``-log π(ã|s)`` with
  ``ã ~ π(·|s)`` (``policy_fisher_loss``) or of the critic's Gaussian output (``value_fisher_loss``),
  not of the training loss.
- ``G`` scaling: the Fisher loss is a *mean* ``L = (1/N) Σ_n ℓ_n`` over the ``N`` rows the layer saw,
  so autograd returns ``∂L/∂s_n = g_n / N``; ``gradient_factor`` multiplies back by ``N``:
  ``G = (1/N) Σ_n g_n g_nᵀ = N · Σ_n (∂L/∂s_n)(∂L/∂s_n)ᵀ`` (the same as ikostrikov's and Baselines').
- Damping is Tikhonov damping of the Kronecker product itself, ``(A ⊗ G + λI)⁻¹ vec(∇Ŵ)``, applied
  exactly through the eigenbases ``A = Q_A Λ_A Q_Aᵀ``, ``G = Q_G Λ_G Q_Gᵀ`` (ikostrikov's form):

      η = Q_G [(Q_Gᵀ ∇Ŵ Q_A) ⊘ (λ_G λ_Aᵀ + λ)] Q_Aᵀ,

  with eigenvalues clamped at 0, so every denominator is ``≥ λ > 0`` however rank-deficient ``A`` or
  ``G`` is; no π-damping, no per-factor split. ``λ`` can change between calls without recomputing
  the eigenbases.
- Minimization: ``η`` preconditions the gradient of a loss; the optimizer steps ``θ ← θ - lr·s·η``.

One ACKTR update (a single forward serves the Fisher pass and the training loss)::

    with kfac.capture() as capture:                      # records every tracked F.linear call
        dist, values = policy(obs), critic(obs)          # a shared body must run once
    kfac.update_factors(capture, policy_fisher_loss(dist) + value_fisher_loss(values))
    optimizer.zero_grad(); a2c_loss(dist, values).backward()
    stats = kfac.natural_gradient_(lr, kl_clip)          # .grad ← s·η
    optimizer.step()                                     # SGD with lr: θ ← θ - lr·s·η
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.distributions import Distribution
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

KFAC_LAYERS = (nn.Linear, nn.Conv2d)


# ----------------------------------------------------------------------------- Fisher losses
def policy_fisher_loss(dist: Distribution) -> torch.Tensor:
    """``-(1/N) Σ_n log π(ã_n|s_n)`` with ``ã_n ~ π(·|s_n)``: its per-sample gradients have the
    policy's Fisher ``E_{ã~π}[∇log π ∇log πᵀ]`` as covariance (the sampled, "true" Fisher; the taken
    actions would give the empirical Fisher instead)."""
    with torch.no_grad():
        actions = dist.sample()
    return -dist.log_prob(actions).mean()


def value_fisher_loss(values: torch.Tensor) -> torch.Tensor:
    """``-(1/N) Σ_n (v_n - (v_n + ε_n).detach())²`` with ``ε ~ N(0, 1)``: the critic as a Gaussian output.

    Its gradient in ``v_n`` is ``2ε_n``, so the output's Fisher is ``E[(2ε)²] = 4`` (a Gaussian of
    variance ½) — the form of ikostrikov and Baselines, kept for comparability.
    """
    target = (values + torch.randn_like(values)).detach()
    return -(values - target).square().mean()


GAUSSIAN_LOG_STD_FISHER = 2.0
"""Fisher of a state-independent ``log σ_j`` of ``N(μ, σ²)``: with ``z = (a - μ)/σ``,
``∂ log π/∂ log σ_j = z_j² - 1`` and ``E[(z² - 1)²] = 3 - 2 + 1 = 2``; its cross terms with the mean's
parameters vanish (``E[(z² - 1) z] = 0``), so it is an exact diagonal block of the Fisher."""


# ----------------------------------------------------------------------------- factors
def activation_factor(inputs: torch.Tensor, bias: bool = True, positions: int = 1) -> torch.Tensor:
    """``A = (1/N) Σ_n Σ_t ā_{n,t} ā_{n,t}ᵀ`` in float64, ``ā = [a; 1]`` when the layer has a bias.

    ``inputs``: ``[..., in]`` rows, ``positions`` consecutive rows per sample (a conv layer's
    ``T`` patches; 1 for a Linear layer, where every leading index is one of the ``N`` samples).
    """
    a = inputs.detach().reshape(-1, inputs.shape[-1]).double()
    if bias:
        a = torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1)
    return a.T @ a / (a.shape[0] // positions)


def gradient_factor(output_grads: torch.Tensor, positions: int = 1) -> torch.Tensor:
    """``G = (1/(N·T)) Σ_n Σ_t g_{n,t} g_{n,t}ᵀ`` in float64 from ``∂L/∂s`` of a *mean* loss over the
    ``N`` samples, ``g_{n,t} = N ∂L/∂s_{n,t}``.

    ``output_grads``: ``∂L/∂s`` as ``[..., out]`` rows, ``positions`` (``T``) rows per sample.
    """
    grads = output_grads.detach().reshape(-1, output_grads.shape[-1]).double()
    rows = grads.shape[0]
    per_sample = grads * (rows // positions)
    return per_sample.T @ per_sample / rows


def conv_patches(inputs: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    """``[N·T, in·kh·kw]``: each output position's input patch (``F.unfold``, the weight's order)."""
    patches = F.unfold(inputs, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


def conv_rows(output_grads: torch.Tensor) -> torch.Tensor:
    """``[N, out, oh, ow]`` → ``[N·T, out]``, sample-major like ``conv_patches``."""
    return output_grads.flatten(2).transpose(1, 2).reshape(-1, output_grads.shape[1])


# ----------------------------------------------------------------------------- inverses
@dataclass
class EigenBasis:
    """``M = Q diag(λ) Qᵀ`` of a symmetric PSD factor, float64, eigenvalues clamped at 0."""

    values: torch.Tensor
    vectors: torch.Tensor


def symmetric_eigen(matrix: torch.Tensor) -> EigenBasis:
    """Eigenbasis of the symmetric PSD ``matrix`` in float64, robust to rank deficiency.

    ``linalg.eigh`` of the symmetrized ``½(M + Mᵀ)``; if it raises or returns non-finite values (the
    failure ikostrikov's issue #302 reports) the SVD ``M = U S Vᵀ`` is used instead, which for a
    symmetric PSD ``M`` is its eigendecomposition ``Q = U``, ``λ = S``. Eigenvalues are clamped at 0
    (rounding can make a zero one slightly negative).
    """
    m = matrix.double()
    if not torch.isfinite(m).all():
        raise ValueError(
            "K-FAC factor has NaN/inf entries: the Fisher pass produced non-finite gradients; "
            "check the loss and lower the learning rate"
        )
    m = 0.5 * (m + m.T)
    try:
        values, vectors = torch.linalg.eigh(m)
        ok = bool(torch.isfinite(values).all() and torch.isfinite(vectors).all())
    except torch.linalg.LinAlgError:
        ok = False
    if not ok:
        vectors, values, _ = torch.linalg.svd(m)
    return EigenBasis(values.clamp_min(0.0), vectors)


def kronecker_precondition(
    grad_matrix: torch.Tensor, eigen_a: EigenBasis, eigen_g: EigenBasis, damping: float
) -> torch.Tensor:
    """``η = mat((A ⊗ G + λI)⁻¹ vec(∇Ŵ)) = Q_G [(Q_Gᵀ ∇Ŵ Q_A) ⊘ (λ_G λ_Aᵀ + λ)] Q_Aᵀ`` in float64.

    From ``A ⊗ G = (Q_A ⊗ Q_G)(Λ_A ⊗ Λ_G)(Q_A ⊗ Q_G)ᵀ`` and ``(X ⊗ Y) vec(V) = vec(Y V Xᵀ)``.
    ``grad_matrix``: ``∇Ŵ``, shape ``[out, in(+1)]``.
    """
    q_a, q_g = eigen_a.vectors, eigen_g.vectors
    rotated = q_g.T @ grad_matrix.double() @ q_a
    rotated = rotated / (eigen_g.values[:, None] * eigen_a.values[None, :] + damping)
    return q_g @ rotated @ q_a.T


# ----------------------------------------------------------------------------- step size
def kl_step_scale(eta_dot_grad: float, lr: float, kl_clip: float) -> float:
    """``s = min(1, sqrt(2 δ / (lr² ηᵀg)))`` so the step ``Δ = lr·s·η`` has ``½ ΔᵀF̂Δ ≤ δ = kl_clip``.

    With ``η = F̂⁻¹g`` (``F̂`` the damped K-FAC Fisher) ``ηᵀF̂η = ηᵀg``, so the quadratic KL model of
    the step is ``½ lr² s² ηᵀg`` — equal to ``δ`` when the clip binds. ikostrikov's
    ``a2c_ppo_acktr/algo/kfac.py`` and Baselines' ``acktr/kfac.py`` compute
    ``min(1, sqrt(δ / (lr² ηᵀg)))`` (no ½, i.e. they bound ``ΔᵀF̂Δ ≤ δ``): their ``kl_clip`` equals
    ``2·kl_clip`` here (their Atari 0.001 is 0.0005 here). A zero ``ηᵀg`` (zero gradient) gives 1.
    """
    if lr <= 0 or kl_clip <= 0:
        raise ValueError(f"kl_step_scale needs lr > 0 and kl_clip > 0, got lr={lr}, kl_clip={kl_clip}")
    if eta_dot_grad <= 0:
        return 1.0
    return min(1.0, math.sqrt(2.0 * kl_clip / (lr * lr * eta_dot_grad)))


# ----------------------------------------------------------------------------- capture
@dataclass
class FisherCapture:
    """Inputs (detached) and pre-activations (with their graph) of each tracked layer in one forward."""

    inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)


class _LinearRecorder(TorchFunctionMode):
    """Records every ``F.linear`` and ``F.conv2d`` call whose weight is a tracked layer's.

    A torch-function mode, not module hooks: rlcamp's bodies run through ``mlp_forward`` and the
    heads call ``F.linear`` on their layers' parameters directly, bypassing ``nn.Module.__call__``,
    so forward and backward module hooks would never fire. Intercepting ``F.linear`` sees the layer
    however it is called, and the pre-activation gradients then come from ``torch.autograd.grad``
    on the recorded outputs, which leaves ``.grad`` and the training graph untouched.
    """

    def __init__(self, weights: dict[int, int], capture: FisherCapture) -> None:
        super().__init__()
        self.weights = weights
        self.capture = capture

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if func is F.linear or func is F.conv2d:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            index = self.weights.get(id(weight))
            if index is not None:
                if index in self.capture.outputs:
                    raise RuntimeError(
                        f"K-FAC layer {index} ran twice inside capture(): compute shared features once "
                        "and feed them to both heads"
                    )
                inputs = args[0] if args else kwargs["input"]
                self.capture.inputs[index] = inputs.detach()
                self.capture.outputs[index] = output
        return output


# ----------------------------------------------------------------------------- the preconditioner
def _grad_or_zeros(param: nn.Parameter) -> torch.Tensor:
    """``param.grad``, or zeros when the training loss did not reach ``param``."""
    return param.grad if param.grad is not None else torch.zeros_like(param)


@dataclass
class _LayerState:
    """Running factors of one layer and the eigenbases last computed from them."""

    a: torch.Tensor | None = None
    g: torch.Tensor | None = None
    eigen_a: EigenBasis | None = None
    eigen_g: EigenBasis | None = None


@dataclass
class KFACStepStats:
    """One natural-gradient step: ``ηᵀg``, the scale ``s``, the quadratic KL ``½ lr² s² ηᵀg``, ``λ``."""

    eta_dot_grad: float
    scale: float
    quadratic_kl: float
    damping: float


class KFAC:
    """K-FAC preconditioner for a set of ``nn.Linear`` and ``nn.Conv2d`` layers (one block each).

    ``decay``: running-average weight ``ρ`` of the factors, ``A ← ρA + (1-ρ)A_batch`` (the first
    update sets ``A = A_batch``; same for ``G``). ``damping``: ``λ`` of ``(A ⊗ G + λI)⁻¹``.
    ``inverse_every``: eigenbases are recomputed on factor updates 1, 1+k, 1+2k, … and reused between.
    ``diagonal``: ``(parameter, f)`` pairs outside the Linear layers whose Fisher is the known constant
    ``f·I`` (``GAUSSIAN_LOG_STD_FISHER`` for ``GaussianHead.log_std``); ``natural_gradient_`` gives them
    ``η = ∇/(f + λ)``, the same Tikhonov damping, and counts them in ``ηᵀg``.
    """

    def __init__(
        self,
        layers: Sequence[nn.Linear | nn.Conv2d],
        decay: float = 0.99,
        damping: float = 1e-2,
        inverse_every: int = 10,
        diagonal: Sequence[tuple[nn.Parameter, float]] = (),
    ) -> None:
        layers = tuple(layers)
        if not layers or not all(isinstance(layer, KFAC_LAYERS) for layer in layers):
            raise ValueError("KFAC needs a non-empty sequence of nn.Linear or nn.Conv2d layers")
        if any(isinstance(layer, nn.Conv2d) and layer.groups != 1 for layer in layers):
            raise ValueError("KFAC's Conv2d blocks need groups=1 convolutions")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("KFAC got the same layer twice: pass each layer once")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"kfac decay={decay}: choose 0 <= decay < 1 (0.99 is the usual value)")
        if damping <= 0:
            raise ValueError(f"kfac damping={damping}: choose damping > 0 (1e-2 is the usual value)")
        if inverse_every < 1:
            raise ValueError(f"kfac inverse_every={inverse_every}: choose an integer >= 1")
        layer_params = {id(p) for layer in layers for p in layer.parameters()}
        for param, fisher in diagonal:
            if id(param) in layer_params:
                raise ValueError("a KFAC diagonal parameter belongs to a tracked layer: pass it in one place")
            if fisher <= 0:
                raise ValueError(f"KFAC diagonal Fisher {fisher}: choose a positive value")
        self.layers = layers
        self.decay = decay
        self.damping = damping
        self.inverse_every = inverse_every
        self.diagonal = tuple(diagonal)
        self.num_updates = 0
        self.states = [_LayerState() for _ in layers]
        self._weights = {id(layer.weight): i for i, layer in enumerate(layers)}

    @contextmanager
    def capture(self) -> Iterator[FisherCapture]:
        """Record each tracked layer's inputs and pre-activations during the forward in the block."""
        capture = FisherCapture()
        with _LinearRecorder(self._weights, capture):
            yield capture

    def update_factors(
        self,
        capture: FisherCapture,
        fisher_loss: torch.Tensor,
        retain_graph: bool = True,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """Fold one batch into the running ``A`` and ``G`` (``fisher_loss`` a mean over the batch).

        ``reduce`` (e.g. the mean over DDP ranks) is applied to each batch factor first, so every
        rank holds the same factors and preconditions its all-reduced gradient alike.

        ``G`` comes from ``∂ fisher_loss / ∂s`` by ``torch.autograd.grad`` on the captured
        pre-activations (``retain_graph`` keeps the forward for the training loss's backward).
        Recomputes the eigenbases on updates 1, 1+k, 1+2k, … (``k = inverse_every``).
        """
        missing = [i for i in range(len(self.layers)) if i not in capture.outputs]
        if missing:
            raise RuntimeError(
                f"K-FAC layers {missing} did not run inside capture(): run the forward of every "
                "tracked layer inside `with kfac.capture()`"
            )
        outputs = [capture.outputs[i] for i in range(len(self.layers))]
        if not all(out.requires_grad for out in outputs):
            raise RuntimeError("K-FAC capture has no graph: run the forward with gradients enabled")
        grads = torch.autograd.grad(fisher_loss, outputs, retain_graph=retain_graph, allow_unused=True)
        unused = [i for i, g in enumerate(grads) if g is None]
        if unused:
            raise RuntimeError(
                f"fisher_loss does not depend on K-FAC layers {unused}: add their head's Fisher term "
                "(policy_fisher_loss / value_fisher_loss)"
            )
        for i, (layer, state) in enumerate(zip(self.layers, self.states, strict=True)):
            inputs, output_grads, positions = capture.inputs[i], grads[i], 1
            if isinstance(layer, nn.Conv2d):
                positions = output_grads.shape[2] * output_grads.shape[3]
                inputs, output_grads = conv_patches(inputs, layer), conv_rows(output_grads)
            a_batch = activation_factor(inputs, bias=layer.bias is not None, positions=positions)
            g_batch = gradient_factor(output_grads, positions=positions)
            if reduce is not None:
                a_batch, g_batch = reduce(a_batch), reduce(g_batch)
            if state.a is None or state.g is None:
                state.a, state.g = a_batch, g_batch
            else:
                state.a = self.decay * state.a + (1.0 - self.decay) * a_batch
                state.g = self.decay * state.g + (1.0 - self.decay) * g_batch
        self.num_updates += 1
        if (self.num_updates - 1) % self.inverse_every == 0:
            self.refresh_inverses()

    def refresh_inverses(self) -> None:
        """Recompute every layer's eigenbases ``Q_A, Λ_A, Q_G, Λ_G`` from the current factors."""
        for state in self.states:
            if state.a is None or state.g is None:
                raise RuntimeError("K-FAC has no factors yet: call update_factors before preconditioning")
            state.eigen_a = symmetric_eigen(state.a)
            state.eigen_g = symmetric_eigen(state.g)

    def state_dict(self) -> dict[str, object]:
        """The running factors, the eigenbases in use and the update count, for a checkpoint.

        The eigenbases are saved rather than recomputed on load: between refreshes they come from
        older factors, and a resumed run must precondition with exactly the same ones.
        """

        def basis(eigen: EigenBasis | None) -> dict[str, torch.Tensor] | None:
            return None if eigen is None else {"values": eigen.values, "vectors": eigen.vectors}

        layers = [
            {"a": s.a, "g": s.g, "eigen_a": basis(s.eigen_a), "eigen_g": basis(s.eigen_g)}
            for s in self.states
        ]
        return {"num_updates": self.num_updates, "layers": layers}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore ``state_dict()``'s factors, eigenbases and update count (same layers, same order)."""
        layers = state["layers"]
        if len(layers) != len(self.layers):
            raise ValueError(
                f"K-FAC state has {len(layers)} layers, this network {len(self.layers)}: "
                "resume with the network the checkpoint was trained with"
            )

        def basis(saved: dict[str, torch.Tensor] | None) -> EigenBasis | None:
            return None if saved is None else EigenBasis(saved["values"], saved["vectors"])

        self.num_updates = int(state["num_updates"])
        self.states = [
            _LayerState(saved["a"], saved["g"], basis(saved["eigen_a"]), basis(saved["eigen_g"]))
            for saved in layers
        ]

    def grad_matrices(self) -> list[torch.Tensor]:
        """``∇Ŵ = [∇W | ∇b]`` of each layer from its ``.grad`` (zeros where there is none)."""
        matrices = []
        for layer in self.layers:
            grad = _grad_or_zeros(layer.weight).reshape(layer.weight.shape[0], -1)
            if layer.bias is not None:
                grad = torch.cat([grad, _grad_or_zeros(layer.bias)[:, None]], dim=1)
            matrices.append(grad)
        return matrices

    def precondition(self, grad_matrices: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``η_l = mat((A_l ⊗ G_l + λI)⁻¹ vec(∇Ŵ_l))`` per layer (float64, shape of ``∇Ŵ_l``).

        ``grad_matrices`` defaults to the layers' current ``.grad`` (``grad_matrices()``).
        """
        if any(state.eigen_a is None or state.eigen_g is None for state in self.states):
            raise RuntimeError("K-FAC has no factors yet: call update_factors before preconditioning")
        grads = self.grad_matrices() if grad_matrices is None else list(grad_matrices)
        return [
            kronecker_precondition(grad, state.eigen_a, state.eigen_g, self.damping)
            for grad, state in zip(grads, self.states, strict=True)
        ]

    def natural_gradient_(self, lr: float, kl_clip: float) -> KFACStepStats:
        """Replace each tracked ``.grad`` by ``s·η`` with ``s = kl_step_scale(ηᵀg, lr, kl_clip)``.

        A following plain SGD step ``θ ← θ - lr·grad`` is then the KL-bounded natural step
        ``Δ = -lr·s·η`` with ``½ ΔᵀF̂Δ ≤ kl_clip``. Returns the numbers worth logging.
        """
        grads = self.grad_matrices()
        etas = self.precondition(grads)
        diagonal_grads = [_grad_or_zeros(param).double() for param, _ in self.diagonal]
        diagonal_etas = [
            grad / (fisher + self.damping)
            for grad, (_, fisher) in zip(diagonal_grads, self.diagonal, strict=True)
        ]
        eta_dot_grad = float(
            sum(
                (eta * grad.double()).sum()
                for eta, grad in zip(etas + diagonal_etas, grads + diagonal_grads, strict=True)
            )
        )
        scale = kl_step_scale(eta_dot_grad, lr, kl_clip)
        for layer, eta in zip(self.layers, etas, strict=True):
            step = (scale * eta).to(layer.weight.dtype)
            fan_in = layer.weight[0].numel()
            layer.weight.grad = step[:, :fan_in].reshape(layer.weight.shape).contiguous()
            if layer.bias is not None:
                layer.bias.grad = step[:, fan_in].contiguous()
        for (param, _), eta in zip(self.diagonal, diagonal_etas, strict=True):
            param.grad = (scale * eta).to(param.dtype)
        quadratic_kl = 0.5 * (lr * scale) ** 2 * max(eta_dot_grad, 0.0)
        return KFACStepStats(eta_dot_grad, scale, quadratic_kl, self.damping)
