"""Shared fixtures: quiet, headless, offline, single-threaded, and a Hydra config builder."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def make_cfg(tmp_path):
    """Compose ``conf/train.yaml`` with overrides, writing into ``tmp_path``."""
    from tests.helpers.config import compose_train

    def _make(*overrides: str, output_dir=None):
        return compose_train(list(overrides), output_dir or tmp_path)

    return _make


def _share_group(item: pytest.Item) -> tuple:
    """A module's ``SHARED_PARAMS`` (tests/test_configs.py: its cached composition per algo × env):
    its tests with equal values of them form one group; any other test is a group of its own."""
    names = getattr(getattr(item, "module", None), "SHARED_PARAMS", ())
    params = getattr(getattr(item, "callspec", None), "params", {})
    if not names or not any(name in params for name in names):
        return (item.nodeid,)
    return (item.path, *(str(params.get(name)) for name in names))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests marked slow (learning claims, end-to-end runs: up to minutes each) first, the
    rest after them in their order: under ``pytest -n auto`` the workers then share out the short
    tests at the end instead of one worker finishing a long one while the others wait.

    Tests of one share group (``_share_group``) run one after another from where the first of them
    stood, so under xdist they land on one worker and read what it cached for the first."""
    first: dict[tuple, int] = {}
    for index, item in enumerate(items):
        first.setdefault(_share_group(item), index)
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, first[_share_group(item)]))
