"""One Lightning epoch = one rollout, collected only after the previous update finished."""

from __future__ import annotations

from rlcamp.train import train


def test_next_rollout_starts_after_last_optimizer_step(make_cfg, monkeypatch):
    cfg = make_cfg(
        "debug=default",
        "algo.n_steps=16",
        "algo.update_epochs=2",
        "algo.n_minibatches=2",
        "total_env_steps=192",
    )
    events: list[str] = []
    from rlcamp.algos import base

    collect = base.OnPolicyAlgorithm.collect_rollout
    step = base.OnPolicyAlgorithm.gradient_step
    monkeypatch.setattr(
        base.OnPolicyAlgorithm, "collect_rollout", lambda self: events.append("C") or collect(self)
    )
    monkeypatch.setattr(
        base.OnPolicyAlgorithm, "gradient_step", lambda self, loss: events.append("U") or step(self, loss)
    )
    summary, module = train(cfg)
    # 8 envs x 16 steps = 128 per rollout; 192 steps need 2 rollouts of 2 epochs x 2 minibatches
    assert "".join(events) == "CUUUU" * 2
    assert summary["env_steps"] == 256
