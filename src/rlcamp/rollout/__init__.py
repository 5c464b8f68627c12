"""On-policy data: the collector, the batch types, advantage estimators and the dataset."""

from rlcamp.rollout.advantages import discounted_returns, gae
from rlcamp.rollout.buffer import Batch, Rollout
from rlcamp.rollout.collector import EpisodeStats, NonFiniteEnvError, RolloutCollector
from rlcamp.rollout.dataset import RolloutDataset

__all__ = [
    "Batch",
    "EpisodeStats",
    "NonFiniteEnvError",
    "Rollout",
    "RolloutCollector",
    "RolloutDataset",
    "discounted_returns",
    "gae",
]
