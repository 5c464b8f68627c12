"""Checkpoints load as plain data (``weights_only=True``): a planted malicious pickle is refused."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from rlcamp.train import train
from rlcamp.utils.checkpoint import CheckpointError, load_checkpoint, load_run


class Payload:
    """Unpickling this runs ``os.system`` (here: it creates a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant(checkpoint_path, marker):
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    checkpoint["rlcamp"]["extra"] = Payload(marker)
    evil = checkpoint_path.with_name("evil.ckpt")
    torch.save(checkpoint, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return evil


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the planted pickle's
def test_malicious_pickle_is_refused_everywhere_a_checkpoint_is_read(make_cfg, tmp_path):
    train(make_cfg("total_env_steps=256", "env.n_envs=2", "algo.n_steps=32", output_dir=tmp_path / "run"))
    marker = tmp_path / "pwned"
    evil = plant(tmp_path / "run" / "checkpoints" / "last.ckpt", marker)

    with pytest.raises(CheckpointError, match="contains objects other than tensors and plain data; refusing"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_run(evil)  # what rlcamp-eval uses
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        train(
            make_cfg(
                "total_env_steps=512",
                "env.n_envs=2",
                "algo.n_steps=32",
                f"ckpt_path={evil}",
                output_dir=tmp_path / "resume",
            )
        )
    assert not marker.exists()

    torch.load(evil, weights_only=False)  # what a plain torch.load would have done
    assert marker.exists(), "the planted payload is live: it runs when unpickled without weights_only"
