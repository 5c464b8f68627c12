"""On-policy algorithms, each a LightningModule on ``OnPolicyAlgorithm``."""

from rlcamp.algos.a2c import A2C
from rlcamp.algos.actor_critic import QActorCritic
from rlcamp.algos.base import ConfigError, OnPolicyAlgorithm
from rlcamp.algos.npg import NPG
from rlcamp.algos.ppo import PPO
from rlcamp.algos.reinforce import REINFORCE
from rlcamp.algos.trpo import TRPO

__all__ = ["A2C", "NPG", "PPO", "REINFORCE", "TRPO", "QActorCritic", "ConfigError", "OnPolicyAlgorithm"]
