"""End to end: a short default run writes every output a user and a sweep rely on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rlcamp.train import train
from tests.helpers.cli import train_cli
from tests.helpers.learning import stop_at


def test_the_summary_names_the_algorithm_as_its_config_does(make_cfg, tmp_path):
    """``algo=actor_critic`` is reported as actor_critic, not its class name (qactorcritic)."""
    summary, _ = train(make_cfg("algo=actor_critic", "total_env_steps=128", "debug=default"))
    assert summary["algo"] == "actor_critic" == json.loads((tmp_path / "summary.json").read_text())["algo"]


def test_train_writes_summary_metrics_and_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("total_env_steps=2048", "callbacks.checkpoint.every_env_steps=1024")
    summary, module = train(cfg)
    summary_file = json.loads((tmp_path / "summary.json").read_text())
    assert summary_file == json.loads(json.dumps(summary))
    for key in (
        "algo",
        "env_id",
        "seed",
        "env_steps",
        "episodes",
        "ep_return_mean",
        "wall_seconds",
        "steps_per_second",
    ):
        assert key in summary_file
    assert summary_file["env_steps"] == 2048 and summary_file["env_id"] == "CartPole-v1"
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 8  # 2048 / (8 envs x 32 steps)
    for name in (
        "env_steps",
        "rollout/ep_return_mean",
        "rollout/ep_len_mean",
        "train/policy_loss",
        "train/value_loss",
        "train/entropy",
        "train/approx_kl",
        "train/clip_fraction",
        "train/explained_variance",
        "time/sps",
    ):
        assert name in rows[0], name
    assert [int(float(r["env_steps"])) for r in rows] == list(range(256, 2049, 256))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_cli_run_directory_layout(tmp_path):
    """``rlcamp-train`` writes logs/<task_name>/runs/<timestamp>/ with .hydra/ and summary.json."""
    run_dir = train_cli(tmp_path, "e2e", "total_env_steps=512")
    for name in (".hydra/config.yaml", "metrics.csv", "summary.json", "checkpoints/last.ckpt"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 512
    assert Path(run_dir).name[:4].isdigit()


def test_lightning_callbacks_can_monitor_the_return(make_cfg):
    """``rollout/ep_return_mean`` reaches ``trainer.callback_metrics`` every rollout, so Lightning's
    ``EarlyStopping(monitor=...)`` can end a run (here at a return a random policy already reaches)."""
    summary, module = train(make_cfg("total_env_steps=8192", *stop_at(15)))
    assert summary["env_steps"] < 8192 and summary["ep_return_mean"] >= 15
    assert summary["status"] == "stopped" and "trainer.should_stop" in summary["stop_reason"]
    assert float(module.trainer.callback_metrics["rollout/ep_return_mean"]) == pytest.approx(
        summary["ep_return_mean"]
    )


@pytest.mark.parametrize(
    ("limit", "env_steps", "reason"),
    [
        ("trainer.max_epochs=2", 128, "trainer.max_epochs=2"),
        ("+trainer.max_time=00:00:00:00", 0, "trainer.max_time"),
    ],
)
def test_a_lightning_limit_before_the_budget_is_a_stop_not_a_completion(
    make_cfg, tmp_path, limit, env_steps, reason
):
    """A limit that ends the fit early (the usual way to fit a wall time) says so in summary.json."""
    summary, _ = train(make_cfg("total_env_steps=512", "env.n_envs=2", "algo.n_steps=32", limit))
    recorded = json.loads((tmp_path / "summary.json").read_text())
    assert recorded["status"] == summary["status"] == "stopped"
    assert recorded["env_steps"] == env_steps and recorded["stop_reason"].startswith(reason)


def test_run_clock_adds_the_earlier_fits_time_and_rates_this_fits_steps(monkeypatch):
    """``RunClock``: wall seconds = the checkpoint's + this fit's; steps/s over this fit's steps only."""
    from rlcamp.utils import summary

    now = iter([100.0, 110.0, 110.0])
    monkeypatch.setattr(summary.time, "perf_counter", lambda: next(now))
    clock = summary.RunClock(seconds_before=5.0)
    clock.begin(env_steps=1000)
    assert clock.wall_seconds == 15.0
    assert clock.steps_per_second(env_steps=3000) == 200.0
