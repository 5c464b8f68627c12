"""Observations as one array or a ``dict`` of arrays (a ``Dict`` space): the few maps the rollout,
the batch and the network need, so that no caller tells the two cases apart.

A tree is a leaf (a numpy array, a tensor, a dtype, a shape) or a flat ``dict`` of leaves; the
first tree of a call decides the keys, so mapping over ``(dtypes, raw_obs)`` selects the keys that
``dtypes`` holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

if TYPE_CHECKING:
    import torch

# an observation batch: one tensor, or one per key of a Dict space (named as a string: the env
# factory imports this module, and the env checks that run before torch must not import torch)
Obs: TypeAlias = "torch.Tensor | dict[str, torch.Tensor]"


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` of each leaf of ``tree`` and the matching leaves of ``rest`` (keys from ``tree``)."""
    if isinstance(tree, dict):
        return {key: fn(value, *(other[key] for other in rest)) for key, value in tree.items()}
    return fn(tree, *rest)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in key order (``[tree]`` for a leaf)."""
    return list(tree.values()) if isinstance(tree, dict) else [tree]


def tree_set(tree: Any, index: Any, value: Any) -> None:
    """``leaf[index] = value_leaf`` for each leaf of ``tree`` (buffers written in place)."""
    if isinstance(tree, dict):
        for key, leaf in tree.items():
            leaf[index] = value[key]
    else:
        tree[index] = value


def tree_rows(tree: Any, rows: Any) -> Any:
    """``leaf[rows]`` of each leaf (a gather, a boolean mask or a slice of the first axis)."""
    return tree_map(lambda leaf: leaf[rows], tree)


def tree_concat(trees: Sequence[Any]) -> Any:
    """Concatenate numpy trees along axis 0, leaf by leaf."""
    return tree_map(lambda *leaves: np.concatenate(leaves), *trees)


def tree_stack(trees: Sequence[Any]) -> Any:
    """Stack numpy trees along a new axis 0, leaf by leaf (per-env observations into a batch)."""
    return tree_map(lambda *leaves: np.stack(leaves), *trees)


def tree_chunk(tree: Any, n_chunks: int) -> list[Any]:
    """``tensor.chunk(n_chunks)`` of each leaf, as a list of trees (views, no copy)."""
    if not isinstance(tree, dict):
        return list(tree.chunk(n_chunks))
    parts = {key: value.chunk(n_chunks) for key, value in tree.items()}
    return [{key: chunks[i] for key, chunks in parts.items()} for i in range(len(next(iter(parts.values()))))]
