"""Policy networks: MLP bodies, distribution heads and the actor-critic."""

from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.nn.heads import CategoricalHead, GaussianHead, make_head
from rlcamp.nn.mlp import mlp

__all__ = ["ActorCritic", "CategoricalHead", "GaussianHead", "make_head", "mlp"]
