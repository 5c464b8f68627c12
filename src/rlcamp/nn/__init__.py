"""Networks: MLP bodies, distribution heads, the actor-critic and the action-value critic."""

from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.heads import BernoulliHead, CategoricalHead, GaussianHead, MultiCategoricalHead, make_head
from rlcamp.nn.mlp import mlp
from rlcamp.nn.q_critic import QCritic

__all__ = [
    "ActorCritic",
    "BernoulliHead",
    "CategoricalHead",
    "GaussianHead",
    "MultiCategoricalHead",
    "QCritic",
    "make_head",
    "mlp",
]
