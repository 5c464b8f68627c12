"""On-policy algorithms, each a LightningModule on ``OnPolicyAlgorithm``."""

from rlcamp.algos.base import ConfigError, OnPolicyAlgorithm
from rlcamp.algos.ppo import PPO

__all__ = ["PPO", "ConfigError", "OnPolicyAlgorithm"]
