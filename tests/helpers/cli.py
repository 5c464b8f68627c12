"""Run ``rlcamp-train`` as a user does (a fresh process) and return its single run directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def train_cli(log_dir: Path, task_name: str, *overrides: str) -> Path:
    """``python -m rlcamp.train`` with ``overrides`` under ``log_dir``; assert it exits 0 with one run."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.train",
            *overrides,
            f"task_name={task_name}",
            f"paths.log_dir={log_dir}",
            "callbacks.progress=null",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (Path(log_dir) / task_name / "runs").iterdir()
    return run_dir
