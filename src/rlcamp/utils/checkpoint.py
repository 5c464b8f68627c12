"""Load rlcamp checkpoints without running code from them, and rebuild their module."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.utils.build import build


class CheckpointError(ValueError):
    """A missing, corrupt, unsafe or mismatched checkpoint (one line, with the fix)."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, never arbitrary pickles."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} contains objects other than tensors and plain data; refusing to unpickle it "
            "(only load checkpoints you trust, and only rlcamp's own)"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: {type(err).__name__})") from err


def checkpoint_config(checkpoint: dict[str, Any], path: str | Path = "checkpoint") -> DictConfig:
    """The resolved run config stored in an rlcamp checkpoint."""
    config = checkpoint.get("rlcamp", {}).get("config")
    if config is None:
        raise CheckpointError(f"{path} was not written by rlcamp-train (no rlcamp config inside)")
    return OmegaConf.create(config)


def load_run(path: str | Path) -> tuple[OnPolicyAlgorithm, DictConfig]:
    """Rebuild the module of a checkpoint with its weights and normalization statistics loaded."""
    checkpoint = load_checkpoint(path)
    cfg = checkpoint_config(checkpoint, path)
    module = build(cfg)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not match the network its config builds: {str(err).splitlines()[0]}") from err
    module.on_load_checkpoint(checkpoint)
    return module, cfg
