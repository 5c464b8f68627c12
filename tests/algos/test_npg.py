"""NPG: the full natural step lands on the KL radius its quadratic model predicts."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from rlcamp.algos import NPG
from rlcamp.algos.natural import flat_params, mean_kl, snapshot
from rlcamp.train import build, train


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_npg_takes_the_full_step_of_quadratic_kl_max_kl(make_cfg, env):
    """``½ΔᵀFΔ = δ``; the measured KL of the full step is δ up to third-order terms."""
    module = build(make_cfg("algo=npg", f"env={env}", "algo.max_kl=0.005"))
    assert isinstance(module, NPG)
    module.setup("fit")
    try:
        batch = next(module.rollout_batches())
        old = snapshot(module.policy, batch.obs)
        theta_old = flat_params(module.actor_parameters())
        metrics = module.policy_update(batch)
        with torch.no_grad():
            kl = float(mean_kl(module.policy, batch.obs, old))
        assert 0.5 * 0.005 < kl < 2 * 0.005
        assert metrics["train/surrogate_gain"] > 0 and metrics["train/expected_improvement"] > 0
        assert not torch.equal(flat_params(module.actor_parameters()), theta_old)
    finally:
        module.teardown("fit")


def test_npg_runs_end_to_end_and_logs_its_step(make_cfg, tmp_path):
    summary, module = train(make_cfg("algo=npg", "callbacks=none", "total_env_steps=4096"))
    assert summary["algo"] == "npg" and summary["env_steps"] == 4096
    rows = pd.read_csv(tmp_path / "metrics.csv")
    assert {"train/approx_kl", "train/surrogate_gain", "train/value_loss"} <= set(rows.columns)
    assert (rows["train/approx_kl"] > 0).all()
