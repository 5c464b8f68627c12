"""Loss terms shared by the algorithms, as pure tensor functions."""

from __future__ import annotations

import torch


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float | None = None
) -> torch.Tensor:
    """``½ E[(V(s) - R)²]``; with ``clip``, PPO's pessimistic clipped form (PPO detail #9)

    ``½ E[max((V - R)², (V_old + clip(V - V_old, ±ε_v) - R)²)]``.
    """
    unclipped = (values - returns).square()
    if clip is None:
        return 0.5 * unclipped.mean()
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.maximum(unclipped, (clipped_values - returns).square()).mean()


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """``1 - Var[R - V] / Var[R]``: 1 is a perfect critic, 0 no better than a constant.

    NaN when ``Var[R]`` is zero or undefined (fewer than two returns).
    """
    if returns.numel() < 2:
        return torch.full((), float("nan"), device=returns.device)
    var_returns = returns.var()
    return (
        1.0 - (returns - values).var() / var_returns
        if var_returns > 0
        else torch.full_like(var_returns, float("nan"))
    )
