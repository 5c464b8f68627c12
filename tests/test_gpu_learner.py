"""trainer=gpu: the update on the GPU, the per-step rollout actor on the CPU (numpy), or on the GPU
with ``+network.act_on_device=true``. Skipped without CUDA (CI); run on a GPU machine."""

from __future__ import annotations

import pytest
import torch

from rlcamp.nn import rollout_actor as actors
from rlcamp.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (trainer=gpu)")


@pytest.mark.parametrize("on_device", [False, True], ids=["actor_cpu", "actor_gpu"])
def test_gpu_learner_with_the_actor_on_the_cpu_or_the_gpu(make_cfg, monkeypatch, on_device):
    made = []
    original = actors.rollout_actor

    def spy(policy):
        actor = original(policy)
        made.append((isinstance(actor, actors.NumpyActor), next(policy.parameters()).device.type))
        return actor

    monkeypatch.setattr("rlcamp.rollout.collector.rollout_actor", spy)
    overrides = ["trainer=gpu", "total_env_steps=2048", f"+network.act_on_device={str(on_device).lower()}"]
    summary, _ = train(make_cfg(*overrides))
    assert summary["env_steps"] >= 2048
    assert set(made) == {(not on_device, "cuda")}
