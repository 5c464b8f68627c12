"""Curvature-aware optimization: the K-FAC natural-gradient preconditioner of ACKTR."""

from rlcamp.optim.kfac import (
    GAUSSIAN_LOG_STD_FISHER,
    KFAC,
    EigenBasis,
    FisherCapture,
    KFACStepStats,
    activation_factor,
    gradient_factor,
    kl_step_scale,
    kronecker_precondition,
    policy_fisher_loss,
    symmetric_eigen,
    value_fisher_loss,
)

__all__ = [
    "GAUSSIAN_LOG_STD_FISHER",
    "KFAC",
    "EigenBasis",
    "FisherCapture",
    "KFACStepStats",
    "activation_factor",
    "gradient_factor",
    "kl_step_scale",
    "kronecker_precondition",
    "policy_fisher_loss",
    "symmetric_eigen",
    "value_fisher_loss",
]
