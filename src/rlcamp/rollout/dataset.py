"""The train dataloader's dataset: one pass over it is one rollout plus its update."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch.utils.data import IterableDataset


class RolloutDataset(IterableDataset):
    """``iter()`` calls ``rollout_batches()`` (collect a fresh rollout, return its update batches).

    Lightning calls ``iter()`` once per epoch, so a Lightning epoch is one rollout. ``__len__`` is
    the number of update batches: with it, Lightning does not fetch past the last batch, so the
    next rollout is collected only after the last optimizer step of this one.
    """

    def __init__(self, rollout_batches: Callable[[], Iterable[Any]], batches_per_rollout: int) -> None:
        self.rollout_batches = rollout_batches
        self.batches_per_rollout = batches_per_rollout

    def __len__(self) -> int:
        return self.batches_per_rollout

    def __iter__(self) -> Iterator[Any]:
        yield from self.rollout_batches()
