"""On-policy algorithms, each a LightningModule on ``OnPolicyAlgorithm``."""

from rlcamp.algos.acktr import ACKTR
from rlcamp.algos.actor_critic import QActorCritic
from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.algos.npg import NPG
from rlcamp.algos.policy_gradient import A2C, PolicyGradient
from rlcamp.algos.ppo import PPO, PPOKL
from rlcamp.algos.reinforce import REINFORCE
from rlcamp.algos.trpo import TRPO
from rlcamp.errors import ConfigError

__all__ = [
    "A2C",
    "ACKTR",
    "NPG",
    "PPO",
    "PPOKL",
    "REINFORCE",
    "TRPO",
    "ConfigError",
    "OnPolicyAlgorithm",
    "PolicyGradient",
    "QActorCritic",
]
