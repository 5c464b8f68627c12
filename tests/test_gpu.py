"""Training on a GPU: the policy and the rollout tensors live on CUDA, envs stay on the CPU.

Skipped without CUDA (CI); run on a GPU machine with ``pytest tests/test_gpu.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

from rlcamp.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (trainer=gpu)")


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_gpu_training_runs_on_cuda_and_checkpoints_load_on_cpu(make_cfg, tmp_path, env):
    from rlcamp.utils.checkpoint import load_run

    cfg = make_cfg("trainer=gpu", f"env={env}", "total_env_steps=8192", "logger=csv")
    seen_devices: set[str] = set()
    from rlcamp.algos import base

    original = base.OnPolicyAlgorithm.collect_rollout

    def spy(self):
        batch = original(self)
        seen_devices.add(batch.obs.device.type)
        seen_devices.add(next(self.policy.parameters()).device.type)
        return batch

    base.OnPolicyAlgorithm.collect_rollout = spy
    try:
        summary, module = train(cfg)
    finally:
        base.OnPolicyAlgorithm.collect_rollout = original
    assert seen_devices == {"cuda"}  # Lightning moves the module back to the CPU after fit
    assert summary["env_steps"] >= 8192 and math.isfinite(summary["ep_return_mean"])
    restored, _ = load_run(tmp_path / "checkpoints" / "last.ckpt")
    assert next(restored.policy.parameters()).device.type == "cpu"
