"""``summary.json``, the one file a sweep reads to compare runs, and the table that ends a run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_summary(output_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``summary`` as ``output_dir/summary.json`` (NaN becomes null) and return the path."""
    path = Path(output_dir) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({k: _json_safe(v) for k, v in summary.items()}, indent=2) + "\n")
    tmp.replace(path)
    return path


def print_summary(summary: dict[str, Any]) -> None:
    """The end of a run as a small table: outcome, throughput, where it went and what to run next."""
    from rich.console import Console
    from rich.table import Table

    def number(key: str, fmt: str) -> str:
        value = summary.get(key)
        return "-" if _json_safe(value) is None else fmt % value

    run_dir = Path(summary["output_dir"])
    title = f"{summary['algo']} on {summary['env_id']}, seed {summary['seed']}: {summary['status']}"
    table = Table(title=title)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("return (last episodes)", number("ep_return_mean", "%.2f"))
    if summary.get("eval_return_mean") is not None:
        table.add_row("eval return", number("eval_return_mean", "%.2f"))
    table.add_row("env steps", number("env_steps", "%d"))
    table.add_row("time", number("wall_seconds", "%.1f s"))
    table.add_row("steps/s", number("steps_per_second", "%.0f"))
    table.add_row("run dir", str(run_dir))
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if checkpoint.is_file():
        table.add_row("evaluate", f"rlcamp-eval ckpt_path={checkpoint}")
    table.add_row("compare", f"rlcamp-compare {run_dir.parent}")
    Console().print(table)
