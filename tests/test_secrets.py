"""Secrets from ``.env`` or the environment never reach any file of a run.

``rlcamp-train`` loads ``.env`` from the working directory into the environment (without
overriding what is set); configs read only non-secret variables (``WANDB_PROJECT``...), and W&B
reads its key from the environment itself. A run with every logger (CSV, TensorBoard, W&B offline)
is grepped, file by file and byte by byte, for the planted values.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

WANDB_KEY = "0123456789abcdef0123456789abcdefplanted1"  # 40 characters, like a real W&B key
OTHER_SECRET = "hf_plantedSecretTokenForTheLeakTest"


@pytest.mark.slow
def test_planted_keys_appear_in_no_file_of_the_run(tmp_path):
    (tmp_path / ".env").write_text(f"WANDB_API_KEY={WANDB_KEY}\nWANDB_PROJECT=planted-project\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_API")}
    env.update(HF_TOKEN=OTHER_SECRET, WANDB_MODE="offline", PYTHONPATH=os.getcwd())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.train",
            "logger=many",
            "total_env_steps=512",
            "env.n_envs=2",
            "algo.n_steps=32",
            "callbacks.progress=null",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.match("*.wandb") for p in files) and any(p.name == "metrics.csv" for p in files)
    assert any(b"planted-project" in p.read_bytes() for p in files), (
        ".env was not loaded from the working dir"
    )
    for path in files:
        data = path.read_bytes()
        for secret in (WANDB_KEY, OTHER_SECRET):
            assert secret.encode() not in data, f"{secret[:8]}... leaked into {path.relative_to(run_dir)}"
    assert WANDB_KEY not in result.stdout + result.stderr
