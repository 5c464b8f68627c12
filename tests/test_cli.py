"""``rlcamp-train``'s light entry point: what returns before a run imports neither torch nor
Lightning, ``--help`` lists the config groups and the common commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# run rlcamp.cli.train with a command line, then report which heavy modules it imported
PROBE = """
import json, sys
sys.argv = ["rlcamp-train", *json.loads(sys.argv[1])]
from rlcamp.cli import train
try:
    train()
except SystemExit as end:
    code = end.code
else:
    code = 0
heavy = sorted({"torch", "pytorch_lightning"} & set(sys.modules))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def probe(*arguments: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(arguments)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(result.stderr.strip().splitlines()[-1]), result.stdout


@pytest.mark.parametrize(
    "arguments",
    [
        ("--cfg", "job"),
        ("--help",),
        ("--info",),
        ("-m", "seed=1,2", "--jobs"),
        ("algo=nope",),
        ("algo.gamma=[0.9",),
    ],
    ids=["cfg", "help", "info", "jobs", "unknown-option", "unparsable-override"],
)
def test_what_returns_before_a_run_imports_neither_torch_nor_lightning(arguments):
    report, _ = probe(*arguments)
    assert report["heavy"] == [], report


def test_help_lists_the_config_groups_and_the_common_commands():
    _, out = probe("--help")
    assert out.startswith("rlcamp-train: train an on-policy RL agent.")
    assert "algo: a2c, acktr, actor_critic, npg, ppo, ppo_kl, reinforce, trpo" in out.splitlines()
    assert "rlcamp-train -m seed=1,2,3 env=cartpole,acrobot --jobs" in out


def test_a_multirun_with_cfg_is_one_line_naming_jobs():
    report, _ = probe("-m", "hydra/launcher=slurm", "seed=1,2", "--cfg", "job")
    assert report["code"] == (
        "rlcamp-train: error: --cfg and --info show one job, not a multirun: list the sweep's jobs with "
        "--jobs, or drop -m and pass one job's overrides"
    )


def test_cfg_hydra_resolve_is_one_line_naming_cfg_all():
    report, _ = probe("--cfg", "hydra", "--resolve")
    assert report["code"].startswith(
        "rlcamp-train: error: --cfg hydra --resolve cannot resolve the run folders"
    )
    assert "--cfg all --resolve, narrowed with -p hydra.run" in report["code"]


def test_cfg_of_an_experiment_sweep_says_it_shows_the_config_before_the_sweep():
    """experiment=ppo_paper_mujoco sweeps algo, env and seed in its own file: --cfg job shows the
    config without their values, and one line says so and names --jobs."""
    result = subprocess.run(
        [sys.executable, "-m", "rlcamp.cli", "experiment=ppo_paper_mujoco", "--cfg", "job"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "task_name: ppo_paper_mujoco" in result.stdout
    assert result.stderr.splitlines() == [
        "rlcamp-train: this config sweeps algo, env, seed (hydra.sweeper.params): --cfg shows it before "
        "the sweep's values; list the jobs with --jobs"
    ]
