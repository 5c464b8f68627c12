"""Vector environments: the factory and its space checks. Observation/reward normalization, which
needs torch, lives in :mod:`rlcamp.envs.normalize` and is imported from there, so the env checks
that ``rlcamp-train`` runs before importing torch can import this package."""

from rlcamp.envs.factory import EnvError, VecEnvFactory, make_single_env

__all__ = ["EnvError", "VecEnvFactory", "make_single_env"]
