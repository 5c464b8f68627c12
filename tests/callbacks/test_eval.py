"""Periodic evaluation: logged at env_steps, on its own envs, without touching training."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading

import pytest
import torch

from rlcamp.callbacks import PeriodicEval
from rlcamp.train import train


def test_eval_rows_at_env_steps_and_final_value_in_summary(make_cfg, tmp_path):
    cfg = make_cfg(
        "total_env_steps=1024",
        "callbacks.eval.every_env_steps=512",
        "callbacks.eval.n_episodes=2",
        "callbacks.checkpoint=null",
    )
    summary, module = train(cfg)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    evals = [r for r in rows if r["eval/return_mean"]]
    assert [int(float(r["env_steps"])) for r in evals] == [512, 1024]
    for row in evals:
        assert float(row["eval/return_mean"]) > 0 and float(row["eval/ep_len_mean"]) > 0
    assert json.loads((tmp_path / "summary.json").read_text())["eval_return_mean"] == pytest.approx(
        float(evals[-1]["eval/return_mean"])
    )
    assert module.last_metrics["eval/return_mean"] == summary["eval_return_mean"]


def test_evaluation_does_not_change_training(make_cfg, tmp_path):
    """Same seed with and without evaluation: same curve and same normalization statistics."""
    common = ("total_env_steps=768", "env.normalize_obs=true", "callbacks.checkpoint=null", "logger=none")
    _, plain = train(make_cfg(*common, output_dir=tmp_path / "plain"))
    _, evaluated = train(
        make_cfg(
            *common,
            "callbacks.eval.every_env_steps=256",
            "callbacks.eval.n_episodes=2",
            output_dir=tmp_path / "eval",
        )
    )
    assert evaluated.last_metrics["eval/return_mean"] > 0
    assert evaluated.last_metrics["rollout/ep_return_mean"] == plain.last_metrics["rollout/ep_return_mean"]
    for name, buffer in plain.policy.state_dict().items():
        assert torch.equal(buffer, evaluated.policy.state_dict()[name]), name


@pytest.mark.timeout(120)
def test_a_signal_during_an_endless_evaluation_checkpoints_and_stops(make_cfg, tmp_path, monkeypatch):
    """EndlessRewardEnv has no time limit and never terminates: with no cap that could be reached
    in the test, only the SIGTERM sent once evaluation runs ends it, then the run saves and stops
    (a second signal, sent later, would end the test with KeyboardInterrupt)."""
    evaluate = PeriodicEval.evaluate
    timers = []

    def evaluate_then_signal(self, trainer, pl_module):
        for delay, sig in ((0.5, signal.SIGTERM), (30.0, signal.SIGINT)):
            timers.append(threading.Timer(delay, os.kill, (os.getpid(), sig)))
            timers[-1].start()
        return evaluate(self, trainer, pl_module)

    monkeypatch.setattr(PeriodicEval, "evaluate", evaluate_then_signal)
    cfg = make_cfg(
        "env.id=tests.helpers.envs:EndlessRewardEnv",
        "total_env_steps=256",
        "env.n_envs=2",
        "algo.n_steps=32",
        "callbacks.eval.every_env_steps=64",
        "callbacks.eval.n_episodes=1",
        "callbacks.eval.max_episode_steps=1000000000",
    )
    try:
        summary, _ = train(cfg)
    finally:
        for timer in timers:
            timer.cancel()
    assert summary["status"] == "preempted" and summary["env_steps"] == 64
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "eval/return_mean" not in (tmp_path / "metrics.csv").read_text()


def test_off_by_default_and_rejects_bad_settings(make_cfg):
    assert make_cfg().callbacks.eval.every_env_steps is None
    with pytest.raises(ValueError, match="every_env_steps"):
        PeriodicEval(every_env_steps=0)
    with pytest.raises(ValueError, match="video_dir"):
        PeriodicEval(every_env_steps=100, video=True)
