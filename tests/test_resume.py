"""Resume: a crashed, killed or pre-empted run continues exactly from ``last.ckpt``.

What is identical after a resume: weights, optimizer moments, LR-schedule position, annealed clip
range, observation/reward normalization statistics, env-step and episode counters, the episode
window and the Python/NumPy/torch random streams. What is not: the envs restart from
``reset(seed)``, so unless every episode happened to end exactly at the checkpoint the rollouts
after a resume differ from an uninterrupted run's. ``CountingEnv`` with a horizon dividing the
rollout length makes episodes end at every rollout boundary, so there the whole run must match
bit for bit.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from rlcamp.rollout.evaluation import evaluate_policy
from rlcamp.train import run_job, train
from rlcamp.utils.checkpoint import latest_checkpoint, latest_job_checkpoint, load_checkpoint
from tests.helpers.envs import CountingEnv

ALIGNED = [
    "env.id=tests.helpers.envs:CountingEnv",
    "+env.kwargs.horizon=4",
    "env.n_envs=2",
    "env.normalize_obs=true",
    "env.normalize_reward=true",
    "algo.n_steps=8",
    "algo.n_minibatches=2",
    "algo.update_epochs=2",
    "total_env_steps=96",
    "callbacks.checkpoint.every_env_steps=32",
]
ROLLOUT = 16


class SlowCountingEnv(CountingEnv):
    """A ``CountingEnv`` whose steps take ``step_seconds``, so a subprocess can be killed mid-run."""

    def __init__(self, horizon: int = 5, step_seconds: float = 0.002) -> None:
        super().__init__(horizon=horizon)
        self.step_seconds = step_seconds

    def step(self, action):
        time.sleep(self.step_seconds)
        return super().step(action)


class Crash(RuntimeError):
    """Raised by ``CrashAt`` to stand in for a crash between two checkpoints."""


class CrashAt(pl.Callback):
    """Raise when a rollout is about to start with ``env_steps`` already done."""

    def __init__(self, env_steps: int) -> None:
        self.env_steps = env_steps

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.env_steps >= self.env_steps:
            raise Crash(f"crash at env step {pl_module.env_steps}")


class SendSignal(pl.Callback):
    """Send ``signum`` to this process once the rollout reaching ``env_steps`` is in, before its update."""

    def __init__(self, signum: int, env_steps: int) -> None:
        self.signum = signum
        self.env_steps = env_steps

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.env_steps == self.env_steps:
            os.kill(os.getpid(), self.signum)


def metric_rows(path: Path) -> list[dict[str, str]]:
    """``metrics.csv`` rows without the wall-clock column."""
    with path.open(newline="") as file:
        return [{k: v for k, v in row.items() if k != "time/sps"} for row in csv.DictReader(file)]


def env_steps_column(path: Path) -> list[int]:
    return [int(float(row["env_steps"])) for row in metric_rows(path)]


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_crash_and_resume_matches_an_uninterrupted_run_bit_for_bit(make_cfg, tmp_path):
    full_summary, full = train(make_cfg(*ALIGNED, output_dir=tmp_path / "full"))

    crashed_dir = tmp_path / "crashed"
    with pytest.raises(Crash):
        train(
            make_cfg(
                *ALIGNED,
                "+callbacks.crash._target_=tests.test_resume.CrashAt",
                "+callbacks.crash.env_steps=48",
                output_dir=crashed_dir,
            )
        )
    # the crash came after rollout 3 was logged but the last checkpoint holds rollout 2
    assert env_steps_column(crashed_dir / "metrics.csv") == [16, 32, 48]
    assert load_checkpoint(crashed_dir / "checkpoints" / "last.ckpt")["rlcamp"]["env_steps"] == 32
    before = snapshot(crashed_dir)

    ckpt = crashed_dir / "checkpoints" / "last.ckpt"
    resumed_summary, resumed = train(make_cfg(*ALIGNED, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))

    full_state, resumed_state = full.state_dict(), resumed.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for name in full_state:
        assert torch.equal(full_state[name], resumed_state[name]), name
    full_ckpt = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")
    resumed_ckpt = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for a, b in zip(
        full_ckpt["optimizer_states"][0]["state"].values(),
        resumed_ckpt["optimizer_states"][0]["state"].values(),
        strict=True,
    ):
        assert all(torch.equal(a[key], b[key]) for key in a)
    assert full_ckpt["lr_schedulers"] == resumed_ckpt["lr_schedulers"]
    # the whole run's metrics, each rollout once, equal to the uninterrupted run's
    assert env_steps_column(tmp_path / "resumed" / "metrics.csv") == list(range(ROLLOUT, 97, ROLLOUT))
    assert metric_rows(tmp_path / "resumed" / "metrics.csv") == metric_rows(tmp_path / "full" / "metrics.csv")
    for key in ("env_steps", "episodes", "ep_return_mean"):
        assert resumed_summary[key] == full_summary[key], key
    assert resumed_summary["resumed_from"] == str(ckpt)
    # training time continues from the checkpoint's: the crashed fit's 32 steps plus this fit's
    assert resumed_summary["wall_seconds"] > load_checkpoint(ckpt)["rlcamp"]["wall_seconds"] > 0
    assert resumed_summary["steps_per_second"] == pytest.approx(96 / resumed_summary["wall_seconds"])
    assert snapshot(crashed_dir) == before, "resuming must not modify the crashed run's directory"


def test_checkpoint_holds_every_piece_of_run_state(make_cfg, tmp_path):
    train(make_cfg(*ALIGNED, "total_env_steps=32", output_dir=tmp_path))
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    rlcamp = state["rlcamp"]
    assert rlcamp["env_steps"] == 32 and rlcamp["episodes"] == 8
    assert set(rlcamp["rng"]) >= {"python", "numpy", "torch"}
    assert rlcamp["spaces"] == {"observation": "Box(-inf, inf, (1,), float32)", "action": "Discrete(2)"}
    assert any(name.startswith("policy.obs_normalizer") for name in state["state_dict"])
    assert any(name.startswith("reward_scaler") for name in state["state_dict"])
    assert state["lr_schedulers"][0]["last_epoch"] == 2
    assert rlcamp["wall_seconds"] > 0


def test_ctrl_c_checkpoints_and_writes_an_interrupted_summary(make_cfg, tmp_path):
    summary, _ = train(
        make_cfg(
            *ALIGNED,
            "callbacks.checkpoint.every_env_steps=1000",
            "+callbacks.signal._target_=tests.test_resume.SendSignal",
            f"+callbacks.signal.signum={int(signal.SIGINT)}",
            "+callbacks.signal.env_steps=32",
            output_dir=tmp_path,
        )
    )
    assert summary["status"] == "interrupted" and summary["preempted_by"] == "SIGINT"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "interrupted"
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["rlcamp"]["env_steps"] == 32


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_signal_checkpoints_at_the_end_of_the_rollout_and_stops(make_cfg, tmp_path, signum):
    """SIGTERM/SIGUSR1 mid-update: the rollout finishes, last.ckpt is written, training stops, and
    the handler installed before (Lightning's SLURM requeue, under SLURM) runs after the save."""
    calls = []
    previous = signal.signal(
        signum, lambda s, f: calls.append((s, (tmp_path / "checkpoints/last.ckpt").exists()))
    )
    try:
        summary, module = train(
            make_cfg(
                *ALIGNED,
                "callbacks.checkpoint.every_env_steps=1000",
                "+callbacks.signal._target_=tests.test_resume.SendSignal",
                f"+callbacks.signal.signum={int(signum)}",
                "+callbacks.signal.env_steps=32",
                output_dir=tmp_path,
            )
        )
    finally:
        signal.signal(signum, previous)
    assert summary["status"] == "preempted" and summary["preempted_by"] == signum.name
    assert summary["env_steps"] == 32
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["rlcamp"]["env_steps"] == 32
    assert env_steps_column(tmp_path / "metrics.csv") == [16, 32]
    assert calls == ([(signum, True)] if signum == signal.SIGUSR1 else [])


def test_checkpoint_write_is_atomic(make_cfg, tmp_path, monkeypatch):
    """A write that dies half-way leaves the previous last.ckpt intact and loadable."""
    train(make_cfg(*ALIGNED, "total_env_steps=32", output_dir=tmp_path))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    good = ckpt.read_bytes()

    def die_mid_write(self, filepath, weights_only=None, storage_options=None):
        Path(filepath).write_bytes(good[: len(good) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", die_mid_write)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(make_cfg(*ALIGNED, "total_env_steps=64", f"ckpt_path={ckpt}", output_dir=tmp_path / "again"))
    assert ckpt.read_bytes() == good
    assert load_checkpoint(ckpt)["rlcamp"]["env_steps"] == 32


def test_ckpt_path_last_resolves_to_the_newest_run_of_the_task(make_cfg, tmp_path):
    runs = tmp_path / "logs" / "train" / "runs"
    assert latest_checkpoint(tmp_path / "logs", "train") is None
    for name in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        train(make_cfg(*ALIGNED, "total_env_steps=32", output_dir=runs / name))
        time.sleep(0.05)
    assert latest_checkpoint(tmp_path / "logs", "train") == runs / "2026-01-02_00-00-00/checkpoints/last.ckpt"
    assert latest_checkpoint(tmp_path / "logs", "other") is None

    summary, _ = train(
        make_cfg(
            *ALIGNED,
            "total_env_steps=64",
            "ckpt_path=last",
            f"paths.log_dir={tmp_path}/logs",
            output_dir=runs / "2026-01-03_00-00-00",
        )
    )
    assert summary["resumed_from"] == str(runs / "2026-01-02_00-00-00/checkpoints/last.ckpt")
    assert env_steps_column(runs / "2026-01-03_00-00-00/metrics.csv") == [16, 32, 48, 64]


def test_a_resume_into_a_new_folder_warns_only_of_what_the_run_reads(make_cfg, tmp_path, caplog):
    """Output paths (the CSV logger's folder, the checkpoint callback's) move with the run folder:
    the warning lists the budget that changed, not them."""
    first = tmp_path / "logs" / "train" / "runs" / "first"
    train(make_cfg(*ALIGNED, "total_env_steps=32", output_dir=first))
    caplog.clear()
    train(
        make_cfg(
            *ALIGNED,
            "total_env_steps=64",
            f"ckpt_path={first}/checkpoints/last.ckpt",
            output_dir=tmp_path / "logs" / "train" / "runs" / "second",
        )
    )
    (warning,) = [r.getMessage() for r in caplog.records if "changed settings" in r.getMessage()]
    assert warning.endswith("changed settings: algo.total_env_steps: 32 -> 64, total_env_steps: 32 -> 64")


def test_ckpt_path_last_that_finds_another_run_names_the_fixes_that_make_sense(make_cfg, tmp_path):
    """``ckpt_path=last`` took the task's newest checkpoint, another seed's: allowing the change would
    resume the wrong run, so the refusal names an explicit ckpt_path or another task_name."""
    runs = tmp_path / "logs" / "train" / "runs"
    train(make_cfg(*ALIGNED, "total_env_steps=32", output_dir=runs / "seed1"))
    cfg = make_cfg(
        *ALIGNED, "seed=2", "ckpt_path=last", f"paths.log_dir={tmp_path}/logs", output_dir=runs / "seed2"
    )
    with pytest.raises(ValueError) as refused:
        train(cfg)
    message = str(refused.value)
    assert "belongs to another run (seed: 1 -> 2)" in message and "allow_changes" not in message
    assert message.endswith(
        "ckpt_path=last took the newest checkpoint of task train; resume the run you mean with "
        "ckpt_path=<its run dir>/checkpoints/last.ckpt, or start a fresh run under another task_name "
        "(task_name=<name>)"
    )


def test_ckpt_path_last_without_a_checkpoint_starts_fresh(make_cfg, tmp_path):
    summary, _ = train(
        make_cfg(
            *ALIGNED,
            "total_env_steps=32",
            "ckpt_path=last",
            f"paths.log_dir={tmp_path}/logs",
            output_dir=tmp_path / "logs/train/runs/first",
        )
    )
    assert summary["status"] == "completed" and summary["resumed_from"] is None


def test_requeue_into_a_fixed_run_dir_with_ckpt_path_last_keeps_every_row_once(make_cfg, tmp_path):
    """The SLURM requeue pattern: the same command (fixed run dir, ``ckpt_path=last``) is killed and
    rerun twice; it resumes from its own folder's last.ckpt each time and ends with the uninterrupted
    run's weights and metrics.csv, every row exactly once."""
    _, full = train(make_cfg(*ALIGNED, output_dir=tmp_path / "full"))
    run_dir = tmp_path / "logs" / "train" / "fixed"
    command = [*ALIGNED, "ckpt_path=last", f"paths.log_dir={tmp_path}/logs"]

    with pytest.raises(Crash):  # 1st start: crashes after logging rollout 3, last.ckpt holds rollout 2
        train(
            make_cfg(
                *command,
                "+callbacks.crash._target_=tests.test_resume.CrashAt",
                "+callbacks.crash.env_steps=48",
                output_dir=run_dir,
            )
        )
    assert env_steps_column(run_dir / "metrics.csv") == [16, 32, 48]
    summary, _ = train(  # requeue 1: pre-empted by SIGTERM after rollout 4
        make_cfg(
            *command,
            "+callbacks.signal._target_=tests.test_resume.SendSignal",
            f"+callbacks.signal.signum={int(signal.SIGTERM)}",
            "+callbacks.signal.env_steps=64",
            output_dir=run_dir,
        )
    )
    assert summary["status"] == "preempted" and summary["resumed_from"] == str(
        run_dir / "checkpoints/last.ckpt"
    )
    assert env_steps_column(run_dir / "metrics.csv") == [16, 32, 48, 64]
    summary, resumed = train(make_cfg(*command, output_dir=run_dir))  # requeue 2: runs to the end

    assert summary["status"] == "completed" and summary["env_steps"] == 96
    assert metric_rows(run_dir / "metrics.csv") == metric_rows(tmp_path / "full" / "metrics.csv")
    for name, tensor in full.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_ckpt_path_last_of_a_multirun_job_is_its_own_jobs_checkpoint(tmp_path):
    """A requeued sweep job (a new sweep folder) finds the checkpoint of the job with its overrides."""
    sweeps = tmp_path / "t" / "multiruns"
    for sweep, job, seed in [("s1", "0", 5), ("s1", "1", 6), ("s2", "0", 7)]:
        (sweeps / sweep / job / ".hydra").mkdir(parents=True)
        (sweeps / sweep / job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n- ckpt_path=last\n")
        (sweeps / sweep / job / "checkpoints").mkdir()
        (sweeps / sweep / job / "checkpoints" / "last.ckpt").write_bytes(b"")
        time.sleep(0.02)
    assert (
        latest_job_checkpoint(tmp_path, "t", ["seed=5", "ckpt_path=last"])
        == sweeps / "s1/0/checkpoints/last.ckpt"
    )
    assert (
        latest_job_checkpoint(tmp_path, "t", ["ckpt_path=last", "seed=6"])
        == sweeps / "s1/1/checkpoints/last.ckpt"
    )
    assert latest_job_checkpoint(tmp_path, "t", ["seed=8", "ckpt_path=last"]) is None
    # a requeue with a larger budget is still the same job
    assert (
        latest_job_checkpoint(tmp_path, "t", ["seed=6", "total_env_steps=9"])
        == sweeps / "s1/1/checkpoints/last.ckpt"
    )


SLOW_ENV_RUN = [
    "env.id=tests.test_resume:SlowCountingEnv",
    "+env.kwargs.horizon=5",
    "+env.kwargs.step_seconds=0.002",
    "env.n_envs=2",
    "algo.n_steps=8",
    "algo.n_minibatches=2",
    "algo.update_epochs=2",
    "total_env_steps=1600",
    "callbacks.checkpoint.every_env_steps=160",
    "callbacks.progress=null",
    "task_name=killed",
]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_with_ckpt_path_last(tmp_path):
    """A real SIGKILL between two checkpoints, then ``ckpt_path=last``: the run completes its budget,
    metrics.csv holds every rollout exactly once, summary.json counts the whole run."""
    command = [sys.executable, "-m", "rlcamp.train", *SLOW_ENV_RUN, f"paths.log_dir={tmp_path}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "killed" / "runs"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        found = list(runs.glob("*/metrics.csv"))
        if (
            found
            and list(runs.glob("*/checkpoints/last.ckpt"))
            and len(found[0].read_text().splitlines()) > 14
        ):
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (killed_dir,) = runs.iterdir()
    checkpoint_steps = load_checkpoint(killed_dir / "checkpoints" / "last.ckpt")["rlcamp"]["env_steps"]
    logged = env_steps_column(killed_dir / "metrics.csv")
    assert 0 < checkpoint_steps < logged[-1] < 1600, "killed between two checkpoints"

    result = subprocess.run([*command, "ckpt_path=last"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (resumed_dir,) = [d for d in runs.iterdir() if d != killed_dir]
    assert env_steps_column(resumed_dir / "metrics.csv") == list(range(16, 1601, 16))
    summary = json.loads((resumed_dir / "summary.json").read_text())
    assert summary["env_steps"] == 1600 and summary["status"] == "completed"
    # each of the 2 envs loses the episode it was in at the checkpoint (envs restart from reset)
    per_env_before = checkpoint_steps // 2
    assert summary["episodes"] == 2 * (per_env_before // 5 + (800 - per_env_before) // 5)
    assert summary["resumed_from"] == str(killed_dir / "checkpoints" / "last.ckpt")


def kill_after_a_checkpoint(command: list[str], run_dir: Path, min_rows: int) -> None:
    """Start ``command``, SIGKILL it once ``run_dir`` has a last.ckpt and more than ``min_rows`` rows."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        metrics = run_dir / "metrics.csv"
        rows = len(metrics.read_text().splitlines()) - 1 if metrics.is_file() else 0
        if (run_dir / "checkpoints" / "last.ckpt").is_file() and rows > min_rows:
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.slow
def test_slurm_requeue_pattern_end_to_end(tmp_path):
    """The documented job script's command (fixed hydra.run.dir, ckpt_path=last), SIGKILLed twice and
    rerun: it ends completed in the same folder with every rollout's row exactly once."""
    run_dir = tmp_path / "killed" / "fixed"
    command = [
        sys.executable,
        "-m",
        "rlcamp.train",
        *SLOW_ENV_RUN,
        f"paths.log_dir={tmp_path}",
        "ckpt_path=last",
        f"hydra.run.dir={run_dir}",
    ]
    kill_after_a_checkpoint(command, run_dir, min_rows=14)
    first_rows = env_steps_column(run_dir / "metrics.csv")[-1]
    kill_after_a_checkpoint(command, run_dir, min_rows=first_rows // 16 + 14)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert env_steps_column(run_dir / "metrics.csv") == list(range(16, 1601, 16))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env_steps"] == 1600
    assert summary["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert [p.name for p in tmp_path.joinpath("killed").iterdir()] == ["fixed"]


@pytest.mark.slow
def test_multirun_requeued_with_ckpt_path_last_resumes_each_job_from_its_own(tmp_path):
    base = [
        sys.executable,
        "-m",
        "rlcamp.train",
        "-m",
        "env.n_envs=2",
        "algo.n_steps=32",
        "callbacks.progress=null",
        f"paths.log_dir={tmp_path}",
        "task_name=sweep",
        "seed=5,6",
        "ckpt_path=last",
    ]
    sweeps = tmp_path / "sweep" / "multiruns"
    for sweep, budget in [("first", 128), ("requeued", 256)]:
        result = subprocess.run(
            [*base, f"total_env_steps={budget}", f"hydra.sweep.dir={sweeps / sweep}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    for job, seed in [("0", 5), ("1", 6)]:
        summary = json.loads((sweeps / "requeued" / job / "summary.json").read_text())
        assert summary["seed"] == seed and summary["env_steps"] == 256
        assert summary["resumed_from"] == str(sweeps / "first" / job / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize(
    "damage", [b"80,0.5,1", b"\0" * 64, b"80,0.5\0\0\0\0"], ids=["cut_short", "nul_bytes", "cut_then_nul"]
)
def test_resume_drops_a_damaged_metrics_tail_with_a_warning(make_cfg, tmp_path, caplog, damage):
    """A full disk or a crash mid-append leaves a cut or NUL-filled last line; the checkpoint is intact."""
    command = [*ALIGNED, "ckpt_path=last", f"paths.log_dir={tmp_path}/logs"]
    run_dir = tmp_path / "logs" / "train" / "fixed"
    train(make_cfg(*command, "total_env_steps=64", output_dir=run_dir))
    with (run_dir / "metrics.csv").open("ab") as file:
        file.write(damage)

    summary, _ = train(make_cfg(*command, output_dir=run_dir))
    assert summary["status"] == "completed" and summary["env_steps"] == 96
    assert env_steps_column(run_dir / "metrics.csv") == list(range(ROLLOUT, 97, ROLLOUT))
    assert "dropped 1 unreadable row(s)" in caplog.text


def test_a_failed_resume_keeps_what_the_summary_recorded(make_cfg, tmp_path):
    """A crash in a resumed run sets status and error but erases neither env steps nor episodes."""
    command = [*ALIGNED, "ckpt_path=last", f"paths.log_dir={tmp_path}/logs"]
    run_dir = tmp_path / "logs" / "train" / "fixed"
    train(make_cfg(*command, "total_env_steps=64", output_dir=run_dir))
    before = json.loads((run_dir / "summary.json").read_text())

    with pytest.raises(Crash):
        run_job(
            make_cfg(
                *command,
                "+callbacks.crash._target_=tests.test_resume.CrashAt",
                "+callbacks.crash.env_steps=64",
                output_dir=run_dir,
            )
        )
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["status"] == "failed" and after["error"] == "Crash: crash at env step 64"
    assert {k: after[k] for k in ("env_steps", "episodes", "ep_return_mean", "wall_seconds")} == {
        k: before[k] for k in ("env_steps", "episodes", "ep_return_mean", "wall_seconds")
    }


def test_a_cnn_run_resumes_bit_for_bit(make_cfg, tmp_path):
    """uint8 frames and a Nature CNN: a run resumed from its mid-run checkpoint ends with the
    uninterrupted run's weights and metrics (every episode ends at the checkpoint)."""
    pixels = [
        "env.id=tests.helpers.envs:LitCellEnv",
        "+env.kwargs.scripted=true",
        "network=nature_cnn",
        "env.n_envs=2",
        "algo.n_steps=8",
        "algo.n_minibatches=2",
        "algo.update_epochs=2",
        "total_env_steps=64",
        "callbacks.checkpoint.every_env_steps=32",
    ]
    train(make_cfg(*pixels, output_dir=tmp_path / "full"))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.env_steps=48"]
    with pytest.raises(Crash):
        train(make_cfg(*pixels, *crash, output_dir=tmp_path / "crashed"))
    ckpt = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(ckpt)["rlcamp"]["env_steps"] == 32
    _, resumed = train(make_cfg(*pixels, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")["state_dict"]
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(full[name], tensor), name
    assert metric_rows(tmp_path / "resumed" / "metrics.csv") == metric_rows(tmp_path / "full" / "metrics.csv")


@pytest.mark.parametrize(
    ("env", "network"),
    [
        ("MultiDiscreteTargetEnv", []),
        ("MultiBinaryTargetEnv", []),
        ("MultiDiscreteTargetEnv", ["network.memory=lstm", "network.memory_size=8", "algo.seq_len=4"]),
    ],
    ids=["multidiscrete", "multibinary", "lstm"],
)
def test_a_multi_action_run_resumes_bit_for_bit_and_rlcamp_eval_plays_it(make_cfg, tmp_path, env, network):
    """The MultiDiscrete and MultiBinary heads, feed-forward or with an LSTM: a run resumed from its
    mid-run checkpoint ends with the uninterrupted run's weights and metrics (scripted targets,
    every episode ends at the checkpoint, so a recurrent state that restarts at zero with the envs
    loses nothing); ``rlcamp-eval`` on the checkpoint reports the in-process evaluation's returns."""
    multi = [
        f"env.id=tests.helpers.envs:{env}",
        "+env.kwargs.scripted=true",
        "env.n_envs=2",
        "algo.n_steps=8",
        "algo.n_minibatches=2",
        "algo.update_epochs=2",
        "total_env_steps=64",
        "callbacks.checkpoint.every_env_steps=32",
        *network,
    ]
    _, full_module = train(make_cfg(*multi, output_dir=tmp_path / "full"))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.env_steps=48"]
    with pytest.raises(Crash):
        train(make_cfg(*multi, *crash, output_dir=tmp_path / "crashed"))
    ckpt = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(ckpt)["rlcamp"]["env_steps"] == 32
    _, resumed = train(make_cfg(*multi, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))
    full_ckpt = tmp_path / "full" / "checkpoints" / "last.ckpt"
    full = load_checkpoint(full_ckpt)["state_dict"]
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(full[name], tensor), name
    assert metric_rows(tmp_path / "resumed" / "metrics.csv") == metric_rows(tmp_path / "full" / "metrics.csv")

    expected = evaluate_policy(full_module.policy, full_module.env_factory, n_episodes=2, seed=100_000)
    command = [sys.executable, "-m", "rlcamp.evaluate", f"ckpt_path={full_ckpt}", "n_episodes=2"]
    result = subprocess.run(
        [*command, f"paths.log_dir={tmp_path / 'logs'}"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (out_dir,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    assert json.loads((out_dir / "eval.json").read_text())["returns"] == expected.returns


def test_a_dict_observation_run_resumes_bit_for_bit_and_rlcamp_eval_plays_it(make_cfg, tmp_path):
    """An image key, a normalized vector key and a Text key left out (``network.obs_keys``): a run
    resumed from its mid-run checkpoint ends with the uninterrupted run's weights, normalization
    statistics and metrics, and ``rlcamp-eval`` plays its checkpoint as the policy in memory does."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rlcamp.evaluate import CONF_DIR, run_eval
    from rlcamp.rollout.evaluation import evaluate_policy

    keys = [
        "env.id=tests.helpers.envs:LitSideRuleEnv",
        "+env.kwargs.scripted=true",
        "+env.kwargs.mission=true",
        "network=minatar_cnn",
        "network.obs_keys=[image,rule]",
        "env.normalize_obs=true",
        "env.n_envs=2",
        "algo.n_steps=8",
        "algo.n_minibatches=2",
        "algo.update_epochs=2",
        "total_env_steps=64",
        "callbacks.checkpoint.every_env_steps=32",
    ]
    train(make_cfg(*keys, output_dir=tmp_path / "full"))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.env_steps=48"]
    with pytest.raises(Crash):
        train(make_cfg(*keys, *crash, output_dir=tmp_path / "crashed"))
    ckpt = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    _, resumed = train(make_cfg(*keys, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")["state_dict"]
    assert "policy.key_normalizers.rule.rms.mean" in full
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(full[name], tensor), name
    assert metric_rows(tmp_path / "resumed" / "metrics.csv") == metric_rows(tmp_path / "full" / "metrics.csv")

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                f"ckpt_path={tmp_path / 'resumed' / 'checkpoints' / 'last.ckpt'}",
                f"paths.output_dir={tmp_path / 'eval'}",
                "n_episodes=2",
                "logger=none",
            ],
        )
    report = run_eval(cfg)
    expected = evaluate_policy(resumed.policy, resumed.env_factory, n_episodes=2, seed=cfg.seed)
    assert report["returns"] == expected.returns and report["lengths"] == [8, 8]


def test_a_masked_run_resumes_bit_for_bit_and_rlcamp_eval_plays_it(make_cfg, tmp_path):
    """A mask from ``info`` (``MaskStepEnv`` raises on an invalid action): a run resumed from its
    mid-run checkpoint ends with the uninterrupted run's weights and metrics, and ``rlcamp-eval``
    plays its checkpoint's masked mode as the policy in memory does."""
    from rlcamp.evaluate import run_eval
    from tests.helpers.config import compose_eval

    keys = [
        "env.id=tests.helpers.envs:MaskStepEnv",
        "+env.kwargs.horizon=8",  # episodes aligned with the rollouts: a resume's fresh envs continue them
        "env.action_mask=info:action_mask",
        "env.n_envs=2",
        "algo.n_steps=8",
        "algo.n_minibatches=2",
        "algo.update_epochs=2",
        "total_env_steps=64",
        "callbacks.checkpoint.every_env_steps=32",
    ]
    train(make_cfg(*keys, output_dir=tmp_path / "full"))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.env_steps=48"]
    with pytest.raises(Crash):
        train(make_cfg(*keys, *crash, output_dir=tmp_path / "crashed"))
    ckpt = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    _, resumed = train(make_cfg(*keys, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")["state_dict"]
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(full[name], tensor), name
    assert metric_rows(tmp_path / "resumed" / "metrics.csv") == metric_rows(tmp_path / "full" / "metrics.csv")

    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    cfg = compose_eval([f"ckpt_path={last}", "n_episodes=2", "logger=none"], tmp_path / "eval")
    report = run_eval(cfg)
    expected = evaluate_policy(resumed.policy, resumed.env_factory, n_episodes=2, seed=cfg.seed)
    assert report["returns"] == expected.returns == [36.0, 36.0]


def test_a_checkpoint_from_before_the_network_interface_evaluates_and_resumes(make_cfg, tmp_path):
    """``tests/fixtures/ppo_cartpole_1b1b992.ckpt``, written by rlcamp at 1b1b992 (an MLP without
    ``network.encoder`` in its config, normalized observations): ``rlcamp-eval``'s loader rebuilds it
    and a resume with today's config for the same run is not "another run"."""
    from rlcamp.rollout.evaluation import evaluate_policy
    from rlcamp.utils.checkpoint import load_run

    fixtures = Path(__file__).parent / "fixtures"
    ckpt = tmp_path / "old" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(fixtures / "ppo_cartpole_1b1b992.ckpt", ckpt)
    shutil.copy(fixtures / "ppo_cartpole_1b1b992.metrics.csv", ckpt.parent.parent / "metrics.csv")
    module, cfg = load_run(ckpt)
    assert "encoder" not in cfg.network and module.env_steps == 512
    assert len(evaluate_policy(module.policy, module.env_factory, n_episodes=2, seed=0).returns) == 2
    same_run = ("env.n_envs=2", "algo.n_steps=64", "env.normalize_obs=true")
    summary, _ = train(
        make_cfg(*same_run, "total_env_steps=1024", f"ckpt_path={ckpt}", output_dir=tmp_path / "new")
    )
    assert summary["status"] == "completed" and summary["env_steps"] == 1024
    assert env_steps_column(tmp_path / "new" / "metrics.csv") == list(range(128, 1025, 128))
