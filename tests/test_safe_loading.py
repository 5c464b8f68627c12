"""Checkpoints load as plain data (``weights_only=True``): every algorithm's does, a planted
malicious pickle is refused."""

from __future__ import annotations

import importlib.util
import os
import pickle

import pytest
import torch

from rlcamp.rollout.evaluation import evaluate_policy
from rlcamp.train import train
from rlcamp.utils.checkpoint import CheckpointError, load_checkpoint, load_run
from tests.helpers.config import config_options


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


MUJOCO = pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None,
    reason="the mujoco extra is not installed: pip install -e '.[mujoco]'",
)
ENV_FAMILIES = [
    pytest.param("cartpole", id="classic"),
    pytest.param("inverted_pendulum", id="mujoco", marks=[pytest.mark.mujoco, MUJOCO]),
]


@pytest.mark.parametrize("env", ENV_FAMILIES)
@pytest.mark.parametrize("algo", config_options("algo"))
def test_every_algorithms_checkpoint_loads_evaluates_and_resumes(make_cfg, tmp_path, algo, env):
    """Its hyperparameters are plain data, so ``weights_only=True`` reads every algorithm's checkpoint."""
    tiny = [f"algo={algo}", f"env={env}", "env.n_envs=1", "algo.n_steps=32"]
    train(make_cfg(*tiny, "total_env_steps=32", output_dir=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"

    module, cfg = load_run(ckpt)
    assert cfg.algo._target_ == make_cfg(*tiny).algo._target_
    result = evaluate_policy(module.policy, module.env_factory, n_episodes=1)
    assert len(result.returns) == 1
    summary, _ = train(
        make_cfg(*tiny, "total_env_steps=64", f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed")
    )
    assert summary["status"] == "completed" and summary["env_steps"] == 64
