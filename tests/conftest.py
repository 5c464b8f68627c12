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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests marked slow (learning claims, end-to-end runs: up to minutes each) first, the
    rest after them in their order: under ``pytest -n auto`` the workers then share out the short
    tests at the end instead of one worker finishing a long one while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
