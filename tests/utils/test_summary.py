"""The end-of-run report: the commands it prints are whole in a piped log, what it suggests comparing,
and a sweep job's one line."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from rlcamp.utils.summary import comparison_dir, print_summary

SUMMARY = {
    "algo": "ppo",
    "env_id": "CartPole-v1",
    "seed": 1,
    "status": "completed",
    "ep_return_mean": 187.25,
    "env_steps": 100352,
    "wall_seconds": 61.5,
    "steps_per_second": 1632.0,
}


def test_printed_commands_parse_back_whole_from_a_piped_log_at_80_columns(tmp_path):
    """A long run dir (with a space) in a batch job's log: each command is one line that the shell
    splits back into the exact path, not a cut ``…`` or a wrapped box cell."""
    run_dir = (
        tmp_path / ("a very long folder name " * 4).strip() / "logs" / "train" / "runs" / "2026-12-03_16-05"
    )
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    summary = {**SUMMARY, "output_dir": str(run_dir)}
    code = (
        "import json, sys; from rlcamp.utils.summary import print_summary; "
        "print_summary(json.loads(sys.argv[1]), sys.argv[2])"
    )
    log = subprocess.run(
        [sys.executable, "-c", code, json.dumps(summary), str(run_dir.parent)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80", "TERM": "dumb"},
    ).stdout
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in log.splitlines() if ":" in line}
    assert shlex.split(lines["run dir"]) == [str(run_dir)]
    assert shlex.split(lines["evaluate"]) == [
        "rlcamp-eval",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
    ]
    assert shlex.split(lines["compare"]) == ["rlcamp-compare", str(run_dir.parent)]
    assert "…" not in log


def test_the_suggested_comparison_is_the_runs_multirun_or_task_not_every_run():
    single = Path("logs/train/runs/2026-12-03_16-05")
    assert comparison_dir(single, multirun=False, task_name="train") == single
    named = Path("logs/acrobot_lr/runs/2026-12-03_16-05")
    assert comparison_dir(named, multirun=False, task_name="acrobot_lr") == named.parent
    job = Path("logs/train/multiruns/2026-12-03_16-05/3")
    assert comparison_dir(job, multirun=True, task_name="train") == job.parent


def test_a_sweep_job_prints_one_line_and_no_table(capsys):
    print_summary(
        {**SUMMARY, "output_dir": "logs/train/multiruns/x/0"}, "logs/train/multiruns/x", multirun=True
    )
    assert capsys.readouterr().out == (
        "ppo on CartPole-v1, seed 1: completed, return 187.25, 100352 env steps, 61.5 s "
        "-> logs/train/multiruns/x/0\n"
    )
