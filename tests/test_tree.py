"""``rlcamp.tree``: one array or a dict of arrays through the same maps."""

from __future__ import annotations

import numpy as np
import torch

from rlcamp.tree import tree_chunk, tree_concat, tree_map, tree_rows, tree_set, tree_stack


def test_the_first_tree_decides_the_keys():
    """Mapping over ``(dtypes, obs)`` keeps the keys of ``dtypes`` only (a Text key is left behind)."""
    dtypes = {"image": np.dtype(np.uint8), "rule": np.dtype(np.float32)}
    obs = {"image": np.ones((2, 1, 3, 3)), "rule": np.zeros((2, 2)), "mission": ["a", "b"]}
    cast = tree_map(lambda dtype, leaf: np.asarray(leaf, dtype=dtype), dtypes, obs)
    assert list(cast) == ["image", "rule"]
    assert cast["image"].dtype == np.uint8 and cast["rule"].dtype == np.float32
    assert tree_map(np.dtype, np.float32) == np.dtype(np.float32)  # a leaf is mapped as itself


def test_rows_chunks_and_writes_act_on_every_key_alike():
    tree = {"a": torch.arange(6), "b": torch.arange(12).reshape(6, 2)}
    picked = tree_rows(tree, torch.tensor([5, 0]))
    assert picked["a"].tolist() == [5, 0] and picked["b"].tolist() == [[10, 11], [0, 1]]
    first, second = tree_chunk(tree, 2)
    assert first["a"].tolist() == [0, 1, 2] and second["b"].tolist() == [[6, 7], [8, 9], [10, 11]]
    assert [chunk.tolist() for chunk in tree_chunk(torch.arange(4), 2)] == [[0, 1], [2, 3]]
    buffer = {"a": np.zeros((2, 3)), "b": np.zeros((2, 3), np.uint8)}
    tree_set(buffer, 1, {"a": np.ones(3), "b": np.full(3, 7)})
    assert buffer["a"][1].tolist() == [1, 1, 1] and buffer["b"][1].tolist() == [7, 7, 7]


def test_per_env_dicts_stack_and_concatenate_by_key():
    envs = [{"x": np.array([i]), "k": i} for i in range(3)]
    stacked = tree_stack(envs)
    assert stacked["x"].shape == (3, 1) and stacked["k"].tolist() == [0, 1, 2]
    both = tree_concat([stacked, tree_rows(stacked, slice(1))])
    assert both["k"].tolist() == [0, 1, 2, 0]
    assert tree_stack([np.zeros(2), np.ones(2)]).shape == (2, 2)
