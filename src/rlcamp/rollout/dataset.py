"""The train dataloader's dataset: one pass over it is one rollout plus its update."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from torch.utils.data import IterableDataset

if TYPE_CHECKING:
    from rlcamp.algos.base import OnPolicyAlgorithm


class RolloutDataset(IterableDataset):
    """``iter()`` collects a fresh rollout with the current policy, then yields its minibatches.

    Lightning calls ``iter()`` once per epoch, so a Lightning epoch is one rollout. ``__len__`` is
    the number of update batches: with it, Lightning does not fetch past the last batch, so the
    next rollout is collected only after the last optimizer step of this one.
    """

    def __init__(self, algo: OnPolicyAlgorithm) -> None:
        self.algo = algo

    def __len__(self) -> int:
        return self.algo.batches_per_rollout

    def __iter__(self) -> Iterator[Any]:
        batch = self.algo.collect_rollout()
        yield from self.algo.update_batches(batch)
