"""rlcamp: on-policy policy-gradient RL on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
