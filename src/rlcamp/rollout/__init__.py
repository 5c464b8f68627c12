"""On-policy data: the collector, the batch types, advantage estimators and the dataset."""

from rlcamp.rollout.advantages import discounted_returns, gae
from rlcamp.rollout.buffer import Batch, Rollout, bootstrap_truncations, gae_batch
from rlcamp.rollout.collector import EpisodeStats, RolloutCollector
from rlcamp.rollout.dataset import RolloutDataset

__all__ = [
    "Batch",
    "EpisodeStats",
    "Rollout",
    "RolloutCollector",
    "RolloutDataset",
    "bootstrap_truncations",
    "discounted_returns",
    "gae",
    "gae_batch",
]
