"""``rlcamp-train``'s light entry point: what returns before a run (a value the config checks
refuse included) imports neither torch nor Lightning, ``--help`` lists the config groups and the
common commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlcamp.config_checks import torch_build

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


# a value the run's checks refuse: the overrides and the one line (a prefix where the rest is tuning)
REFUSED = {
    "gamma": (["algo.gamma=1.5"], "algo.gamma=1.5 must be in (0, 1]"),
    "negative-lr": (["algo.optimizer.lr=-0.001"], "algo.optimizer.lr=-0.001 must be > 0"),
    "clip-range": (["algo.clip_range=-1"], "algo.clip_range=-1 must be > 0"),
    "no-budget": (["total_env_steps=0"], "total_env_steps=0 is smaller than one rollout ("),
    "seed": (["seed=-1"], "seed=-1 must be in [0, 4294967295] (an unsigned 32-bit seed), e.g. seed=1"),
    "n-envs": (["env.n_envs=0"], "env.n_envs=0: need at least 1 environment"),
    "baseline": (["algo=reinforce", "algo.baseline=critic"], "algo.baseline='critic': choose one of none"),
    "not-a-number": (["algo.gamma=abc"], "algo.gamma='abc' must be a number"),
    "algo-key": (["+algo.learning_rate=0.1"], "algo.learning_rate is not a setting of PPO; did you mean"),
    "env-key": (["+env.seed=1"], "env.seed is not a setting of VecEnvFactory; did you mean"),
    "env-id": (["env.id=CartPol-v1"], "env.id: unknown env id 'CartPol-v1'; did you mean CartPole-v1"),
    "env-kwargs": (["+env.kwargs.gravity=1"], "env.kwargs.gravity is not a parameter of CartPole-v1"),
    "atari-n-envs": (["env=pong", "env.n_envs=0"], "env.n_envs=0: need at least 1 environment"),
    "memory": (
        ["algo=trpo", "network.memory=lstm"],
        "network.memory=lstm: TRPO cannot train a recurrent policy",
    ),
}
if not torch_build()[1]:  # a torch without CUDA or ROCm: refused before torch; else after it
    REFUSED["gpu"] = (["trainer=gpu"], f"trainer.accelerator=gpu but torch {torch_build()[0]} sees no CUDA")


def snapshot(directory: Path) -> dict[str, bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_value_is_one_line_before_torch_and_records_the_failure(case, tmp_path):
    """The checks the config alone decides run before torch and Lightning are imported; the new run
    folder holds Hydra's record and a summary.json saying the run failed, as before."""
    overrides, message = REFUSED[case]
    report, _ = probe(*overrides, f"hydra.run.dir={tmp_path}/run")
    assert report["heavy"] == [], report
    assert report["code"].startswith(f"rlcamp-train: error: {message}") and "\n" not in report["code"]
    record = {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "train.log"}
    assert set(snapshot(tmp_path / "run")) <= {*record, "summary.json"}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and message in summary["error"]


def test_a_refused_value_leaves_an_existing_run_folder_byte_for_byte(tmp_path):
    """A refused command over a run already in the folder: Hydra's rewritten .hydra/ and log are put
    back, nothing else is written."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run / ".hydra" / name).write_text(f"the run's {name}\n")
    (run / "train.log").write_text("the run's log\n")
    (run / "summary.json").write_text('{"status": "completed"}\n')
    before = snapshot(run)
    report, _ = probe("algo.gamma=1.5", f"hydra.run.dir={run}")
    assert report == {"code": "rlcamp-train: error: algo.gamma=1.5 must be in (0, 1]", "heavy": []}
    assert snapshot(run) == before


def test_a_sweep_of_refused_values_records_each_job_before_torch(tmp_path):
    """In a multirun each refused job records its failure and the sweep goes on, without torch."""
    report, _ = probe("-m", "algo.gamma=1.5,2.0", f"hydra.sweep.dir={tmp_path}/sweep")
    assert report == {"code": 0, "heavy": []}
    errors = [json.loads((tmp_path / "sweep" / job / "summary.json").read_text())["error"] for job in "01"]
    assert errors == [
        "ConfigError: algo.gamma=1.5 must be in (0, 1]",
        "ConfigError: algo.gamma=2.0 must be in (0, 1]",
    ]
