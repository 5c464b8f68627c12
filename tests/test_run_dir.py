"""A run folder is one run's: one process at a time, a completed run is not trained again, and a
refused command leaves every file of the folder as it was (``.hydra/`` and the log included)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlcamp.errors import RunDirBusyError
from rlcamp.train import run_job, train
from rlcamp.utils.run_dir import KeepRunRecord, RunDirLock, restore_run_record

TINY = ["total_env_steps=64", "env.n_envs=2", "algo.n_steps=32"]


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_a_second_run_in_a_held_folder_is_refused_in_one_line_naming_the_holder(make_cfg, tmp_path):
    """A job submitted twice, or requeued while the old attempt still runs: the second one stops."""
    run_dir = tmp_path / "run"
    train(make_cfg(*TINY, output_dir=run_dir))
    before = snapshot(run_dir)
    with RunDirLock(run_dir), pytest.raises(SystemExit) as exit_info:
        run_job(make_cfg(*TINY, "total_env_steps=128", "ckpt_path=last", output_dir=run_dir))
    message = str(exit_info.value)
    assert message.startswith(
        f"rlcamp-train: error: {run_dir} is in use by pid {os.getpid()} on {socket.gethostname()} since "
    )
    assert "\n" not in message and "hydra.run.dir" in message
    assert snapshot(run_dir) == before


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rlcamp.utils.run_dir import RunDirLock; "
            f"RunDirLock({str(tmp_path)!r}).__enter__(); print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirBusyError, match=f"is in use by pid {holder.pid} on "):
            RunDirLock(tmp_path).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with RunDirLock(tmp_path):
        assert (tmp_path / "run.lock").read_text().startswith(f"pid {os.getpid()} ")


def test_a_completed_run_rerun_with_ckpt_path_last_says_so_and_trains_nothing(make_cfg, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(make_cfg(*TINY, output_dir=run_dir))
    before = snapshot(run_dir)
    assert run_job(make_cfg(*TINY, "ckpt_path=last", output_dir=run_dir)) is None
    assert "has already trained 64 env steps of total_env_steps=64: nothing to do" in capsys.readouterr().out
    assert snapshot(run_dir) == before


def test_a_sweeps_job_folders_get_their_record_back(tmp_path):
    """A requeued multirun into a fixed sweep folder: each job's ``.hydra/`` and log are kept at the
    sweep's start; a refused job gets them back and loses the files written since."""
    job = tmp_path / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (job / "train.log").write_text("the run's log\n")
    before = snapshot(job)
    KeepRunRecord().on_multirun_start(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    )

    (job / ".hydra" / "overrides.yaml").write_text("- seed=1\n- algo.optimizer.lr=0.1\n")
    (job / ".hydra" / "hydra.yaml").write_text("written by the refused job\n")
    (job / "train.log").write_text("the run's log\nthe refused job's lines\n")
    restore_run_record(job)
    assert snapshot(job) == before
    restore_run_record(tmp_path / "new")  # a folder without a record: nothing to put back


def rlcamp_train(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlcamp.train", *TINY, "callbacks.progress=null", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_refused_and_nothing_to_do_commands_leave_the_run_folder_byte_for_byte(tmp_path):
    """Hydra rewrites ``.hydra/*.yaml`` before the job runs; a refused resume (another learning rate)
    or a rerun of the completed run puts the run's own record back."""
    run_dir = tmp_path / "fixed"
    command = [f"hydra.run.dir={run_dir}", f"paths.log_dir={tmp_path}", "ckpt_path=last"]
    assert rlcamp_train(*command).returncode == 0
    before = snapshot(run_dir)
    assert {".hydra/config.yaml", ".hydra/overrides.yaml", "summary.json", "run.lock"} <= set(before)

    refused = rlcamp_train(*command, "total_env_steps=128", "algo.optimizer.lr=0.1")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("rlcamp-train: error: ")
    assert "belongs to another run (algo.optimizer.lr: 0.002 -> 0.1)" in refused.stderr
    assert snapshot(run_dir) == before

    rerun = rlcamp_train(*command)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "nothing to do" in rerun.stdout
    assert snapshot(run_dir) == before
