"""Networks: MLP bodies, distribution heads, the actor-critic and the action-value critic."""

from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.heads import CategoricalHead, GaussianHead, make_head
from rlcamp.nn.mlp import mlp
from rlcamp.nn.q_critic import QCritic

__all__ = ["ActorCritic", "CategoricalHead", "GaussianHead", "QCritic", "make_head", "mlp"]
