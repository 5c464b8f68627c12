"""``summary.json``, the one file a sweep reads to compare runs, and the table that ends a run."""

from __future__ import annotations

import json
import math
import shlex
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


# the task of runs started without task_name=...: its runs folder holds every such run of the clone
DEFAULT_TASK = "train"


def comparison_dir(output_dir: str | Path, multirun: bool, task_name: str) -> Path:
    """What a run's summary suggests comparing: its multirun's folder, its named task's runs folder,
    else the run alone (the default task's folder pools every run ever made in the clone)."""
    run_dir = Path(output_dir)
    if multirun or (task_name != DEFAULT_TASK and run_dir.parent.name == "runs"):
        return run_dir.parent
    return run_dir


def next_commands(summary: dict[str, Any], compare_dir: str | Path) -> list[tuple[str, str]]:
    """``(name, text)`` of the run dir and the commands to run next, each whole and shell-quoted."""
    run_dir = Path(summary["output_dir"])
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    lines = [("run dir", shlex.quote(str(run_dir)))]
    if checkpoint.is_file():
        lines.append(("evaluate", f"rlcamp-eval ckpt_path={shlex.quote(str(checkpoint))}"))
    lines.append(("compare", f"rlcamp-compare {shlex.quote(str(compare_dir))}"))
    return lines


def summary_line(summary: dict[str, Any]) -> str:
    """One line for a sweep's job: outcome, return, env steps, time, run dir (the table comes at the
    sweep's end)."""
    parts = [f"{summary['algo']} on {summary['env_id']}, seed {summary['seed']}: {summary['status']}"]
    if _json_safe(summary.get("ep_return_mean")) is not None:
        parts.append(f"return {summary['ep_return_mean']:.2f}")
    if summary.get("env_steps") is not None:
        parts.append(f"{summary['env_steps']} env steps")
    if _json_safe(summary.get("wall_seconds")) is not None:
        parts.append(f"{summary['wall_seconds']:.1f} s")
    return ", ".join(parts) + f" -> {summary['output_dir']}"


def print_summary(summary: dict[str, Any], compare_dir: str | Path, multirun: bool = False) -> None:
    """The end of a run: a small table (outcome, throughput), then the run dir and the commands to
    run next on their own lines, whole at any terminal width and in a log file. A sweep's job prints
    :func:`summary_line` instead; its table comes at the sweep's end."""
    if multirun:
        print(summary_line(summary), flush=True)
        return
    from rich.console import Console
    from rich.table import Table

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
    Console().print(table)
    for name, text in next_commands(summary, compare_dir):
        print(f"{name + ':':<10}{text}", flush=True)
