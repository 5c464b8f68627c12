"""W&B offline: metrics against env_steps read back with wandb's own tool, no secret anywhere."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from omegaconf import OmegaConf

from rlcamp.train import train
from rlcamp.utils.wandb import setup_wandb
from tests.helpers.wandb import wandb_records

PLANTED = "planted-secret-3f9c2a7d41e8b6"


@pytest.mark.slow
def test_offline_run_logs_against_env_steps_without_secrets(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", PLANTED)
    monkeypatch.setenv("RLCAMP_TEST_TOKEN", PLANTED)
    cfg = make_cfg("logger=many", "total_env_steps=1024", "tags=[wandb-test]")
    train(cfg)

    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    records = wandb_records(run_dir)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert [row["env_steps"] for row in history] == [256, 512, 768, 1024]
    assert all("rollout/ep_return_mean" in row and "train/policy_loss" in row for row in history)
    axes = {
        r["metric"].get("glob_name"): r["metric"].get("step_metric") for r in records if r["type"] == "metric"
    }
    assert axes["*"] == "env_steps"
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert (run["run_group"], run["display_name"], run["job_type"]) == (
        "train",
        "ppo-CartPole-v1-s1",
        "train",
    )
    assert run["tags"] == ["wandb-test"]
    config = [r for r in records if r["type"] == "config"]
    assert any("algo" in json.dumps(c) for c in config)  # the resolved run config was logged

    assert (tmp_path / "metrics.csv").is_file()  # logger=many: CSV and TensorBoard too
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and PLANTED.encode() in p.read_bytes()]
    assert not leaks, f"secret written to {leaks}"


def test_without_credentials_logs_offline_and_says_how_to_sync(make_cfg, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = make_cfg("logger=wandb")
    with caplog.at_level(logging.WARNING):
        setup_wandb(cfg)
    assert cfg.logger.wandb.offline is True
    (record,) = [r for r in caplog.records if "W&B" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message and f"wandb sync {tmp_path}/wandb/offline-run-*" in message
    assert (cfg.logger.wandb.group, cfg.logger.wandb.name, cfg.logger.wandb.job_type) == (
        "train",
        "ppo-CartPole-v1-s1",
        "train",
    )


def test_with_a_key_or_explicit_mode_stays_as_configured(make_cfg, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", PLANTED)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = make_cfg("logger=wandb", "logger.wandb.group=my-study")
    with socket.create_server(("127.0.0.1", 0)) as server, caplog.at_level(logging.WARNING):
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        setup_wandb(cfg)
    assert cfg.logger.wandb.offline is False and cfg.logger.wandb.group == "my-study"
    assert not [r for r in caplog.records if "W&B" in r.getMessage()]
    assert PLANTED not in json.dumps(OmegaConf.to_container(cfg.logger, resolve=True))


def test_an_unreachable_server_falls_back_to_offline_with_one_warning(
    make_cfg, tmp_path, monkeypatch, caplog
):
    """A key, but nothing listens at the server's address: offline at once, instead of wandb's
    ~100 s of retries and a traceback."""
    monkeypatch.setenv("WANDB_API_KEY", PLANTED)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    cfg = make_cfg("logger=wandb")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        setup_wandb(cfg)
    assert time.monotonic() - started < 10
    assert cfg.logger.wandb.offline is True
    (record,) = [r for r in caplog.records if "W&B" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message and message.startswith("W&B: cannot reach http://127.0.0.1:9 (")
    assert f"logging offline; upload later with: wandb sync {tmp_path}/wandb/offline-run-*" in message


def test_run_name_uses_the_algorithms_config_name(make_cfg):
    """``actor_critic``, as the command line chose it, not the class name ``qactorcritic``."""
    from rlcamp.utils.wandb import run_name

    assert run_name(make_cfg("algo=actor_critic", "seed=4")) == "actor_critic-CartPole-v1-s4"
    assert run_name(make_cfg("algo=ppo_kl")).startswith("ppo_kl-")
