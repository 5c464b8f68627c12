"""``PolicySnapshots``: the policy's weights at the first rollout end at or past each scheduled env step."""

from __future__ import annotations

import pytest
import torch

from rlcamp.callbacks import PolicySnapshots
from rlcamp.callbacks.snapshots import snapshot_path
from rlcamp.train import train


def test_snapshots_are_written_at_the_scheduled_env_steps(make_cfg, tmp_path):
    """Tuned PPO on CartPole: 8 envs x 32 steps = 256 env steps per rollout, 3 rollouts."""
    cfg = make_cfg(
        "experiment=variance_study",
        "logger=none",
        "total_env_steps=768",
        "callbacks.snapshots.at_env_steps=[256,700]",
    )
    _, module = train(cfg)
    first = torch.load(snapshot_path(tmp_path / "snapshots", 256), weights_only=True)
    last = torch.load(snapshot_path(tmp_path / "snapshots", 700), weights_only=True)
    assert (first["env_steps"], last["env_steps"]) == (256, 768)
    for name, weight in module.policy.state_dict().items():
        torch.testing.assert_close(last["state_dict"][name], weight)
    assert any(not torch.equal(first["state_dict"][k], v) for k, v in last["state_dict"].items())


def test_an_empty_or_nonpositive_schedule_is_rejected(tmp_path):
    for steps in ([], [100, 0]):
        with pytest.raises(ValueError, match="give one or more positive env steps"):
            PolicySnapshots(str(tmp_path), steps)
