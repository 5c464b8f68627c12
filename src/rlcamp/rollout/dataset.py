"""The train dataloader's dataset: one pass over it is one rollout, one item its training batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import IterableDataset


class RolloutDataset(IterableDataset):
    """``iter()`` yields ``collect()`` once: a fresh rollout's batch, collected when Lightning asks.

    Lightning calls ``iter()`` once per epoch, so a Lightning epoch is one rollout and one training
    step its whole update. ``__len__`` is 1: with it, Lightning does not fetch past that item, so
    the next rollout is collected only after this one's update.
    """

    def __init__(self, collect: Callable[[], Any]) -> None:
        self.collect = collect

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Any]:
        yield self.collect()
