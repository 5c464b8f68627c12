"""``--jobs``: a multirun's jobs, with their resolved key settings, listed without running them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import initialize_config_dir

from rlcamp.errors import ConfigError
from rlcamp.utils.conf import CONF_DIR
from rlcamp.utils.sweep_preview import preview, sweep_jobs

REPO = Path(__file__).resolve().parents[2]


def jobs_of(*arguments: str) -> list[list[str]]:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return sweep_jobs(list(arguments))[1]


def test_the_command_lines_sweeps_are_the_jobs_in_launch_order():
    assert jobs_of("-m", "seed=1,2", "env=cartpole,acrobot", "algo.gamma=0.9") == [
        ["seed=1", "env=cartpole", "algo.gamma=0.9"],
        ["seed=1", "env=acrobot", "algo.gamma=0.9"],
        ["seed=2", "env=cartpole", "algo.gamma=0.9"],
        ["seed=2", "env=acrobot", "algo.gamma=0.9"],
    ]


def test_an_experiments_sweep_narrowed_from_the_command_line():
    """experiment=ppo_paper_mujoco sweeps 5 algos × 7 envs × 3 seeds; the command line narrows two keys."""
    jobs = jobs_of("experiment=ppo_paper_mujoco", "seed=1,2", "env=hopper,reacher")
    assert len(jobs) == 5 * 2 * 2 and len(jobs_of("experiment=ppo_paper_mujoco")) == 105
    assert jobs[0] == ["algo=ppo", "env=hopper", "seed=1", "experiment=ppo_paper_mujoco"]


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local", "slurm"])
def test_every_launcher_gets_the_same_job_list_with_resolved_settings(launcher):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    lines = preview(["-m", f"hydra/launcher={launcher}", "seed=1,2", "algo=ppo,a2c"])
    assert lines[0].startswith("4 job(s), launcher ") and "none run" in lines[0]
    assert lines[0].endswith("outputs: logs/train/multiruns/<timestamp>/<job>")
    assert lines[1] == (
        "0  seed=1 algo=ppo  ->  ppo on CartPole-v1, seed 1, 100000 env steps, 8 envs × 32 steps, lr 0.002"
    )
    assert lines[4].startswith("3  seed=2 algo=a2c  ->  a2c on CartPole-v1, seed 2, ")


def test_a_sweeper_without_a_job_list_and_a_bad_job_are_one_line_errors():
    with pytest.raises(ConfigError, match="OptunaSweeper picks its trials as it runs"):
        preview(["hparams_search=ppo_optuna"])
    with pytest.raises(ConfigError, match="algo=nope"):
        preview(["-m", "algo=ppo,nope"])


def test_rlcamp_train_jobs_lists_a_slurm_sweep_and_runs_nothing(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.train",
            "-m",
            "hydra/launcher=slurm",
            "seed=1,2",
            f"paths.log_dir={tmp_path}",
            "--jobs",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2 job(s), launcher SlurmLauncher, none run") and len(lines) == 3
    assert not list(tmp_path.iterdir())
