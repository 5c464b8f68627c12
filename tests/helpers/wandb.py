"""Read an offline W&B run back with wandb's own ``wandb leet inspect``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WANDB_CLI = str(Path(sys.executable).with_name("wandb"))


def wandb_records(run_dir: Path) -> list[dict]:
    """Every record of an offline run's ``.wandb`` log (history, metric, run, config, ...)."""
    out = subprocess.run(
        [WANDB_CLI, "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
