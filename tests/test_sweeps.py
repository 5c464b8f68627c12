"""Multiruns through the basic and submitit launchers, Optuna search, the SLURM preset, the job table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlcamp.utils.multirun import MultirunReport, job_rows, jobs_outcome, render_table
from tests.helpers.wandb import wandb_records

FAST = ["total_env_steps=512", "callbacks.progress=null", "callbacks.checkpoint=null"]


def rlcamp_train(*args: str, log_dir: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "rlcamp.train", *args, *FAST, f"paths.log_dir={log_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def sweep_dir(log_dir: Path, task_name: str = "train") -> Path:
    (path,) = (log_dir / task_name / "multiruns").iterdir()
    return path


def summaries(path: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(path.glob("*/summary.json"))}


@pytest.mark.slow
def test_basic_launcher_2x2_one_wandb_group_and_a_table(tmp_path):
    # both envs at CartPole's tuned rollout (8 envs x 32 steps): two rollouts each
    rollout = ["env.n_envs=8", "algo.n_steps=32"]
    result = rlcamp_train(
        "-m", "seed=1,2", "env=cartpole,acrobot", "logger=wandb", *rollout, log_dir=tmp_path
    )
    path = sweep_dir(tmp_path)
    runs = summaries(path)
    assert sorted(runs) == ["0", "1", "2", "3"]
    assert {(s["seed"], s["env_id"]) for s in runs.values()} == {
        (1, "CartPole-v1"),
        (2, "CartPole-v1"),
        (1, "Acrobot-v1"),
        (2, "Acrobot-v1"),
    }
    assert all(s["status"] == "completed" and s["env_steps"] == 512 for s in runs.values())
    assert f"multirun outputs: {path}/<job>/" in result.stdout
    assert "4/4 jobs completed" in result.stdout and "seed=2 env=acrobot" in result.stdout
    # one line per job as it ends, one table at the sweep's end, then the compare command
    job_lines = [line for line in result.stdout.splitlines() if line.startswith("ppo on ")]
    assert len(job_lines) == 4 and "return (last episodes)" not in result.stdout
    assert result.stdout.splitlines()[-1] == f"compare:  rlcamp-compare {path}"

    groups, ids = set(), set()
    for run_dir in path.glob("*/wandb/offline-run-*"):
        (run,) = [r["run"] for r in wandb_records(run_dir) if r["type"] == "run"]
        groups.add(run["run_group"])
        ids.add(run["run_id"])
    assert len(ids) == 4  # one W&B run per job (wandb.finish between jobs)
    assert groups == {f"train-{path.name}"}


@pytest.mark.slow
def test_submitit_local_2x2(tmp_path):
    rlcamp_train("-m", "hydra/launcher=submitit_local", "seed=1,2", "algo.gamma=0.98,0.99", log_dir=tmp_path)
    runs = summaries(sweep_dir(tmp_path))
    assert sorted(runs) == ["0", "1", "2", "3"]
    assert all(s["status"] == "completed" and s["env_steps"] == 512 for s in runs.values())
    assert len({s["ep_return_mean"] for s in runs.values()} | {None}) > 2  # four different runs


@pytest.mark.slow
def test_optuna_search_finishes_writes_best_params_and_resumes(tmp_path):
    import optuna

    args = ("hparams_search=ppo_optuna", "hydra.sweeper.n_trials=3")
    result = rlcamp_train(*args, log_dir=tmp_path)
    assert "setup plugin alembic" not in result.stdout + result.stderr
    first = sweep_dir(tmp_path, "ppo_optuna")
    best = OmegaConf.load(first / "optimization_results.yaml")
    search_space = OmegaConf.load(Path(__file__).parents[1] / "conf/hparams_search/ppo_optuna.yaml")
    assert set(best.best_params) == set(search_space.hydra.sweeper.params)
    returns = [s["ep_return_mean"] for s in summaries(first).values()]
    assert len(returns) == 3 and best.best_value == pytest.approx(max(returns))

    storage = f"sqlite:///{tmp_path}/ppo_optuna/optuna.db"
    rlcamp_train("hparams_search=ppo_optuna", "hydra.sweeper.n_trials=1", log_dir=tmp_path)
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)


def test_slurm_preset_reads_env_and_makes_valid_sbatch_options(tmp_path, monkeypatch):
    """Compose the preset, then build the sbatch file the way hydra-submitit-launcher does."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    from rlcamp.train import CONF_DIR

    monkeypatch.setenv("RLCAMP_SLURM_PARTITION", "gpu-short")
    monkeypatch.setenv("RLCAMP_SLURM_GPUS", "1")
    monkeypatch.setenv("RLCAMP_SLURM_TIME_MIN", "30")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train", overrides=["hydra/launcher=slurm", "hydra.launcher.mem_gb=4"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu-short", 1, 30)
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.array_parallelism) == (2, 4, 32)
    assert launcher.account is None

    fake_bin = tmp_path / "bin"  # submitit only checks that srun exists
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin")
    skip = {"_target_", "submitit_folder", "name", "max_num_timeout"}
    params = {
        k: OmegaConf.to_object(v) if OmegaConf.is_config(v) else v
        for k, v in ((k, launcher[k]) for k in launcher if k not in skip)
    }
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "submitit")
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    sbatch = executor._executor._make_submission_file_text("python -c pass", "uid")
    for line in (
        "#SBATCH --partition=gpu-short",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --time=30",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4GB",
    ):
        assert line in sbatch, line
    assert "--account" not in sbatch


def test_job_table_reads_summaries_and_flags_failed_and_missing_ones(tmp_path):
    for num, overrides, summary in [
        (
            "0",
            ["seed=1", "algo.optimizer.lr=0.00041303995700526"],
            {"status": "completed", "ep_return_mean": 21.5, "env_steps": 512, "wall_seconds": 3.0},
        ),
        ("1", ["seed=2", "algo.optimizer.lr=0.001"], None),
        (
            "2",
            ["seed=3", "algo.optimizer.lr=0.001"],
            {"status": "failed", "error": "ConfigError: x in [0, 1]"},
        ),
    ]:
        (tmp_path / num / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(overrides), tmp_path / num / ".hydra" / "overrides.yaml")
        if summary:
            (tmp_path / num / "summary.json").write_text(json.dumps(summary))
    rows = job_rows(tmp_path)
    assert [(r["job"], r["overrides"], r["status"], r["return"]) for r in rows] == [
        ("0", "seed=1 lr=0.000413", "completed", 21.5),
        ("1", "seed=2 lr=0.001", "no summary.json", None),
        ("2", "seed=3 lr=0.001", "failed", None),
    ]
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(render_table(tmp_path, rows))
    text = console.export_text()
    assert "21.50" in text and "no summary.json" in text and "eval return" not in text
    assert "failed: ConfigError: x in [0, 1]" in text


def test_job_table_names_how_an_unfinished_job_ended_and_the_count_says_it(tmp_path):
    """A job stopped by a Lightning limit shows its reason and is not counted as completed."""
    for num, summary in [
        ("0", {"status": "completed", "env_steps": 4096}),
        ("1", {"status": "stopped", "stop_reason": "trainer.max_epochs=2", "env_steps": 512}),
        ("2", {"status": "preempted", "preempted_by": "SIGTERM", "env_steps": 1024}),
    ]:
        (tmp_path / num / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create([f"seed={num}"]), tmp_path / num / ".hydra" / "overrides.yaml")
        (tmp_path / num / "summary.json").write_text(json.dumps(summary))
    rows = job_rows(tmp_path)
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(render_table(tmp_path, rows))
    text = console.export_text()
    assert "stopped: trainer.max_epochs=2" in text and "preempted: SIGTERM" in text
    assert jobs_outcome(rows) == "1/3 jobs completed (1 preempted, 1 stopped)"


def test_the_sweeps_end_names_the_compare_command_whole(tmp_path, capsys):
    sweep = tmp_path / "a sweep" / "multiruns" / "2026-12-03_16-05"
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    MultirunReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"compare:  rlcamp-compare '{sweep}'"
