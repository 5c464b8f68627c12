"""Vector environments: the factory, observation/reward normalization and space checks."""

from rlcamp.envs.factory import EnvError, VecEnvFactory, make_single_env
from rlcamp.envs.normalize import RewardScaler, RunningMeanStd, RunningNormalizer

__all__ = [
    "EnvError",
    "RewardScaler",
    "RunningMeanStd",
    "RunningNormalizer",
    "VecEnvFactory",
    "make_single_env",
]
