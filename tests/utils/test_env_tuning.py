"""An ``env.id=...`` override trains with the tuning of the env it names, or with none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from rlcamp.utils.build import CONF_DIR
from rlcamp.utils.env_tuning import env_ids, follow_env_id
from tests.helpers.config import compose_train

REPO = Path(__file__).resolve().parents[2]


def test_an_env_id_a_config_sets_becomes_that_env_choice():
    ids = env_ids(CONF_DIR)
    assert ids["CartPole-v1"] == "cartpole" and ids["Hopper-v5"] == "hopper"
    arguments, note = follow_env_id(["env=cartpole", "seed=2", "env.id=Acrobot-v1", "--cfg", "job"], ids)
    assert arguments == ["seed=2", "--cfg", "job", "env=acrobot"]
    assert (
        note
        == "rlcamp-train: env.id=Acrobot-v1 is env=acrobot (conf/env/), its per-algorithm tuning included"
    )
    arguments, _ = follow_env_id(["-m", "env.id=Acrobot-v1,CartPole-v1"], ids)
    assert arguments == ["-m", "env=acrobot,cartpole"]


def test_an_unknown_env_id_trains_without_another_envs_tuning(tmp_path):
    arguments, note = follow_env_id(["env.id=MyEnv-v0"], env_ids(CONF_DIR))
    assert arguments == ["env.id=MyEnv-v0", "~algo_env"] and "MyEnv-v0 is set by no conf/env/ file" in note
    cfg = compose_train(arguments, tmp_path)
    assert cfg.algo.gamma == 0.99 and cfg.algo.n_steps == 128 and cfg.network.activation != "relu"
    assert follow_env_id(["env.id=MyEnv-v0", "algo_env=ppo_acrobot"], {}) == (
        ["env.id=MyEnv-v0", "algo_env=ppo_acrobot"],
        "",
    )


def test_rlcamp_train_env_id_gets_that_envs_tuning():
    """``rlcamp-train env.id=Acrobot-v1``: Acrobot's PPO tuning, not CartPole's (γ 0.98, 32 steps)."""
    result = subprocess.run(
        [sys.executable, "-m", "rlcamp.train", "env.id=Acrobot-v1", "--cfg", "job"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    cfg = yaml.safe_load(result.stdout)
    assert cfg["env"]["id"] == "Acrobot-v1" and cfg["algo"]["n_steps"] == 256 and cfg["algo"]["gamma"] == 0.99
    assert "env.id=Acrobot-v1 is env=acrobot" in result.stderr
