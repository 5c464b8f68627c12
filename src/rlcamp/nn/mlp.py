"""Multi-layer perceptron bodies with orthogonal initialization."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def orthogonal_init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights with ``gain`` and zero bias (PPO implementation detail #2)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(
    in_features: int, hidden_sizes: Sequence[int], activation: str = "tanh", ortho_init: bool = True
) -> nn.Sequential:
    """``Linear → act`` for each hidden size; hidden layers get gain √2 when ``ortho_init``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"network.activation={activation!r}: choose one of {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for out_features in hidden_sizes:
        linear = nn.Linear(in_features, out_features)
        if ortho_init:
            orthogonal_init(linear, math.sqrt(2))
        layers += [linear, ACTIVATIONS[activation]()]
        in_features = out_features
    return nn.Sequential(*layers)


def mlp_forward(body: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``body(x)`` through the functional ops, skipping ``nn.Module.__call__``.

    Same result as ``body(x)``; a few µs cheaper per layer, which matters when the rollout calls
    the actor once per env step on a batch of a few observations.
    """
    for layer in body:
        x = F.linear(x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else layer.forward(x)
    return x
