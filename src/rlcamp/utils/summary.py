"""``summary.json``, the one file a sweep reads to compare runs, and the table that ends a run."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunClock:
    """A run's training time across resumed fits, and this fit's env-step rate (``time/sps``)."""

    seconds_before: float = 0.0  # training time of the fits before this one (from the checkpoint)
    start: float = 0.0  # perf_counter when this fit began
    start_steps: int = 0  # env steps done when this fit began

    def begin(self, env_steps: int) -> None:
        self.start, self.start_steps = time.perf_counter(), env_steps

    @property
    def wall_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.start

    def steps_per_second(self, env_steps: int) -> float:
        return (env_steps - self.start_steps) / max(time.perf_counter() - self.start, 1e-9)


# the keys of summary.json that say how a run ended; a later ending replaces them all
ENDING_KEYS = ("status", "error", "preempted_by", "stop_reason")


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_summary(output_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``summary`` as ``output_dir/summary.json`` (NaN becomes null) and return the path.

    An ``OSError`` (a full disk) removes the half-written ``summary.json.tmp`` and names the path.
    """
    path = Path(output_dir) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps({k: _json_safe(v) for k, v in summary.items()}, indent=2) + "\n")
        tmp.replace(path)
    except OSError as err:  # a full disk: leave no empty summary.json.tmp behind, say where
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, f"could not write {path}: {err.strerror or err}") from None
    return path


def read_summary(output_dir: str | Path) -> dict[str, Any]:
    """``output_dir/summary.json`` as a dict; empty when there is none or it is not readable JSON."""
    try:
        summary = json.loads(Path(output_dir, "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def print_summary(summary: dict[str, Any]) -> None:
    """The end of a run as a small table: outcome, throughput, where it went and what to run next."""
    from rich.console import Console
    from rich.table import Table

    run_dir, checkpoint = Path(summary["output_dir"]), Path(summary["output_dir"], "checkpoints", "last.ckpt")
    rows = {
        "return (last episodes)": ("ep_return_mean", "%.2f"),
        "eval return": ("eval_return_mean", "%.2f"),
        "env steps": ("env_steps", "%d"),
        "time": ("wall_seconds", "%.1f s"),
        "steps/s": ("steps_per_second", "%.0f"),
    }
    table = Table(
        title=f"{summary['algo']} on {summary['env_id']}, seed {summary['seed']}: {summary['status']}"
    )
    table.add_column("", style="bold")
    table.add_column("")
    for name, (key, fmt) in rows.items():
        if _json_safe(summary.get(key)) is not None:
            table.add_row(name, fmt % summary[key])
    table.add_row("run dir", str(run_dir))
    if checkpoint.is_file():
        table.add_row("evaluate", f"rlcamp-eval ckpt_path={checkpoint}")
    table.add_row("compare", f"rlcamp-compare {run_dir.parent}")
    Console().print(table)
